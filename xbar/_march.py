"""Marching (multiple-shooting) solver of the crossbar system, ``O(M N)`` per input.

The algebra of the solver ``xbar.March`` (``xbar.solvers``).  Solves the same symmetric positive definite system
as ``xbar._direct``,

    K z = r,        K = I + S A_d S + S A_t S,

in the canonical ``(P, Q)`` layout of ``xbar._chains`` (block ``p`` is one line of the
"dense" family, running along ``q`` from its grounded end ``q = 0``; the other family
runs along ``p`` from its grounded end ``p = 0`` to its open end ``p = P - 1``), but
without any dense ``Q x Q`` algebra per block.

Circuit picture.  ``c = S z`` are cell currents, ``phi_d = A_d c`` and ``phi_t = A_t c``
the potentials (above ground) that they raise on the two line families, and
``z = r - S (phi_d + phi_t)``.  Start at the open end ``p = P - 1`` of the marching
family with unknown potentials ``s = phi_t[P-1]`` and no current.  Then, block by block
towards the grounded end:

1. block ``p`` (one dense line per block, its cells loaded by ``phi_t[p]``) is a resistor
   chain with ``Q`` cells; ``z_p = (I + S A_d S)^{-1} (r_p - S phi_t[p])`` is solved
   exactly in resistance form (below), ``O(Q)`` per input;
2. the marching-family current grows by the cell currents, ``J_p = J_{p+1} + S z_p``;
3. Ohm's law on the segment below block ``p``: ``phi_t[p-1] = phi_t[p] - Rt[p] J_p``.

Every equation of the network then holds except one: the potential reached below block
0 must be the ground, ``phi_t[-1] = 0``.  That mismatch is linear in ``s``,
``f = F s + f_r``; ``F`` (``Q x Q``) is found once by marching the ``Q`` unit vectors,
and each solve marches twice (``f_r``, then again from ``s = -F^{-1} f_r``).  Cost:
``O(P Q^2)`` to factorise, ``O(P Q)`` per input, no dense block products.

Stability.  Marching an elliptic problem amplifies rounding: per block the two
independent solutions of the marching family grow / decay by ``lambda ~ exp(sqrt(Rt h))``
with ``h <= max(S^2)`` the cell conductance felt through the dense line.  The march is
therefore cut into ``K`` equal segments of at most ``exp(LOG_GROWTH)`` amplification
each (:func:`plan`), and the segments are joined by a Riccati (admittance) sweep: at the
top of every segment the current entering from above is ``J = Y phi + eta``, with
``Y`` (``Q x Q``) the admittance of everything above it, which is bounded (a physical
admittance), so no exponential growth crosses a segment boundary.  The segment transfer
matrices come from marching ``2 Q`` basis vectors; the sweep costs ``O(K Q^3)``.
Segments march in parallel (the segment is a batch axis).  Rounding that remains is
removed by iterative refinement.  Its residual test: where the segments come from
:func:`plan` (growth per segment at most ``exp(LOG_GROWTH)``) and ``tol`` lies well above
the rounding that growth can amplify (float64 at its default ``tol``), the exact residual
``r - K z`` follows from the segment-end states alone (:func:`_shoot`), and the
refinement carries only those states and the marched reductions; otherwise
(float32, a tighter ``tol``, segments not planned) every test applies the exact operator
(``xbar.refine``).  An inaccurate march is reported, never returned silently.

Dense line solve (step 1), cancellation-free and exact for zero-resistance segments.
The currents ``I_q`` in the dense line's segments obey, from the open end,
``I_q = -E_q phi_q + h_q`` with ``E_q = D_q + alpha_q E_{q+1}``,
``alpha_q = 1 / (1 + E_{q+1} Rd[q+1])`` (the conductance to ground of everything beyond
node ``q``) and ``h_q = S_q y_q + alpha_q h_{q+1}``; from the grounded end
``phi_q = beta_q (phi_{q-1} + Rd[q] h_q)``, ``beta_q = 1 / (1 + E_q Rd[q])``.  Only
resistances enter and all coefficients lie in ``(0, 1]``.  Both first-order recurrences
are evaluated in blocks of ``_BLK`` with small triangular matrices of coefficient
products (batched matrix products, as ``xbar._wires.cumsum``).

References: multiple shooting and the Riccati transformation for linear boundary value
problems, Ascher, Mattheij & Russell, "Numerical Solution of Boundary Value Problems for
Ordinary Differential Equations" (SIAM, 1995), chapters 4 and 6; the marching ("transfer
matrix") view of resistive ladders, e.g. Chen, IEEE Trans. CAD 2016 (cited in
``xbar.solve``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _wires
from ._chains import families, from_canonical, orientation, to_canonical
from ._refine import refine

_BLK = 16  # block length of the blocked recurrences

LOG_GROWTH = {8: math.log(1e3), 4: math.log(64.0)}
"""Natural log of the largest amplification a segment may have (float64 / float32)."""

MAX_SEGMENTS = 64
"""More segments than this and :func:`plan` declines (``xbar.March.plan`` raises)."""


# ---------------------------------------------------------------------------------------
# Planning (eager, on concrete arrays)
# ---------------------------------------------------------------------------------------


def plan(G, R_wl, R_bl, itemsize: int) -> int | None:
    """Number of segments ``K`` for concrete ``G`` and folded wires, or ``None`` if > max.

    Per block ``p`` of the marching family the amplification is at most
    ``exp(2 asinh(sqrt(max Rt[p] * max D[p]) / 2))`` (the larger root of
    ``lambda + 1/lambda = 2 + Rt h``, with ``h <= max D`` the largest conductance a
    marching line can feel); segments are equal in length, short enough that the
    largest per-block growth times the length stays within ``LOG_GROWTH``.
    """
    G, R_wl, R_bl = (np.asarray(a, dtype=np.float64) for a in (G, R_wl, R_bl))
    M, N = G.shape
    orient = orientation(M, N)
    canon = (lambda a: a[::-1, :]) if orient == "rows" else (lambda a: a.T[:, ::-1])
    D = canon(G)
    Rt = canon(R_bl if orient == "rows" else R_wl)
    P = D.shape[0]
    lam = 2 * np.arcsinh(np.sqrt(np.max(Rt, axis=1) * np.max(D, axis=1)) / 2)
    worst = float(np.max(lam))
    if worst <= 0:
        return 1
    length = max(1, int(LOG_GROWTH[itemsize] // worst))
    K = -(-P // length)
    return K if K <= MAX_SEGMENTS else None


# ---------------------------------------------------------------------------------------
# Blocked first-order recurrences x_l = a_l x_{l-1} + u_l
# ---------------------------------------------------------------------------------------


def _recurrence(a: jax.Array):
    """Blocked operators of ``x_l = a_l x_{l-1} + u_l`` (``x_{-1} = 0``) along the last axis.

    ``a`` is ``(..., Q)`` with ``Q = nb * b``.  Returns ``(Tm, tau, T2)``:
    ``Tm[..., k, m, l] = prod_{t=m+1..l} a[k b + t]`` (``m <= l``, else 0), the response
    inside block ``k``; ``tau[..., k, l] = prod_{t=0..l} a[k b + t]``, the decay of the
    value entering block ``k``; ``T2[..., k', k] = prod of the block totals strictly
    between ``k'`` and ``k`` (``k' < k``, else 0), which carries block ends forward.
    Products of coefficients in ``(0, 1]`` cannot overflow; underflow to 0 is harmless.
    """
    *lead, Q = a.shape
    b = min(_BLK, Q)
    nb = Q // b
    ab = jnp.moveaxis(a.reshape(*lead, nb, b), -1, 0)  # (b, ..., nb)
    eye = jnp.eye(b, dtype=a.dtype)

    def row(prev, inp):
        a_l, e_l = inp
        cur = a_l[..., None] * prev + e_l
        return cur, cur

    zero = jnp.zeros(tuple(lead) + (nb, b), a.dtype)
    _, T = lax.scan(row, zero, (ab, eye))  # T[l, ..., k, m]
    Tm = jnp.moveaxis(T, 0, -1)  # (..., nb, m, l)
    tau = jnp.moveaxis(jnp.cumprod(ab, axis=0), 0, -1)  # (..., nb, b)
    te = tau[..., -1]  # (..., nb)
    eye_b = jnp.eye(nb, dtype=a.dtype)

    def col(prev, inp):
        te_prev, e_prev = inp
        cur = te_prev[..., None] * prev + e_prev
        return cur, cur

    te_shift = jnp.concatenate([jnp.zeros_like(te[..., :1]), te[..., :-1]], axis=-1)
    e_shift = jnp.concatenate([jnp.zeros_like(eye_b[:1]), eye_b[:-1]], axis=0)
    _, T2 = lax.scan(
        col, jnp.zeros(tuple(lead) + (nb,), a.dtype), (jnp.moveaxis(te_shift, -1, 0), e_shift)
    )  # T2[k, ..., k']
    T2 = jnp.moveaxis(T2, 0, -1)  # (..., k', k)
    return Tm, tau, T2


def _reverse_recurrence(a: jax.Array):
    """Blocked operators of ``x_l = a_l x_{l+1} + u_l`` (``x_Q = 0``): the forward ones of
    the flipped coefficients, with block order and in-block order flipped back."""
    Tm, tau, T2 = _recurrence(a[..., ::-1])
    return Tm[..., ::-1, ::-1, ::-1], tau[..., ::-1, ::-1], T2[..., ::-1, ::-1]


def _apply_rec(ops, u: jax.Array, reverse: bool) -> jax.Array:
    """Run a blocked recurrence on ``u`` ``(nb, B, b)`` with one block's ``ops``."""
    Tm, tau, T2 = ops
    intra = jnp.einsum("kBm,kml->kBl", u, Tm)
    ends = intra[:, :, 0] if reverse else intra[:, :, -1]
    carry = jnp.einsum("kB,kj->jB", ends, T2)
    return intra + tau[:, None, :] * carry[:, :, None]


