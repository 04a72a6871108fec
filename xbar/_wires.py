"""The wire operator of a crossbar: cell currents to voltage drops, in resistance form.

Every line is a resistor chain driven from one end with the other end open, so the
current in each wire segment is a partial sum of cell currents ``c`` and the node
voltages follow from resistances alone (``R_wl[:, 0]`` includes ``r_src``,
``R_bl[M-1, :]`` includes ``r_sense``):

    v_wl[i, k] = v_in[i] - sum_{l<=k} R_wl[i, l] * sum_{m>=l} c[i, m]
    v_bl[i, j] = v_col[j] + sum_{l>=i} R_bl[l, j] * sum_{m<=l} c[m, j]

so ``v_wl - v_bl = v - A c`` with ``A`` symmetric positive semidefinite (four prefix
sums, ``O(MN)``; no conductance ``1/r`` anywhere, so zero-resistance wires are exact).
This module is the floor under the solvers (``docs/solver.md``): it imports none of them.
Arrays have the crossbar grid ``(M, N)`` as their last two axes; leading axes are
independent right-hand sides.
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
# sums of the wire operator run in cache (about 2x faster for 256 x 256 x 256 than one
# pass over the whole batch on a 2-core CPU; benchmarks/RESULTS.md).  Elements per chunk:
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
    flat = tuple(x.reshape((n // k, k) + x.shape[len(lead) :]) for x in xs)
    out = lax.map(lambda a: fn(*a), flat)
    return jax.tree_util.tree_map(lambda o: o.reshape(lead + o.shape[2:]), out)


def _chunked(fn, R_wl: jax.Array, R_bl: jax.Array, c: jax.Array):
    """``fn(R_wl, R_bl, c)`` over chunks of ``c``'s leading (batch) axes on CPU."""
    return map_chunks(lambda x: fn(R_wl, R_bl, x), (c,), R_wl.ndim <= 2 and R_bl.ndim <= 2)


def drops(R_wl, R_bl, c):
    """Word-line voltage drops and bit-line voltages caused by cell currents ``c``.

    Word line (row ``i``): segment ``k`` feeds cell ``(i, k)`` and, because the far end is
    open, carries every cell current beyond it, ``I_k = sum_{l >= k} c_l``; the node
    voltage is ``v_in - sum_{l <= k} R_l I_l``.  Bit line (column ``j``): segment ``i``
    lies below cell ``(i, j)`` and carries ``J_i = sum_{l <= i} c_l`` towards the sense
    node, so the node voltage is ``sum_{l >= i} R_l J_l`` above the sense hold.

    Returns ``(drop_wl, v_bl)`` with ``v_wl = v_in - drop_wl``.  Both maps are symmetric
    positive semidefinite in ``c`` (``U^T diag(R) U`` with ``U`` a triangular matrix of
    ones), and they use resistances only, never conductances, so zero-resistance
    segments are exact.  One pass (no chunking; see :func:`apply_A`).
    """
    i_wl = cumsum(c, -1, reverse=True)
    drop_wl = cumsum(R_wl * i_wl, -1)
    i_bl = cumsum(c, -2)
    v_bl = cumsum(R_bl * i_bl, -2, reverse=True)
    return drop_wl, v_bl


def _apply_A(R_wl, R_bl, c):
    d, b = drops(R_wl, R_bl, c)
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
    return cumsum(R_wl, -1) + cumsum(R_bl, -2, reverse=True)


def max_abs(x: jax.Array, axis=None) -> jax.Array:
    """``max|x|`` that cannot hide a NaN (a NaN counts as ``inf``).

    Needed for convergence tests: XLA's vectorised CPU ``max`` reduction drops NaNs in
    larger arrays (an all-NaN 64 x 64 field reduces to ``-inf``), which would turn a
    diverged solve into a "converged" one.
    """
    return jnp.max(jnp.where(jnp.isnan(x), jnp.inf, jnp.abs(x)), axis=axis)


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Inner product over the grid axes, per leading index (kept as size-1 axes)."""
    return jnp.sum(a * b, axis=(-2, -1), keepdims=True)


class Operator(eqx.Module):
    """The symmetrised crossbar operator ``K = I + S A S`` (``S = sqrt(D)``, ``D`` the
    (differential) cell conductances, ``A`` the wire operator of :func:`apply_A`).

    ``S`` is ``(M, N)`` or carries leading batch axes (a Newton slope per input);
    ``R_wl``, ``R_bl`` are the folded ``(M, N)`` segment resistances.
    """

    S: jax.Array
    R_wl: jax.Array
    R_bl: jax.Array

    def mv(self, z: jax.Array) -> jax.Array:
        return z + self.S * apply_A(self.R_wl, self.R_bl, self.S * z)

    def mv_aux(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(K z, A S z)``."""
        a = apply_A(self.R_wl, self.R_bl, self.S * z)
        return z + self.S * a, a

    def gershgorin(self) -> jax.Array:
        """Upper bound of the condition number of ``K``: ``1 + max_i (S A S 1)_i``.

        ``A`` has non-negative entries, so ``S A S 1`` holds the row sums of the
        non-negative matrix ``S A S`` and their maximum bounds its largest eigenvalue
        (Gershgorin); the smallest eigenvalue of ``K`` is at least 1.  Per leading index
        of ``S`` (shape ``S.shape[:-2]``).
        """
        rows = self.S * apply_A(self.R_wl, self.R_bl, self.S)
        return 1 + max_abs(rows, axis=(-2, -1))
