"""Private helpers of :mod:`xbar.solve`: wire operators, batched PCG, input validation.

Everything here works on arrays whose last two axes are the crossbar ``(M, N)`` grid;
any leading axes are independent right-hand sides (a batch of input vectors).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# ---------------------------------------------------------------------------------------
# Prefix sums along a grid axis
# ---------------------------------------------------------------------------------------

_BLOCK = 16


def cumsum(x: jax.Array, axis: int, reverse: bool = False) -> jax.Array:
    """Inclusive prefix sum of ``x`` along ``axis`` (-1 or -2), optionally from the end.

    XLA on CPU lowers ``jnp.cumsum`` to a log-depth associative scan that is several times
    slower than a blocked formulation: split the axis into blocks of 16, sum inside each
    block with a 16x16 triangular matmul (BLAS) and add the prefix sum of the block totals.
    Exact zeros stay exact zeros (needed for the zero-wire-resistance limit).
    """
    n = x.shape[axis]
    if axis == -2 and x.ndim == 2:
        # A single grid: the rows are contiguous, and a sequential scan over them (one
        # vector add per row) is 3-7x faster than the blocked matmuls (256..1024 rows).
        def step(c, xk):
            c = c + xk
            return c, c

        return lax.scan(step, jnp.zeros_like(x[0]), x, reverse=reverse)[1]
    if n % _BLOCK or n < 4 * _BLOCK:
        return lax.cumsum(x, axis=x.ndim + axis, reverse=reverse)
    nb = n // _BLOCK
    # tri[k, l] = 1 where element k contributes to prefix l.
    tri = jnp.triu(jnp.ones((_BLOCK, _BLOCK), x.dtype))
    tri_b = jnp.triu(jnp.ones((nb, nb), x.dtype), 1)
    if reverse:
        tri, tri_b = tri.T, tri_b.T
    if axis == -1:
        xb = x.reshape(x.shape[:-1] + (nb, _BLOCK))
        intra = xb @ tri
        off = intra[..., -1 if not reverse else 0] @ tri_b
        return (intra + off[..., None]).reshape(x.shape)
    if axis == -2:
        xb = x.reshape(x.shape[:-2] + (nb, _BLOCK, x.shape[-1]))
        intra = jnp.einsum("...kbn,bc->...kcn", xb, tri)
        tot = intra[..., -1 if not reverse else 0, :]
        off = jnp.einsum("...kn,kl->...ln", tot, tri_b)
        return (intra + off[..., None, :]).reshape(x.shape)
    raise ValueError("axis must be -1 or -2")


# ---------------------------------------------------------------------------------------
# The wire operator A (resistive, cell currents -> voltage drops)
# ---------------------------------------------------------------------------------------


# On CPU a batch of fields is processed a few fields at a time, so that the four prefix
# sums of the wire operator run in cache: about 2x faster for 256 x 256 x 256 than one
# pass over the whole batch (measured 0.19 s vs 0.40 s, 2-core CPU).  Elements per chunk:
_CHUNK_ELEMS = 1 << 18


def map_chunks(fn, xs: tuple, chunkable: bool = True):
    """``fn(*xs)`` over chunks of the leading (batch) axes of ``xs`` on CPU.

    ``xs[0]`` is a batch of ``(M, N)`` fields; the other arrays share its leading axes.
    Chunks hold about ``_CHUNK_ELEMS`` elements, so that all the passes ``fn`` makes
    over one chunk run in cache.  ``chunkable=False`` (``fn`` closes over batched data)
    or another backend: one call on the whole batch.
    """
    lead, grid = xs[0].shape[:-2], xs[0].shape[-2:]
    n = int(np.prod(lead, dtype=int))
    k = min(n, max(1, _CHUNK_ELEMS // (grid[0] * grid[1])))
    while n % k:
        k -= 1
    if k >= n or not chunkable or jax.default_backend() != "cpu":
        return fn(*xs)
    flat = tuple(x.reshape((n // k, k) + x.shape[len(lead):]) for x in xs)
    out = lax.map(lambda a: fn(*a), flat)
    return jax.tree_util.tree_map(lambda o: o.reshape(lead + o.shape[2:]), out)


def _chunked(fn, R_wl: jax.Array, R_bl: jax.Array, c: jax.Array):
    """``fn(R_wl, R_bl, c)`` over chunks of ``c``'s leading (batch) axes on CPU."""
    return map_chunks(lambda x: fn(R_wl, R_bl, x), (c,), R_wl.ndim <= 2 and R_bl.ndim <= 2)