# ---------------------------------------------------------------------------------------
# Factorisation
# ---------------------------------------------------------------------------------------


class Factor:
    """Row coefficients, segment layout and Riccati sweep of one array (plain container)."""

    def __init__(self, rows, shape, K, L, Y, Bm, Dm, lu, cumRt):
        self.rows, self.shape, self.K, self.L = rows, shape, K, L
        self.Y, self.Bm, self.Dm, self.lu, self.cumRt = Y, Bm, Dm, lu, cumRt


def _row_coefficients(D: jax.Array, Rd: jax.Array):
    """``alpha`` (for ``h``, from the open end) and ``beta`` (for ``phi``, from ground)."""
    Rd_next = jnp.concatenate([Rd[..., 1:], jnp.zeros_like(Rd[..., :1])], axis=-1)

    def step(E_next, inp):
        D_q, R_next = inp
        al = 1 / (1 + E_next * R_next)
        E = D_q + al * E_next
        return E, (E, al)

    _, (E, al) = lax.scan(
        step,
        jnp.zeros_like(D[..., 0]),
        (jnp.moveaxis(D, -1, 0), jnp.moveaxis(Rd_next, -1, 0)),
        reverse=True,
    )
    E, al = jnp.moveaxis(E, 0, -1), jnp.moveaxis(al, 0, -1)
    return al, 1 / (1 + E * Rd)


