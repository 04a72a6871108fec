"""Resistor-chain algebra: Laplacians of line chains and the canonical line layout.

One line family (all word lines, or all bit lines) has ``A_f = C R C^T`` per line (``C``
a triangular matrix of ones, ``R`` the segment resistances), so ``A_f^{-1}`` is the
tridiagonal Laplacian of the chain with conductances ``g = 1/R`` whose first node is
tied to the driver / sense node.  Its ``L D L^T`` factorisation is carried in
series/parallel-reduced conductances, which no rounding can make negative
(:func:`chain_factor`).  Both the line preconditioner of CG (``xbar._cg``) and the
direct solver (``xbar._direct``) use it; it imports none of the solvers.

Canonical layout (``xbar._direct``, ``xbar._march``): ``(P, Q)`` fields where block
``p`` (axis -2) is one line of the "dense" family running along ``q`` (axis -1) from its
grounded end ``q = 0``, and the other family runs along ``p`` from its grounded end
``p = 0``.  ``"rows"``: blocks are word lines (rows flipped so that the sense row
``M-1`` is ``p = 0``); ``"cols"``: blocks are bit lines (transposed, rows flipped so that
the sense end is ``q = 0``; word lines then run along ``p`` from the driver at ``p = 0``).

Reference: Golub & Van Loan, "Matrix Computations", 4th ed. (2013), section 4.3.6
(symmetric positive definite tridiagonal systems).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


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
    Returns ``(d, l)``: the pivots and the unit lower bidiagonal factor (``l[0] = 0``) of
    ``L D L^T``, for :func:`tridiag_apply`.
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


def tridiag_apply(d: jax.Array, l: jax.Array, w: jax.Array) -> jax.Array:
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


def chain_conductances(R: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Conductances ``1/R`` for the preconditioner, and whether the family has any wire.

    Zero-resistance segments have no conductance; the preconditioner (only) floors them
    at ``floor * max(R)`` (``floor`` = 1e-8 in float64, 1e-3 in float32), i.e. nearly
    merged nodes, which keeps ``1/R`` finite and the Thomas recursion accurate enough.
    A family with all segments zero has ``A_f = 0``; its factor is exactly the identity.
    (Barrier: see ``xbar._wires.diag_A``; XLA would fold ``max`` of constant wires at compile time.)
    """
    R = lax.optimization_barrier(R)
    rmax = jnp.max(R)
    has = rmax > 0
    floor = 1e-8 if R.dtype == jnp.float64 else 1e-3
    R_safe = jnp.where(has, jnp.maximum(R, floor * rmax), 1)
    return 1 / R_safe, has


def orientation(M: int, N: int) -> str:
    """Blocks along the shorter side: ``"rows"`` (block size N) if ``N <= M`` else ``"cols"``."""
    return "rows" if N <= M else "cols"


def to_canonical(x: jax.Array, orient: str) -> jax.Array:
    if orient == "rows":
        return x[..., ::-1, :]
    return jnp.swapaxes(x, -1, -2)[..., ::-1]


def from_canonical(x: jax.Array, orient: str) -> jax.Array:
    if orient == "rows":
        return x[..., ::-1, :]
    return jnp.swapaxes(x[..., ::-1], -1, -2)


def families(R_wl: jax.Array, R_bl: jax.Array, orient: str) -> tuple[jax.Array, jax.Array]:
    """``(R_dense, R_tridiagonal)`` in canonical layout."""
    Rw, Rb = to_canonical(R_wl, orient), to_canonical(R_bl, orient)
    return (Rw, Rb) if orient == "rows" else (Rb, Rw)
