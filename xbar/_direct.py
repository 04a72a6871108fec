"""Direct solver of the crossbar system: Woodbury + block-tridiagonal elimination.

The algebra of the solver ``xbar.Direct`` (``xbar.solvers``).  Solves the symmetric positive definite system

    K z = b,        K = I + S A_w S + S A_b S,

of ``xbar._wires.Operator`` (``S = sqrt(D)``, ``A_w``/``A_b`` the word-line / bit-line resistance
operators) without iterating.  One line family, the "dense" one, is kept inside blocks;
the other, the "tridiagonal" one, couples neighbouring blocks.  With ``P_d = I + S A_d S``
(block diagonal: one ``Q x Q`` block per line) and ``T_t = A_t^{-1}`` (the tridiagonal
Laplacian of every line of the other family, grounded at its driver / sense end),
Woodbury's identity gives

    K^{-1} = P_d^{-1} - P_d^{-1} S Y^{-1} S P_d^{-1},     Y = T_t + S P_d^{-1} S,

where ``Y`` is block tridiagonal (dense ``Q x Q`` diagonal blocks, diagonal coupling
blocks).  ``w = Y^{-1} S P_d^{-1} b`` is physically the node-voltage field of the
tridiagonal family, and ``z = P_d^{-1} (b - S w)``.  Each block of ``P_d^{-1}`` is
``I - S (T_d + S^2)^{-1} S`` with ``T_d + S^2`` tridiagonal, inverted explicitly by a
batched Thomas sweep on the identity (``O(P Q^2)``); ``Y`` is factorised by block
Gaussian elimination from the open end of the tridiagonal family towards its grounded
end (one dense ``Q x Q`` inverse per block, ``O(P Q^3)``, SPD so no pivoting is needed).
Applying ``K^{-1}`` then costs four ``Q x Q`` block products per block and right-hand
side, which are matrix-matrix products for a batch of inputs.

The block size ``Q`` is the shorter side of the array (the blocks are rows when
``N <= M``, else columns).  Storage: two ``(P, Q, Q)`` arrays.

Zero-resistance segments have no conductance; as in the line preconditioner they are
floored (``chain_conductances``), so the factorisation is then the exact inverse
of a slightly perturbed system and :func:`solve` recovers the exact answer by iterative
refinement against the true operator (its residual test decides convergence).  A family
without any resistance is handled exactly (``P_d = I`` or ``A_t = 0``).

Reference: Woodbury matrix identity and block tridiagonal (block Thomas / block LU)
elimination, e.g. Golub & Van Loan, "Matrix Computations", 4th ed., sections 2.1.4 and
4.5.1 (block tridiagonal systems).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import _wires
from ._chains import (
    chain_conductances,
    chain_factor,
    families,
    from_canonical,
    orientation,
    to_canonical,
    tridiag_apply,
)
from ._refine import refine


def factor_bytes(M: int, N: int, itemsize: int) -> int:
    """Memory held by one factorisation (two ``(P, Q, Q)`` arrays)."""
    P, Q = max(M, N), min(M, N)
    return 2 * P * Q * Q * itemsize


# ---------------------------------------------------------------------------------------
# Factorisation and application (canonical layout; S, Rd, Rt are (P, Q))
# ---------------------------------------------------------------------------------------


class Factor:
    """Factors of ``K`` in canonical layout (a plain container; not a pytree leaf)."""

    def __init__(self, S, X, Linv, gc, g0, has_d, has_t, N=None):
        self.S, self.X, self.Linv, self.gc, self.g0 = S, X, Linv, gc, g0
        self.has_d, self.has_t, self.N = has_d, has_t, N


def factor(D: jax.Array, Rd: jax.Array, Rt: jax.Array, with_n: bool = False) -> Factor:
    """Factorise ``K`` for canonical ``D = S^2``, dense-family ``Rd``, tridiagonal ``Rt``.

    Everything but the stored ``S`` (used by :func:`apply` only) is a function of ``D``,
    so derivatives through the factors stay finite at ``D = 0``.
    """
    P, Q = D.shape
    S = jnp.sqrt(lax.stop_gradient(D))
    gd, has_d = chain_conductances(Rd)
    gt, has_t = chain_conductances(Rt)

    # X_p = (T_d,p + D_p)^{-1}: segment q joins node q-1 (ground for q = 0) and node q.
    gd_next = jnp.concatenate([gd[:, 1:], jnp.zeros_like(gd[:, :1])], axis=1)
    d, l = chain_factor(gd.T, gd_next.T, D.T, grounded_start=True)  # (Q, P)
    eye = jnp.broadcast_to(jnp.eye(Q, dtype=D.dtype)[:, None, :], (Q, P, Q))
    X = tridiag_apply(d[:, :, None], l[:, :, None], eye)  # X[q, p, r]
    X = jnp.moveaxis(X, 1, 0)
    X = 0.5 * (X + jnp.swapaxes(X, -1, -2))
    X = jnp.where(has_d, X, 0)

    # Y: diagonal blocks diag(T_t) + S P_d^{-1} S = diag(T_t + D) - D X D; block p couples
    # to block p+1 through -diag(gt[p+1]).  Eliminate from p = P-1 down to p = 0.  For a
    # bare chain (D = 0) the pivots are exactly diag(gt[p]), so the recursion is carried
    # in the excess E_p = Lam_p - diag(gt[p]):
    #     E_p = H_p + diag(gt[p+1]) - G Lam_{p+1}^{-1} G = H_p + G Lam_{p+1}^{-1} E_{p+1},
    # (G = diag(gt[p+1]), H_p = S P_d^{-1} S).  The first form cancels ~|G| / |E| digits
    # per step, harmless in float64; float32 uses the second (one more block product).
    # ``with_n`` also returns N_p = Lam_p^{-1} E_p, which lets a sweep carry currents.
    gc = jnp.concatenate([gt[1:], jnp.zeros_like(gt[:1])], axis=0)  # block p <-> p+1
    cancel_free = D.dtype != jnp.float64
    need_n = cancel_free or with_n

    def step(carry, inp):
        Linv_next, N_next = carry
        X_p, D_p, g_p, g_own = inp
        H = jnp.diag(D_p) - D_p[:, None] * X_p * D_p[None, :]
        if cancel_free:
            E = H + g_p[:, None] * N_next  # N_next = Lam_{p+1}^{-1} E_{p+1}
        else:
            E = H + jnp.diag(g_p) - g_p[:, None] * Linv_next * g_p[None, :]
        E = 0.5 * (E + E.T)
        Linv = jnp.linalg.inv(E + jnp.diag(g_own))
        Linv = 0.5 * (Linv + Linv.T)
        N = Linv @ E if need_n else N_next
        return (Linv, N), ((Linv, N) if with_n else Linv)

    zero = jnp.zeros((Q, Q), D.dtype)
    _, out = lax.scan(step, (zero, zero), (X, D, gc, gt), reverse=True)
    if with_n:
        Linv, N = out
        return Factor(S, X, Linv, gc, gt[0], has_d, has_t, N)
    Linv = out
    return Factor(S, X, Linv, gc, gt[0], has_d, has_t)


def _pinv(f: Factor, y: jax.Array) -> jax.Array:
    """``P_d^{-1} y`` for ``y`` in block-major layout ``(P, B, Q)``."""
    S = f.S[:, None, :]
    return y - S * jnp.matmul(S * y, f.X)


def _sweep(f: Factor, r: jax.Array) -> jax.Array:
    """Reverse elimination sweep ``c_p = Linv_p (r_p + gc_p c_{p+1})`` on ``(P, B, Q)``."""

    def fwd(c_next, inp):
        r_p, Li, g = inp
        c = (r_p + g * c_next) @ Li
        return c, c

    _, c = lax.scan(fwd, jnp.zeros_like(r[0]), (r, f.Linv, f.gc), reverse=True)
    return c


def apply(f: Factor, b: jax.Array) -> jax.Array:
    """``K^{-1} b`` (up to the flooring of zero-resistance segments), ``b`` ``(..., P, Q)``."""
    batch = b.shape[:-2]
    P, Q = b.shape[-2:]
    y = jnp.moveaxis(b.reshape((-1, P, Q)), 1, 0)  # (P, B, Q)
    y0 = _pinv(f, y)
    c = _sweep(f, f.S[:, None, :] * y0)
    gprev = jnp.concatenate([jnp.zeros_like(f.gc[:1]), f.gc[:-1]], axis=0)

    def back(w_prev, inp):
        c_p, Li, g = inp
        w = c_p + (g * w_prev) @ Li
        return w, w

    _, w = lax.scan(back, jnp.zeros_like(c[0]), (c, f.Linv, gprev))
    w = jnp.where(f.has_t, w, 0)
    z = y0 - _pinv(f, f.S[:, None, :] * w)
    return jnp.moveaxis(z, 0, 1).reshape(batch + (P, Q))


# ---------------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------------


def solve_refined(S, R_wl, R_bl, b, tol, max_iter):
    """Solve ``(I + S A S) z = b`` by the direct factorisation + iterative refinement.

    Returns
    ``(z, steps, converged, A S z)``; stops when
    ``||b - K z||_2 <= tol ||b||_2`` for every right-hand side (the residual is computed
    with the true operator, so floored zero-resistance segments cannot make the answer
    silently wrong).  With an exact factorisation one step suffices.  ``S`` may carry
    leading batch axes (a Newton slope per input): one factorisation per input then.
    """
    S = lax.stop_gradient(S)
    M, N = S.shape[-2:]
    orient = orientation(M, N)
    Rd, Rt = families(R_wl, R_bl, orient)

    def op(z):
        a = _wires.apply_A(R_wl, R_bl, S * z)
        return z + S * a, a

    def one(s, r):
        f = factor(to_canonical(s * s, orient), Rd, Rt)
        return from_canonical(apply(f, to_canonical(r, orient)), orient)

    if S.ndim == 2:
        fac = factor(to_canonical(S * S, orient), Rd, Rt)

        def inv(r):
            return from_canonical(apply(fac, to_canonical(r, orient)), orient)
    else:
        shape = jnp.broadcast_shapes(S.shape, b.shape)
        flat = jnp.broadcast_to(S, shape).reshape((-1, M, N))

        def inv(r):
            rb = jnp.broadcast_to(r, shape).reshape((-1, M, N))
            return jax.vmap(one)(flat, rb).reshape(shape)

    return refine(inv, op, b, tol, max_iter)


def effective_matrix_rows(G, R_wl, R_bl, v_probe, tol, max_iter):
    """``W_eff`` for ``N <= M`` from the reverse elimination sweep alone, with a check.

    A unit input on row ``i`` drives only block ``p = M-1-i`` of the right-hand side,
    whose entries are the row sums of ``S_p P_p^{-1} S_p``; the elimination runs towards
    the sense row (``p = 0``), where the bit-line node voltages ``w_0`` follow without a
    back substitution, and ``i_out = w_0 / R_bl[M-1]``.  All ``M`` inputs are carried
    together: ``O(M^2 N^2)`` on top of the factorisation.

    Check: the same factorisation solves the full system for one probe input
    ``v_probe`` ``(M,)`` with iterative refinement against the true operator, and the
    returned ``err`` is ``max|v_probe @ W - i_probe| / max|i_probe|``; it exposes any
    inexactness (e.g. floored zero-resistance bit-line segments).
    Returns ``(W, err, converged)``.
    """
    M, N = G.shape
    Rd, Rt = families(R_wl, R_bl, "rows")
    D = to_canonical(G, "rows")
    f = factor(D, Rd, Rt, with_n=True)
    # Block p's right-hand side for its own unit input: S P^{-1} S 1 = D - D (X D 1).
    h = D - D * jnp.einsum("pqr,pr->pq", f.X, D)
    r = jnp.eye(M, dtype=G.dtype)[:, :, None] * h[:, None, :]  # (P, inputs, Q)

    # Sweep in currents: y_p = r_p + y_{p+1} Lam_{p+1}^{-1} G = r_p + y_{p+1} (I - N_{p+1})
    # (row vectors), the current reaching row p from the rows above less what leaks
    # back through their cells.  The correction is a few per cent, so no digits cancel
    # (the voltage form c_p = y_p Lam_p^{-1} loses ~1e-4 in float32).
    def fwd(y_next, inp):
        r_p, N_next = inp
        y = r_p + y_next - y_next @ N_next
        return y, None

    N_shift = jnp.concatenate([f.N[1:], jnp.zeros_like(f.N[:1])])  # N_{p+1} at step p
    y0, _ = lax.scan(fwd, jnp.zeros_like(r[0]), (r, N_shift), reverse=True)
    # i_out = g0 * (y_0 Lam_0^{-1}) = y_0 (I - N_0); without bit-line resistance the cell
    # currents of input e flow straight out: i_out = h_e.
    W = jnp.where(f.has_t, y0 - y0 @ f.N[0], h)[::-1]  # input e <-> block e <-> row M-1-e

    # Probe (no gradient needed: it only validates W).
    fs = jax.tree_util.tree_map(lax.stop_gradient, (f.S, f.X, f.Linv, f.gc, f.g0))
    f_s = Factor(*fs, f.has_d, f.has_t)
    Ss = jnp.sqrt(lax.stop_gradient(G))
    Rw_s, Rb_s = lax.stop_gradient(R_wl), lax.stop_gradient(R_bl)

    def op(z):
        return z + Ss * _wires.apply_A(Rw_s, Rb_s, Ss * z), None

    def inv(r):
        return from_canonical(apply(f_s, to_canonical(r, "rows")), "rows")

    b = Ss * v_probe[:, None]
    z, _, ok, _ = refine(inv, op, b, tol, max_iter)
    i_probe = jnp.sum(Ss * z, axis=0)
    pred = v_probe @ lax.stop_gradient(W)
    scale = _wires.max_abs(i_probe)
    err = _wires.max_abs(pred - i_probe) / jnp.where(scale > 0, scale, 1)
    return W, err, ok