def _layout(x: jax.Array, K: int, L: int, nb: int, b: int) -> jax.Array:
    """``(K L, Q)`` per-block data -> ``(L, K, nb, 1, b)`` (row in segment, segment, ...)."""
    return jnp.swapaxes(x.reshape(K, L, nb, 1, b), 0, 1)


def factor(S: jax.Array, Rd: jax.Array, Rt: jax.Array, K: int, dform: bool = False) -> Factor:
    """Factorise ``K`` (canonical ``S``, dense-family ``Rd``, marching-family ``Rt``).

    Pads the dense lines to a multiple of ``_BLK`` and the marching lines to ``K L``
    blocks with inert nodes (no cell, no resistance: exact), then marches the ``2 Q``
    basis states of every segment and runs the Riccati sweep.
    """
    P, Q = S.shape
    b = min(_BLK, Q)
    Qp = -(-Q // b) * b
    L = -(-P // K)
    Pp = K * L
    nb = Qp // b
    pad = ((0, Pp - P), (0, Qp - Q))
    S, Rd, Rt = (jnp.pad(a, pad) for a in (S, Rd, Rt))
    # dform: ``S`` holds the conductances D = S^2 themselves, and the marches run in
    # D-form (:func:`_march`), so that derivatives stay finite at D = 0.
    al, beta = _row_coefficients(S if dform else S * S, Rd)
    ops_h = _reverse_recurrence(al.reshape(Pp, Qp))
    ops_p = _recurrence(beta)
    rows = dict(
        S=_layout(S, K, L, nb, b),
        Rt=_layout(Rt, K, L, nb, b),
        w=_layout(beta * Rd, K, L, nb, b),
        h=tuple(jnp.swapaxes(o.reshape((K, L) + o.shape[1:]), 0, 1) for o in ops_h),
        p=tuple(jnp.swapaxes(o.reshape((K, L) + o.shape[1:]), 0, 1) for o in ops_p),
    )
    # Resistance from each block down to the bottom of its segment, per marching line
    # (for the exact residual of :func:`apply`).
    cumRt = jnp.cumsum(Rt.reshape(K, L, Qp), axis=1)  # (K, L, Qp)
    rows["cumRt"] = _layout(cumRt.reshape(Pp, Qp), K, L, nb, b)
    f = Factor(rows, (P, Q, Pp, Qp, nb, b), K, L, None, None, None, None, cumRt)
    f.dform = dform
    # Homogeneous transfer of every segment: basis states (phi = e_k, J = 0) and
    # (phi = 0, J = e_k), all segments at once; columns of [[A, Bm], [C, Dm]].
    eye = jnp.eye(Qp, dtype=S.dtype)
    zero = jnp.zeros_like(eye)
    phi0 = jnp.concatenate([eye, zero])  # (2Qp inputs, Qp)
    J0 = jnp.concatenate([zero, eye])
    n_basis = 2 * Qp if K > 1 else Qp
    phi0, J0 = phi0[:n_basis], J0[:n_basis]
    seg = (K, n_basis, Qp)
    phi, J, _ = _march(f, None, jnp.broadcast_to(phi0, seg), jnp.broadcast_to(J0, seg), False)
    # phi, J: (K, n_basis, Qp); column k of A is phi[:, k, :] (row vector layout).
    A = jnp.swapaxes(phi[:, :Qp], -1, -2)
    C = jnp.swapaxes(J[:, :Qp], -1, -2)
    if K > 1:
        Bm = jnp.swapaxes(phi[:, Qp:], -1, -2)
        Dm = jnp.swapaxes(J[:, Qp:], -1, -2)
    else:
        Bm = Dm = jnp.zeros_like(A)

    # Riccati sweep from the top segment (sigma = K-1, at the open end) down: the current
    # entering a segment is J = Y phi + eta (Y = 0 at the top); Phi = A + Bm Y,
    # Psi = C + Dm Y, and the segment below gets Y = Psi Phi^{-1}.
    def sweep(Y, inp):
        A_s, Bm_s, C_s, Dm_s = inp
        Phi = A_s + Bm_s @ Y
        Psi = C_s + Dm_s @ Y
        lu = jax.scipy.linalg.lu_factor(Phi)
        Y_next = jax.scipy.linalg.lu_solve(lu, Psi.T, trans=1).T  # Psi Phi^{-1}
        return Y_next, (Y, lu)

    _, (Y, lu) = lax.scan(sweep, jnp.zeros_like(A[0]), (A, Bm, C, Dm), reverse=True)
    out = Factor(rows, f.shape, K, L, Y, Bm, Dm, lu, cumRt)
    out.dform = dform
    out.C = C  # bottom current per unit top potential (segment 0: the output currents)
    out.S = S  # padded canonical
    out.norm = _norm_weights(S, cumRt)
    return out


# ---------------------------------------------------------------------------------------
# Marching and application
# ---------------------------------------------------------------------------------------


def _march(f: Factor, source, phi, J, keep: bool, norm: bool = False):
    """March all segments from their top states ``(phi, J)`` ``(K, B, Qp)``.

    ``source(l, row)``: the right-hand side of block ``p = k L + l`` of every segment
    ``k`` in the march layout ``(K, nb, B, b)`` (``row``: that block's coefficients), or
    ``None`` (zero).  Returns the states below every segment and, with ``keep``, the
    marched cell-voltage reductions ``phi_d + phi_t`` as ``(B, K, L, Qp)`` (canonical
    block order; ``z = r - S (phi_d + phi_t)``), written in place block by block: the
    batch is never transposed as a whole, which on a CPU costs as much as a march.  With
    ``norm``, also ``||r||^2`` per input ``(B,)`` (padding blocks excluded), summed from
    the rows as they are read.
    """
    K, B, Qp = phi.shape
    _, _, _, _, nb, b = f.shape
    L = f.L

    def blocked(x):
        return jnp.swapaxes(x.reshape(K, B, nb, b), 1, 2)  # (K, nb, B, b)

    def step(state, inp):
        phi, J, out, b2 = state
        row, l = inp
        S = row["S"]
        r = None if source is None else source(l, row)
        if getattr(f, "dform", False):
            # D-form (S holds D): ``r`` is the scaled right-hand side ``S r``, and every
            # S below enters as S * S = D.
            Sy = -S * phi if r is None else r - S * phi
            h = jax.vmap(_apply_rec, (0, 0, None))(row["h"], Sy, True)
            ph = jax.vmap(_apply_rec, (0, 0, None))(row["p"], row["w"] * h, False)
            J = J + (Sy - S * ph)
            phi = phi - row["Rt"] * J
            return (phi, J, out, b2), None
        y = -S * phi if r is None else r - S * phi
        if norm:
            real = (jnp.arange(K) * L + l < f.shape[0])[:, None]  # (K, 1): p < P
            b2 = b2 + jnp.sum(jnp.where(real, jnp.sum(jnp.square(r), axis=(1, 3)), 0), axis=0)
        h = jax.vmap(_apply_rec, (0, 0, None))(row["h"], S * y, True)
        ph = jax.vmap(_apply_rec, (0, 0, None))(row["p"], row["w"] * h, False)
        if keep:
            red = jnp.transpose(ph + phi, (2, 0, 1, 3)).reshape(B, K, 1, Qp)
            out = lax.dynamic_update_slice(out, red, (0, 0, l, 0))
        J = J + S * (y - S * ph)
        phi = phi - row["Rt"] * J
        return (phi, J, out, b2), None

    out = jnp.zeros((B, K, L, Qp), phi.dtype) if keep else None
    b2 = jnp.zeros((B,), phi.dtype) if norm else None
    (phi, J, out, b2), _ = lax.scan(
        step, (blocked(phi), blocked(J), out, b2), (f.rows, jnp.arange(L)), reverse=True
    )

    def unblocked(x):
        return jnp.swapaxes(x, 1, 2).reshape(K, B, Qp)

    if norm:
        return unblocked(phi), unblocked(J), out, b2
    return unblocked(phi), unblocked(J), out


def _rows_source(f: Factor, x: jax.Array, flip: bool, scale: bool):
    """``source`` of :func:`_march` that reads the rows of ``x`` ``(B, P, Q)`` in place.

    ``flip``: ``x`` is in physical order, canonical block ``p`` being row ``P - 1 - p``
    (the ``"rows"`` orientation, whose canonical layout only reverses the rows), so the
    batch needs no reversed copy.  ``scale``: multiply by the block's ``S`` (``x`` is the
    unscaled drive).  Padding blocks (``p >= P``) are inert (no cell, no resistance), so
    the valid row they read never matters.
    """
    P, Q, _, Qp, nb, b = f.shape
    K, L = f.K, f.L
    B = x.shape[0]

    def source(l, row):
        if K == 1:
            p = jnp.minimum(l, P - 1)
            r = lax.dynamic_slice_in_dim(x, P - 1 - p if flip else p, 1, axis=1)
        else:
            p = jnp.minimum(jnp.arange(K) * L + l, P - 1)
            r = jnp.take(x, P - 1 - p if flip else p, axis=1, mode="clip")
        r = jnp.pad(r, ((0, 0), (0, 0), (0, Qp - Q)))
        r = jnp.transpose(r.reshape(B, K, nb, b), (1, 2, 0, 3))
        return r * row["S"] if scale else r

    return source


def _residual_source(f: Factor, d0: jax.Array, dJ: jax.Array):
    """``source`` of the residual ``-S (d0 + dJ cumRt)`` of :func:`_shoot`, formed block
    by block from the segment mismatches ``d0``, ``dJ`` ``(K, B, Qp)``, never stored."""
    _, _, _, _, nb, b = f.shape
    d0, dJ = (jnp.swapaxes(x.reshape(x.shape[:2] + (nb, b)), 1, 2) for x in (d0, dJ))

    def source(l, row):
        return -row["S"] * (d0 + dJ * row["cumRt"])

    return source


def _shoot(f: Factor, source, B: int, dtype, norm: bool = False):
    """One multiple-shooting solve of ``K z = r`` for the right-hand side ``source``.

    Returns ``(red, d0, dJ)``: the marched reductions ``red`` ``(B, K, L, Qp)`` and the
    segment-state mismatches ``d0``, ``dJ`` ``(K, B, Qp)``.  The march satisfies every
    equation of the network by construction (each to rounding) except continuity where
    the marching family leaves a segment: the potential below segment 0 must be ground,
    and the state below segment ``sigma`` must be the top state of segment
    ``sigma - 1``.  Any mismatch there makes the marched bit-line potential ``phi_t``
    differ from the exact ``A_t S z`` by a field that is affine in the resistance below
    each block (a constant offset per segment and line, plus a current mismatch times
    the cumulative resistance), so, exactly, ``A S z = red + diff`` and
    ``r - K z = -S diff`` with ``diff = d0 + dJ cumRt`` (:func:`_expand`), known in
    ``O(K Q)`` per input without applying ``A`` again.  With ``norm``, ``||r||^2`` per
    input is returned too (from the first march).
    """
    P, Q, Pp, Qp, nb, b = f.shape
    K = f.K
    zero = jnp.zeros((K, B, Qp), dtype)
    pphi, pJ, _, *b2 = _march(f, source, zero, zero, False, norm)

    # Sweep down from the top segment (eta = 0 there): a = Bm eta + pphi, c = Dm eta + pJ,
    # and the segment below starts with eta = c - Y_below a.
    Y_next = jnp.concatenate([jnp.zeros_like(f.Y[:1]), f.Y[:-1]])

    def fwd(eta, inp):
        Bm, Dm, Yn, pphi_s, pJ_s = inp
        a = eta @ Bm.T + pphi_s
        c = eta @ Dm.T + pJ_s
        return c - a @ Yn.T, (eta, a)

    _, (eta, a) = lax.scan(
        fwd, jnp.zeros((B, Qp), dtype), (f.Bm, f.Dm, Y_next, pphi, pJ), reverse=True
    )

    # Back substitution up from the grounded end (phi below segment 0 is ground, 0):
    # phi_top = Phi^{-1} (phi_below - a).
    def back(phi_below, inp):
        lu, a_s = inp
        top = jax.scipy.linalg.lu_solve(lu, (phi_below - a_s).T).T
        return top, top

    _, top = lax.scan(back, jnp.zeros((B, Qp), dtype), (f.lu, a))
    J_top = jnp.einsum("kBq,kpq->kBp", top, f.Y) + eta
    phi_out, J_out, red = _march(f, source, top, J_top, True)

    # Exact phi_t - marched phi_t on block p of segment s: d0[s] + dJ[s] * cumRt[s, p].
    cur = J_out - J_top  # cell current collected by each segment
    above = jnp.cumsum(cur[::-1], axis=0)[::-1] - cur  # ... by the segments above it
    dJ = above - J_top  # exact minus marched current entering the segment
    own = (top - phi_out) + dJ * f.cumRt[:, -1][:, None, :]  # exact drop over the segment
    below = jnp.cumsum(own, axis=0) - own  # exact potential below the segment
    return (red, below - phi_out, dJ, *b2)


def _expand(f: Factor, d0: jax.Array, dJ: jax.Array) -> jax.Array:
    """``diff = d0 + dJ cumRt`` of :func:`_shoot` as ``(B, K, L, Qp)`` (an expression
    that XLA fuses into its consumer)."""
    d0, dJ = (jnp.swapaxes(x, 0, 1)[:, :, None, :] for x in (d0, dJ))
    return d0 + dJ * f.cumRt[None]


def _cut(f: Factor, x: jax.Array) -> jax.Array:
    """``(B, K, L, Qp)`` canonical block data -> ``(B, P, Q)`` without the padding."""
    P, Q, Pp, Qp, _, _ = f.shape
    return x.reshape(x.shape[0], Pp, Qp)[:, :P, :Q]


def apply(f: Factor, r: jax.Array):
    """``z ~ K^{-1} r`` for canonical ``r`` ``(..., P, Q)``, with ``A S z`` and ``r - K z``.

    Returns ``(z, ASz, res)``; ``ASz`` and ``res`` are exact for the returned ``z`` (see
    :func:`_shoot`).
    """
    P, Q = f.shape[:2]
    batch = r.shape[:-2]
    rb = r.reshape((-1, P, Q))
    red, d0, dJ = _shoot(f, _rows_source(f, rb, False, False), rb.shape[0], r.dtype)
    diff = _cut(f, _expand(f, d0, dJ))
    red = _cut(f, red)
    S = f.S[:P, :Q]
    shape = batch + (P, Q)
    return tuple(x.reshape(shape) for x in (rb - S * red, red + diff, -S * diff))


def _norm_weights(S: jax.Array, cumRt: jax.Array):
    """Weights of :func:`_residual_norm2`: per segment and line ``(K, Qp)``, the total
    ``w0 = sum_l S^2``, the weighted mean ``m`` of ``cumRt`` and ``w2 = sum_l S^2
    (cumRt - m)^2``."""
    a = jnp.square(S).reshape(cumRt.shape)
    w0 = jnp.sum(a, axis=1)
    m = jnp.sum(a * cumRt, axis=1) / jnp.where(w0 > 0, w0, 1)
    return w0, m, jnp.sum(a * jnp.square(cumRt - m[:, None]), axis=1)


def _residual_norm2(f: Factor, d0: jax.Array, dJ: jax.Array) -> jax.Array:
    """``||r - K z||^2 = sum S^2 (d0 + dJ cumRt)^2`` per input, ``(B,)``, in ``O(K Q)``.

    Centred on the weighted mean ``m`` of ``cumRt`` the sum splits exactly into
    ``w0 (d0 + dJ m)^2 + w2 dJ^2`` (the cross term vanishes): two non-negative terms, so
    nothing cancels however well ``d0`` and ``dJ cumRt`` cancel in the field itself.
    """
    w0, m, w2 = f.norm
    t = w0[:, None] * jnp.square(d0 + dJ * m[:, None]) + w2[:, None] * jnp.square(dJ)
    return jnp.sum(t, axis=(0, 2))


def trusted(planned: bool, tol: float, dtype) -> bool:
    """Whether the residual of :func:`_shoot` may decide convergence.

    Rounding inside a segment is amplified up to ``exp(LOG_GROWTH)`` and violates the
    equations there, which that residual does not see; it is trusted only for planned
    segments and where that bound lies far below ``tol`` (float64 at the default
    ``tol``).  Otherwise every residual test applies the exact operator.
    """
    eps = float(jnp.finfo(dtype).eps)
    return planned and tol >= 100 * eps * math.exp(LOG_GROWTH[jnp.dtype(dtype).itemsize])


def _field_drive(x: jax.Array, scaled: bool):
    """Right-hand side ``b = S x`` (``scaled``) or ``b = x`` from a batch of fields ``x``
    ``(..., M, N)``: ``drive(fac, S, orient) -> (source, number of inputs)``."""

    def drive(fac, S, orient):
        M, N = S.shape
        xb = x.reshape((-1, M, N))
        if orient == "rows":
            src = _rows_source(fac, xb, True, scaled)
        else:  # canonical = transposed: one copy of the batch
            src = _rows_source(fac, to_canonical(xb, orient), False, scaled)
        return src, xb.shape[0]

    return drive, x.shape[:-2]


def _line_drive(v_in: jax.Array, v_col: jax.Array):
    """Right-hand side ``b = S (v_in_i - v_col_j)`` from the line voltages ``v_in``
    ``(..., M)`` and ``v_col`` ``(..., N)`` (same leading axes), formed block by block:
    the batch of drive fields is never stored."""

    def drive(fac, S, orient):
        P, Q, Pp, Qp, nb, b = fac.shape
        K, L = fac.K, fac.L
        vi = v_in.reshape((-1, v_in.shape[-1]))[:, ::-1]
        vc = v_col.reshape((-1, v_col.shape[-1]))
        # canonical (p, q) = alpha[p] + beta[q]: rows (p <-> row P-1-p): v_in - v_col;
        # cols (p <-> column p, q <-> row Q-1-q): the same with the roles exchanged.
        alpha, beta = (vi, -vc) if orient == "rows" else (-vc, vi)
        B = alpha.shape[0]
        alpha = jnp.pad(alpha, ((0, 0), (0, Pp - P))).reshape(B, K, L)
        beta = jnp.pad(beta, ((0, 0), (0, Qp - Q)))

        def source(l, row):
            r = lax.dynamic_index_in_dim(alpha, l, 2, keepdims=False)[:, :, None] + beta[:, None]
            return jnp.transpose(r.reshape(B, K, nb, b), (1, 2, 0, 3)) * row["S"]

        return source, B

    return drive, v_in.shape[:-1]


def _refined(S, R_wl, R_bl, drive, tol, max_iter, K):
    """Trusted-residual refinement of ``K z = b`` with ``b`` from ``drive`` (a pair of
    :func:`_field_drive` / :func:`_line_drive`).

    Returns ``(parts, assemble, res, steps, converged)``: ``assemble(*parts)`` is
    ``A S z`` ``(B, M, N)`` (inputs flattened), from batch-leading parts (the marched
    reductions in canonical order and the segment mismatches), so that a caller may
    assemble it chunk by chunk; ``res = b - K z`` ``(..., M, N)`` is an expression of the
    carried state, so ``z = b - S ASz - res`` costs nothing where it is not used.  Only the
    marched reductions of the batch are carried; the residual of every step lives in
    ``O(K Q)`` segment mismatches per input.
    """
    M, N = S.shape
    orient = orientation(M, N)
    Rd, Rt = families(R_wl, R_bl, orient)
    fac = factor(to_canonical(S, orient), Rd, Rt, K)
    drive, batch = drive
    src, B = drive(fac, S, orient)
    dtype = S.dtype

    def cond(state):
        *_, rn, k = state
        return (k < max_iter) & jnp.any(~(rn <= thresh))  # NaN: go on

    def body(state):
        red, D0, DJ, d0, dJ, _, k = state
        dred, e0, eJ = _shoot(fac, _residual_source(fac, d0, dJ), B, dtype)
        return red + dred, D0 + e0, DJ + eJ, e0, eJ, _residual_norm2(fac, e0, eJ), k + 1

    red, d0, dJ, b2 = _shoot(fac, src, B, dtype, norm=True)
    thresh = (tol * tol) * b2
    init = (red, d0, dJ, d0, dJ, _residual_norm2(fac, d0, dJ), jnp.array(1, jnp.int32))
    red, D0, DJ, d0, dJ, rn, k = lax.while_loop(cond, body, init)
    P, Q, Pp, Qp, _, _ = fac.shape
    Sc = fac.S[:P, :Q]

    def assemble(red, D0, DJ):
        """``A S z`` ``(b, M, N)`` of batch-leading parts (any leading chunk of them)."""
        diff = D0[:, :, None, :] + DJ[:, :, None, :] * fac.cumRt[None]
        return from_canonical((red + diff.reshape(red.shape))[:, :P, :Q], orient)

    parts = (red.reshape(B, Pp, Qp), jnp.swapaxes(D0, 0, 1), jnp.swapaxes(DJ, 0, 1))
    res = -Sc * _cut(fac, _expand(fac, d0, dJ))
    res = from_canonical(res, orient).reshape(batch + (M, N))
    return parts, assemble, res, k, (rn <= thresh).reshape(batch)


def _exact_refined(S, R_wl, R_bl, b, tol, max_iter, K):
    """Refinement whose every residual test applies the exact operator."""
    M, N = S.shape
    orient = orientation(M, N)
    Rd, Rt = families(R_wl, R_bl, orient)
    fac = factor(to_canonical(S, orient), Rd, Rt, K)

    def inv(r):
        return from_canonical(apply(fac, to_canonical(r, orient))[0], orient)

    def op(z):
        a = _wires.apply_A(R_wl, R_bl, S * z)
        return z + S * a, a

    return refine(inv, op, b, tol, max_iter)


def solve_refined(S, R_wl, R_bl, b, tol, max_iter, K, planned=False):
    """Solve ``(I + S A S) z = b`` by marching + iterative refinement (``K`` segments).

    ``planned``: ``K`` came from :func:`plan`, so the growth inside a segment is bounded
    and the residual of :func:`_shoot` can be trusted (:func:`trusted`); otherwise every
    residual test applies the exact operator.

    Same contract as ``xbar._direct.solve_refined``: ``(z, steps, converged, A S z)``;
    ``S`` is ``(M, N)`` (linear cells; one factorisation for the whole batch).
    """
    S = lax.stop_gradient(S)
    if not trusted(planned, tol, b.dtype):
        return _exact_refined(S, R_wl, R_bl, b, tol, max_iter, K)
    parts, assemble, res, k, ok = _refined(S, R_wl, R_bl, _field_drive(b, False), tol, max_iter, K)
    ASz = assemble(*parts).reshape(b.shape)
    return b - S * ASz - res, k, ok, ASz


def solve_lines(S, R_wl, R_bl, v_in, v_col, tol, max_iter, K):
    """``A S z`` with ``(I + S A S) z = S v``, ``v = v_in_i - v_col_j`` never stored.

    For planned segments and a trusted ``tol`` (:func:`trusted`); returns
    ``(parts, assemble, steps, converged)``: ``assemble(*parts)`` is ``A S z``
    ``(B, M, N)`` for the ``B`` inputs flattened, and is applied to any batch chunk of the
    parts alike (the cell voltages are ``v - A S z``).  ``v_in`` ``(..., M)``, ``v_col``
    ``(..., N)`` with the same leading axes.
    """
    S = lax.stop_gradient(S)
    parts, assemble, _, k, ok = _refined(S, R_wl, R_bl, _line_drive(v_in, v_col), tol, max_iter, K)
    return parts, assemble, k, ok


def effective_rows(D: jax.Array, Rd: jax.Array, Rt: jax.Array, K: int) -> jax.Array:
    """Output currents of all ``P`` unit inputs, canonical ``"rows"`` layout (``N <= M``).

    ``D`` ``(P, Q)``: canonical conductances ``G`` (the march runs in D-form, so that
    derivatives stay finite at ``G = 0``); ``Rd``, ``Rt``: word-line / bit-line
    resistances in canonical layout.  A unit input on block ``p`` drives the right-hand
    side ``S`` on that block only.  Only the outputs are needed, so the march keeps no
    fields: one march of the ``P`` inputs from zero states gives the particular states at
    the segment ends, the Riccati sweep and back substitution of :func:`_shoot` give the
    top state of every segment, and the current leaving the bottom of segment 0 (the
    sense row) is ``C_0 phi_top + Dm_0 J_top + J_particular``: the outputs.  Cost
    ``O(P^2 Q)`` on top of the factorisation (``O(P Q^2)``), no ``(P, P, Q)`` field.
    Returns ``(P inputs, Q outputs)``, input ``p`` being canonical block ``p``.
    """
    P, Q = D.shape
    S = D
    f = factor(D, Rd, Rt, K, dform=True)
    _, _, Pp, Qp, nb, b = f.shape
    L = f.L
    eye = jnp.pad(jnp.eye(P, dtype=S.dtype), ((0, 0), (0, Pp - P))).reshape(P, K, L)

    def source(l, row):
        a = lax.dynamic_index_in_dim(eye, l, 2, keepdims=False)  # (B, K)
        r = jnp.broadcast_to(a[:, :, None], (P, K, Qp))
        return jnp.transpose(r.reshape(P, K, nb, b), (1, 2, 0, 3)) * row["S"]

    zero = jnp.zeros((K, P, Qp), S.dtype)
    pphi, pJ, _ = _march(f, source, zero, zero, False)
    Y_next = jnp.concatenate([jnp.zeros_like(f.Y[:1]), f.Y[:-1]])

    def fwd(eta, inp):
        Bm, Dm, Yn, pphi_s, pJ_s = inp
        a = eta @ Bm.T + pphi_s
        c = eta @ Dm.T + pJ_s
        return c - a @ Yn.T, (eta, a)

    _, (eta, a) = lax.scan(
        fwd, jnp.zeros((P, Qp), S.dtype), (f.Bm, f.Dm, Y_next, pphi, pJ), reverse=True
    )
    # segment 0 only: phi_top = Phi_0^{-1} (0 - a_0); J_top = Y_0 phi_top + eta_0
    lu0 = jax.tree_util.tree_map(lambda x: x[0], f.lu)
    top = jax.scipy.linalg.lu_solve(lu0, (-a[0]).T).T
    J_top = top @ f.Y[0].T + eta[0]
    out = top @ f.C[0].T + J_top @ f.Dm[0].T + pJ[0]
    return out[:, :Q]