def wire_drops(R_wl: jax.Array, R_bl: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Word-line voltage drops and bit-line voltages caused by cell currents ``c``.

    Word line (row ``i``): segment ``k`` feeds cell ``(i, k)`` and, because the far end is
    open, carries every cell current beyond it, ``I_k = sum_{l >= k} c_l``; the node
    voltage is ``v_in - sum_{l <= k} R_l I_l``.  Bit line (column ``j``): segment ``i``
    lies below cell ``(i, j)`` and carries ``J_i = sum_{l <= i} c_l`` towards the sense
    node held at 0 V, so the node voltage is ``sum_{l >= i} R_l J_l``.

    Returns ``(drop_wl, v_bl)`` with ``v_wl = v_in - drop_wl``.  Both maps are symmetric
    positive semidefinite in ``c`` (``U^T diag(R) U`` with ``U`` a triangular matrix of
    ones), and they use resistances only, never conductances, so zero-resistance
    segments are exact.
    """
    return _chunked(_wire_drops, R_wl, R_bl, c)


def _wire_drops(R_wl, R_bl, c):
    i_wl = cumsum(c, -1, reverse=True)
    drop_wl = cumsum(R_wl * i_wl, -1)
    i_bl = cumsum(c, -2)
    v_bl = cumsum(R_bl * i_bl, -2, reverse=True)
    return drop_wl, v_bl


def _apply_A(R_wl, R_bl, c):
    d, b = _wire_drops(R_wl, R_bl, c)
    return d + b


def apply_A(R_wl: jax.Array, R_bl: jax.Array, c: jax.Array) -> jax.Array:
    """``A c = drop_wl + v_bl``: the reduction of cell voltage caused by currents ``c``."""
    return _chunked(_apply_A, R_wl, R_bl, c)


def diag_A(R_wl: jax.Array, R_bl: jax.Array) -> jax.Array:
    """Diagonal of ``A``: resistance from cell ``(i, j)`` to the driver plus to the sense node.

    Wire resistances given as Python numbers are compile-time constants under ``jit``;
    the barrier keeps XLA from evaluating these prefix sums at compile time (its constant
    folder takes seconds for a 256 x 512 array)."""
    R_wl, R_bl = lax.optimization_barrier((R_wl, R_bl))
    return jnp.cumsum(R_wl, -1) + jnp.cumsum(R_bl[..., ::-1, :], -2)[..., ::-1, :]


# ---------------------------------------------------------------------------------------
# Preconditioned conjugate gradients on K = I + S A S, batched over leading axes
# ---------------------------------------------------------------------------------------


MAX_REFINE = 50  # refinement steps of the direct solver (it needs 1, a few with floors)


def max_abs(x: jax.Array, axis=None) -> jax.Array:
    """``max|x|`` that cannot hide a NaN (a NaN counts as ``inf``).

    Needed for convergence tests: XLA's vectorised CPU ``max`` reduction drops NaNs in
    larger arrays (an all-NaN 64 x 64 field reduces to ``-inf``), which would turn a
    diverged solve into a "converged" one.
    """
    return jnp.max(jnp.where(jnp.isnan(x), jnp.inf, jnp.abs(x)), axis=axis)


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.sum(a * b, axis=(-2, -1), keepdims=True)


# ---------------------------------------------------------------------------------------
# Line preconditioner: exact inverse of I + S A_family S by Woodbury + tridiagonal solves
# ---------------------------------------------------------------------------------------
#
# One line family (all word lines, or all bit lines) has A_f = C R C^T per line (C a
# triangular matrix of ones, R the segment resistances), so A_f^{-1} = C^{-T} R^{-1} C^{-1}
# is the TRIDIAGONAL Laplacian of the chain with conductances g = 1/R whose first node is
# tied to the driver / sense node.  By Woodbury
#     (I + S A_f S)^{-1} = I - S (A_f^{-1} + S^2)^{-1} S,
# one pivot-free LDL^T (Thomas) solve per line, vectorised over all lines and the batch.
# The factorisation depends only on (S, R) and is computed once per linear solve.


def _tridiag_factor(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """LDL^T of symmetric tridiagonal matrices along axis 0 (other axes = independent lines).

    ``a[k]`` diagonal, ``b[k]`` couples ``k`` and ``k+1`` (``b[-1]`` unused).  Returns
    ``(d, l)`` with ``l[0] = 0``.  ``d`` is kept ``>= eps a`` so that the preconditioner
    stays positive definite even where rounding would destroy it (huge conductances of
    floored zero-resistance segments); PCG stays exact, only its speed could suffer.
    """
    eps = jnp.finfo(a.dtype).eps
    bm1 = jnp.concatenate([jnp.zeros_like(b[:1]), b[:-1]])

    def step(dprev, ab):
        ak, bk = ab
        lk = bk / dprev
        dk = jnp.maximum(ak - lk * bk, eps * ak)
        return dk, (dk, lk)

    _, (d, l) = lax.scan(step, jnp.ones_like(a[0]), (a, bm1))
    return d, l


def chain_factor(
    g_in: jax.Array, g_out: jax.Array, D: jax.Array, grounded_start: bool
) -> tuple[jax.Array, jax.Array]:
    """LDL^T of a resistor-chain Laplacian plus a diagonal, without cancellation.

    Node ``k`` (axis 0; other axes = independent lines) joins node ``k-1`` through
    ``g_in[k]`` (to ground for ``k = 0`` if ``grounded_start``, else ``g_in[0]`` is
    ignored) and node ``k+1`` through ``g_out[k]`` (to ground for the last node; 0 for an
    open end), and ground through ``D[k]``.  The matrix has diagonal
    ``g_in + g_out + D`` and off-diagonal ``-g_out[k] = -g_in[k+1]``.  Gaussian
    elimination from ``k = 0`` gives pivots ``d_k = g_out[k] + e_k``, where
    ``e_k = D_k + g_in[k] e_{k-1} / (g_in[k] + e_{k-1})`` is the conductance to ground of
    everything before node ``k`` (a series/parallel reduction of positive numbers).
    Carrying ``e`` instead of ``d`` avoids the cancellation of the textbook recursion
    ``d_k = a_k - b^2 / d_{k-1}``, which loses ``log10(|d| / e)`` digits per pivot: with
    ohm-scale wires and micro-siemens cells that is most of float32.
    Returns ``(d, l)`` in the convention of :func:`_tridiag_factor`.
    """
    tiny = jnp.finfo(D.dtype).tiny
    first = (jnp.arange(D.shape[0]) == 0).reshape((-1,) + (1,) * (D.ndim - 1))
    g_in = jnp.where(first, g_in if grounded_start else 0, g_in)

    def step(e_prev, inp):
        gi, D_k = inp
        den = gi + e_prev
        ok = den > 0
        e = D_k + jnp.where(ok, gi * e_prev / jnp.where(ok, den, 1), 0)
        return e, e

    e0 = D[0] + g_in[0]  # node 0: its own load plus the segment to ground (if any)
    _, e_rest = lax.scan(step, e0, (g_in[1:], D[1:]))
    e = jnp.concatenate([e0[None], e_rest])
    d = jnp.maximum(g_out + e, tiny)
    d_prev = jnp.concatenate([jnp.ones_like(d[:1]), d[:-1]])
    l = jnp.where(first, 0, -g_in / d_prev)
    return d, l


def _tridiag_apply(d: jax.Array, l: jax.Array, w: jax.Array) -> jax.Array:
    """Solve ``L D L^T x = w`` along axis 0 (``d``, ``l`` broadcast against ``w[k]``)."""

    def fwd(y, lw):
        lk, wk = lw
        y = wk - lk * y
        return y, y

    _, y = lax.scan(fwd, jnp.zeros_like(w[0]), (l, w))
    z = y / d
    lnext = jnp.concatenate([l[1:], jnp.zeros_like(l[:1])])

    def bwd(x, lz):
        ln, zk = lz
        x = zk - ln * x
        return x, x

    _, x = lax.scan(bwd, jnp.zeros_like(w[0]), (lnext, z), reverse=True)
    return x


def _chain_conductances(R: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Conductances ``1/R`` for the preconditioner, and whether the family has any wire.

    Zero-resistance segments have no conductance; the preconditioner (only) floors them
    at ``floor * max(R)`` (``floor`` = 1e-8 in float64, 1e-3 in float32), i.e. nearly
    merged nodes, which keeps ``1/R`` finite and the Thomas recursion accurate enough.
    A family with all segments zero has ``A_f = 0``; its factor is exactly the identity.
    (Barrier: see :func:`diag_A`; XLA would fold ``max`` of constant wires at compile time.)
    """
    R = lax.optimization_barrier(R)
    rmax = jnp.max(R)
    has = rmax > 0
    floor = 1e-8 if R.dtype == jnp.float64 else 1e-3
    R_safe = jnp.where(has, jnp.maximum(R, floor * rmax), 1)
    return 1 / R_safe, has


def line_factors(S: jax.Array, R_wl: jax.Array, R_bl: jax.Array):
    """Factors of ``T_f = A_f^{-1} + S^2`` for both families, line axis first.

    ``S`` is ``(..., M, N)``; its batch axes (a per-input Newton slope) are kept, size-1
    ones included, so the factors broadcast against ``(L, ..., lines)``.
    """
    D = S * S
    extra = (1,) * (S.ndim - 2)

    def chain(g):  # (L, lines) -> (L, 1.., lines)
        return g.reshape(g.shape[:1] + extra + g.shape[1:])

    # Word lines: line axis k = columns; segment k joins node k-1 (k = 0: driver) and k.
    g, has_w = _chain_conductances(R_wl.T)  # (N, M)
    g_next = jnp.concatenate([g[1:], jnp.zeros_like(g[:1])])
    g, g_next = chain(g), chain(g_next)
    fw = chain_factor(g, g_next, jnp.moveaxis(D, -1, 0), grounded_start=True)
    # Bit lines: line axis i = rows; segment i joins node i and i+1 (i = M-1: sense node).
    g, has_b = _chain_conductances(R_bl)  # (M, N)
    g_prev = jnp.concatenate([jnp.zeros_like(g[:1]), g[:-1]])
    g, g_prev = chain(g), chain(g_prev)
    fb = chain_factor(g_prev, g, jnp.moveaxis(D, -2, 0), grounded_start=False)
    return fw, has_w, fb, has_b


def _line_inv(S, factors, has, y, axis):
    """``(I + S A_f S)^{-1} y`` for the family whose line axis is ``axis`` (-1 or -2)."""
    d, l = factors
    x = _tridiag_apply(d, l, jnp.moveaxis(S * y, axis, 0))
    return y - jnp.where(has, S * jnp.moveaxis(x, 0, axis), 0)


def line_preconditioner(S: jax.Array, R_wl: jax.Array, R_bl: jax.Array):
    """SPD preconditioner ``M^{-1} = P_w^{-1} (K_w + P_b^{-1}) P_w^{-1}``.

    ``P_f = I + K_f``, ``K_f = S A_f S``.  This is the symmetric multiplicative
    (word line / bit line / word line) block iteration: with exact ``P_w`` solves its
    three sweeps simplify to this product, which is SPD (``K_w`` PSD, ``P_b^{-1}`` PD)
    and costs three line solves and no application of ``A`` (``K_w z = r - z`` for
    ``z = P_w^{-1} r``).  If the bit lines carry no resistance ``M^{-1} = K^{-1}``
    exactly; measured condition numbers of ``M^{-1} K`` are ~1.2 where Jacobi gives ~4.5,
    and ~6 where Jacobi gives ~70 (dense 32x32 checks at IR-drop parameters 2.6 and 10).
    """
    fw, has_w, fb, has_b = line_factors(S, R_wl, R_bl)

    def apply(r):
        z = _line_inv(S, fw, has_w, r, -1)
        u = r - z + _line_inv(S, fb, has_b, z, -2)
        return _line_inv(S, fw, has_w, u, -1)

    return apply


def pcg(
    S: jax.Array,
    R_wl: jax.Array,
    R_bl: jax.Array,
    b: jax.Array,
    tol: float,
    max_iter: int,
    precond: str = "jacobi",
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Solve ``(I + S A S) z = b`` by preconditioned CG, one CG per leading index.

    ``precond``: ``"jacobi"`` (diagonal), ``"line"`` (:func:`line_preconditioner`),
    ``"direct"`` (no CG: ``xbar._direct`` factorisation + iterative refinement, at most
    ``MAX_REFINE`` steps) or ``("march", K[, planned])`` (no CG: ``xbar._march`` +
    refinement, see :func:`is_march`).

    ``S`` (M, N) is the square root of the (differential) cell conductances; ``A`` is
    :func:`apply_A`.  The operator is symmetric with eigenvalues in
    ``[1, 1 + max(S^2) ||A||]`` and ``||A|| ~ 4 r N^2 / pi^2`` per line, so the condition
    number is set by the IR-drop parameter ``(N sqrt(r G))^2`` and CG needs about
    ``N sqrt(r G)`` iterations per decade.  Stops when ``||r||_2 <= tol ||b||_2`` for every
    right-hand side or after ``max_iter`` iterations.

    Returns ``(z, iterations, converged)``; ``converged`` has the batch shape of ``b``.
    """
    if precond == "direct" or is_march(precond):
        return _direct_solve(S, R_wl, R_bl, b, tol, max_iter, precond)[:3]
    S = lax.stop_gradient(S)
    if precond == "line":
        # size-1 batch axes on S so that the factors broadcast against every input
        S = S.reshape((1,) * (b.ndim - S.ndim) + S.shape)
        prec = line_preconditioner(S, R_wl, R_bl)
    elif precond == "jacobi":
        diag = 1.0 + S * S * diag_A(R_wl, R_bl)

        def prec(r):
            return r / diag
    else:
        raise ValueError(f"precond must be 'jacobi' or 'line'; got {precond!r}")

    def op(p):
        return p + S * apply_A(R_wl, R_bl, S * p)

    bb = _dot(b, b)
    thresh = (tol * tol) * bb

    def cond(state):
        _, r, _, _, k = state
        return (k < max_iter) & jnp.any(_dot(r, r) > thresh)

    def body(state):
        x, r, p, rz, k = state
        Ap = op(p)
        pAp = _dot(p, Ap)
        # Right-hand sides that are already solved have p = 0; keep them frozen.
        alpha = jnp.where(pAp > 0, rz / jnp.where(pAp > 0, pAp, 1), 0)
        x = x + alpha * p
        r = r - alpha * Ap
        z = prec(r)
        rz_new = _dot(r, z)
        beta = jnp.where(rz > 0, rz_new / jnp.where(rz > 0, rz, 1), 0)
        p = z + beta * p
        return x, r, p, rz_new, k + 1

    z0 = prec(b)
    state = (jnp.zeros_like(b), b, z0, _dot(b, z0), jnp.array(0, jnp.int32))
    x, r, _, _, k = lax.while_loop(cond, body, state)
    converged = (_dot(r, r) <= thresh)[..., 0, 0]
    return x, k, converged


def is_march(precond) -> bool:
    """``("march", K[, planned])``: ``xbar._march`` with ``K`` segments (``planned``: ``K``
    came from ``xbar._march.plan``, which bounds the growth per segment)."""
    return isinstance(precond, tuple) and precond[0] == "march"


def _direct_solve(S, R_wl, R_bl, b, tol, max_iter, precond="direct"):
    from . import _direct, _march  # (they import this module)

    if is_march(precond):
        return _march.solve_refined(S, R_wl, R_bl, b, tol, min(max_iter, MAX_REFINE),
                                    precond[1], len(precond) > 2 and precond[2])
    return _direct.solve_refined(S, R_wl, R_bl, b, tol, min(max_iter, MAX_REFINE))


def solve_J(
    S: jax.Array, R_wl: jax.Array, R_bl: jax.Array, rhs: jax.Array, tol: float, max_iter: int,
    precond: str = "jacobi",
):
    """Solve ``(I + A D) x = rhs`` with ``D = S^2`` (the Newton / linear-cell Jacobian).

    Substituting ``z = S x`` gives ``x = rhs - A S z`` with ``(I + S A S) z = S rhs``, a
    symmetric positive definite system; no division by ``S`` (cells may have ``G = 0``).
    The direct solver hands back the ``A S z`` of its last residual check.
    """
    if is_march(precond):
        from . import _march

        return _march.solve_J(S, R_wl, R_bl, rhs, tol, min(max_iter, MAX_REFINE),
                              precond[1], len(precond) > 2 and precond[2])
    if precond == "direct":
        z, k, ok, ASz = _direct_solve(S, R_wl, R_bl, S * rhs, tol, max_iter, precond)
        return rhs - ASz, k, ok
    z, k, ok = pcg(S, R_wl, R_bl, S * rhs, tol, max_iter, precond)
    return rhs - apply_A(R_wl, R_bl, S * z), k, ok


def solve_JT(
    S: jax.Array, R_wl: jax.Array, R_bl: jax.Array, rhs: jax.Array, tol: float, max_iter: int,
    precond: str = "jacobi",
):
    """Solve the transposed system ``(I + D A) y = rhs`` (adjoint of :func:`solve_J`).

    ``y = rhs - S w`` with ``(I + S A S) w = S A rhs``.
    """
    w, k, ok = pcg(S, R_wl, R_bl, S * apply_A(R_wl, R_bl, rhs), tol, max_iter, precond)
    return rhs - S * w, k, ok


# ---------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------


def is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_array(name: str, x, shapes: tuple[tuple[int, ...], ...], *, allow_zero=True, what=""):
    """Validate a non-negative finite parameter; returns it as a jax array.

    ``shapes`` lists the accepted shapes (``()`` = scalar).  Concrete values are checked
    eagerly (``ValueError``); traced values get an ``eqx.error_if`` run-time check.
    """
    shape = tuple(np.shape(x))
    if shape not in shapes:
        accepted = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} has shape {shape}; expected {accepted}{what}")
    rng = "finite and >= 0" if allow_zero else "finite and > 0"
    if is_concrete(x):
        a = np.asarray(x)
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
        bad = ~np.isfinite(a) | ((a < 0) if allow_zero else (a <= 0))
        if np.any(bad):
            v = a[bad].ravel()[0] if a.ndim else a
            raise ValueError(f"{name} must be {rng} everywhere; got {v}")
        return jnp.asarray(x)
    x = jnp.asarray(x)
    bad = ~jnp.isfinite(x) | ((x < 0) if allow_zero else (x <= 0))
    return eqx.error_if(x, jnp.any(bad), f"{name} must be {rng} everywhere")


def check_finite(name: str, x) -> jax.Array:
    if is_concrete(x):
        a = np.asarray(x)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite (no NaN/inf)")
        return jnp.asarray(x)
    x = jnp.asarray(x)
    return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), f"{name} must be finite (no NaN/inf)")
