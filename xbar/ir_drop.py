"""First-order IR drop: an effective matrix in O(MN), cheap enough for every training step.

Circuit (``DESIGN.md``): row ``i`` is driven at its column-0 end through ``r_src`` and
word-line segments ``r_wl``; column ``j`` is sensed at its row-``(M-1)`` end through
``r_sense`` and bit-line segments ``r_bl``. With cell currents ``c`` the exact node
voltages are (see :mod:`xbar.solve`)

    v_wl[i, k] = v_i - sum_{l<=k} R_wl[i, l] sum_{m>=l} c[i, m]
    v_bl[i, j] =       sum_{l>=i} R_bl[l, j] sum_{m<=l} c[m, j]

(``R_wl[:, 0]`` includes ``r_src``, ``R_bl[M-1, :]`` includes ``r_sense``). In operator
form ``u = v - A c`` and ``c = G u``, so ``c = D (I + A D)^{-1} v`` with ``D = diag(G)``.
Expanding to first order in the wire resistance, ``c ~ D v - D A D v``: the zeroth-order
currents ``c0[i, j] = G[i, j] v_i`` flow through the lines, their cumulative sums drop
the node voltages, and the cell currents are corrected once. Both drops are linear in
the inputs with coefficients that depend on ``G`` and the wires only:

* word line ``i`` carries only row ``i``'s drive, so its drop at cell ``(i, k)`` is
  ``v_i a[i, k]``, ``a[i, k] = sum_{l<=k} R_wl[i, l] sum_{m>=l} G[i, m]``;
* on bit line ``j`` the correction of output ``j`` for input ``m`` is, by reciprocity of
  the ladder, the relative drop that a uniform drive produces at cell ``(m, j)``:
  ``b[m, j] = sum_{l>=m} R_bl[l, j] sum_{i<=l} G[i, j]``.

Hence the first-order effective matrix (``i_out = v @ W1``)

    W1 = G * (1 - a - b)                         (Taylor form)                (1)
    W1 = G / (1 + a + b)                         (resummed form, default)     (2)

two cumulative sums along each line, O(MN), cheaper than the matrix product ``v @ W1``
itself, differentiable in ``G`` and the resistances, for any batch of inputs.
``delta = a + b`` is the first-order relative voltage loss of each cell when every row is
driven with the same voltage; its maximum ``eps = max(delta)`` is the IR-drop parameter of
the array (:func:`ir_drop_fraction`). For uniform ``G`` and wires
``eps ~ r G (N (N + 1) + M (M + 1)) / 2``, i.e. ``r G N^2`` for a square array of side ``N``.
Form (2) has the same first-order term (``1/(1 + delta) = 1 - delta + O(delta^2)``); it
treats each cell's loss as a resistance ``delta / G`` in series with it, so it stays
positive and resums the leading part of the higher orders.

Error. Both are exact to first order in the wire resistances, so their error against the
exact ``W_eff`` (:func:`xbar.effective_matrix`) is second order, ``~ eps^2 ||G||``, where
ignoring the wires (``W = G``) errs by ``~ 0.6 eps ||G||``. Measured (float64, against the
exact :func:`xbar.effective_matrix`; ``G`` uniform in ``[0, 25 uS]``, uniform wires
``r_wl = r_bl = r`` set for the given ``eps``; relative Frobenius error
``e = ||W - W_eff||_F / ||W_eff||_F``; ``tests/xbar/test_ir_drop.py`` checks the bounds)::

    size     eps    e(W=G)   e(1)      e(1)/eps^2   e(2)      e(2)/eps^2
    32x32    0.03   0.017    3.2e-4    0.36         4.9e-5    0.055
    32x32    0.30   0.17     3.2e-2    0.35         3.9e-3    0.043
    32x32    1.00   0.56     0.34      0.34         2.8e-2    0.028
    128x128  0.03   0.019    3.8e-4    0.42         6.0e-5    0.066
    128x128  0.30   0.19     3.7e-2    0.42         4.7e-3    0.052
    128x128  1.00   0.61     0.40      0.40         3.3e-2    0.033
    256x256  0.03   0.020    4.0e-4    0.45         6.3e-5    0.070
    256x256  0.30   0.19     3.9e-2    0.44         5.0e-3    0.055
    256x256  1.00   0.63     0.42      0.42         3.4e-2    0.034
    64x256   0.10   0.067    5.0e-3    0.50         7.9e-4    0.079
    256x20   0.10   0.067    5.1e-3    0.51         8.4e-4    0.084

(r G for these: from 4.6e-5 at 32x32, eps 0.03, down to 8.5e-7 at 256x256, eps 0.03.)
Over sizes 32 to 256 and ``eps <= 1``: ``e(1) <= 0.55 eps^2`` and ``e(2) <= 0.1 eps^2``; both
fall 4x when the wire resistance halves.

Validity. The expansion converges while ``||A D|| < 1``. Form (1) is useful for
``eps <~ 0.3`` (error below ~4 %) and meaningless for ``eps >~ 1``, where ``1 - delta``
turns negative (a far cell would conduct backwards). Form (2) stays below ~5 % up to
``eps ~ 1`` and degrades gracefully beyond (12 % at ``eps ~ 2.3``, 64x256), but
``eps >~ 1`` means the far cells lose most of their drive: there the line currents
redistribute (sneak paths, strongly non-uniform voltages) and only the exact solve is
meaningful. Use this model inside training, where its error is far below the device noise,
and evaluate with the exact :func:`xbar.effective_matrix` / :func:`xbar.solve`. Linear
cells only (the chord conductance at the read voltage for nonlinear ones).

Source: first-order perturbation of the nodal equations of :mod:`xbar.solve` (standard
modified nodal analysis of resistive crossbars, e.g. Chen, "Design of resistive synaptic
array for implementing on-chip sparse learning", 2016), derived here; no further model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["effective_matrix_first_order", "ir_drop_fraction"]

_BLOCK = 32
_HI = jax.lax.Precision.HIGHEST


def _block(n: int) -> int:
    """Block length of the prefix sums for ``n`` elements: ``n`` itself up to 32, else the
    divisor of ``n`` nearest to 32 in [16, 64] (no padding), else 32."""
    if n <= _BLOCK:
        return n
    for d in sorted(range(16, 65), key=lambda d: (abs(d - _BLOCK), d)):
        if n % d == 0:
            return d
    return _BLOCK


def _cumsum(x, axis: int, reverse: bool = False):
    """Inclusive prefix sum of ``x`` (..., M, N) along ``axis`` (-1 or -2), or suffix sum
    (``reverse``): sums within blocks of about 32 elements and over the block totals, each a
    product with a small triangular matrix of ones (full float precision). Equal to
    ``jnp.cumsum`` up to rounding; O(n * 32) work, where XLA's CPU backend lowers
    ``jnp.cumsum`` to a windowed reduction of O(n^2)."""
    n = x.shape[axis]
    bs = _block(n)
    nb = -(-n // bs)
    ones = jnp.ones((bs, bs), x.dtype)
    ones_b = jnp.ones((nb, nb), x.dtype)
    # tri[l, k] = 1 where element k of a block enters output l; tri_b likewise for blocks;
    # the extra column adds the sum of the earlier blocks, appended to each block, so that
    # the result is the plain output of one product (XLA's CPU backend emits scalar code
    # for loops that combine partial sums laid out by blocks)
    tri = jnp.triu(ones) if reverse else jnp.tril(ones)
    tri = jnp.concatenate([tri, jnp.ones((bs, 1), x.dtype)], axis=1)
    tri_b = jnp.triu(ones_b, 1) if reverse else jnp.tril(ones_b, -1)
    pad = [(0, 0)] * x.ndim
    if axis in (-1, x.ndim - 1):
        pad[-1] = (0, nb * bs - n)
        xb = (jnp.pad(x, pad) if nb * bs > n else x).reshape(x.shape[:-1] + (nb, bs))
        off = jnp.einsum("...c,bc->...b", jnp.sum(xb, axis=-1), tri_b, precision=_HI)
        xb = jnp.concatenate([xb, off[..., None]], axis=-1)
        out = jnp.einsum("...bk,lk->...bl", xb, tri, precision=_HI)
        out = out.reshape(x.shape[:-1] + (nb * bs,))
        return out[..., :n] if nb * bs > n else out
    pad[-2] = (0, nb * bs - n)
    xb = (jnp.pad(x, pad) if nb * bs > n else x).reshape(x.shape[:-2] + (nb, bs, x.shape[-1]))
    off = jnp.einsum("bc,...cn->...bn", tri_b, jnp.sum(xb, axis=-2), precision=_HI)
    xb = jnp.concatenate([xb, off[..., None, :]], axis=-2)
    # a product batched over the blocks, so that the result is laid out as x (no transpose)
    out = jnp.matmul(jnp.broadcast_to(tri, (nb, bs, bs + 1)), xb, precision=_HI)
    out = out.reshape(x.shape[:-2] + (nb * bs, x.shape[-1]))
    return out[..., :n, :] if nb * bs > n else out


def _drop_parts(G, R_wl, R_bl):
    """``(delta, (down_wl, up_bl))``: the loss ``a + b`` and the line sums of ``G`` it is
    built from (module docstring)."""
    # word line: segment l carries the currents of cells l..N-1 of its row
    down_wl = _cumsum(G, -1, reverse=True)
    # bit line: segment l (below cell l) carries the currents of cells 0..l of its column
    up_bl = _cumsum(G, -2)
    delta = _cumsum(R_wl * down_wl, -1) + _cumsum(R_bl * up_bl, -2, reverse=True)
    return delta, (down_wl, up_bl)


@jax.custom_vjp
def _delta(G, r_wl, r_bl, r_src, r_sense):
    """``a + b`` of ``G``; resistances as given (broadcast inside, never stored full size)."""
    return _drop_parts(G, *_line_resistances(G, r_wl, r_bl, r_src, r_sense))[0]


def _delta_fwd(G, r_wl, r_bl, r_src, r_sense):
    delta, sums = _drop_parts(G, *_line_resistances(G, r_wl, r_bl, r_src, r_sense))
    return delta, (G.shape, sums, (r_wl, r_bl, r_src, r_sense))


def _unbroadcast(x, shape):
    """Sum ``x`` down to ``shape`` (the cotangent of a broadcast to ``x.shape``)."""
    lead = x.ndim - len(shape)
    x = jnp.sum(x, axis=tuple(range(lead))) if lead else x
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return jnp.sum(x, axis=keep, keepdims=True) if keep else x


def _delta_bwd(res, h):
    # G -> a = L (R_wl * (U G)) along rows and G -> b = U (R_bl * (L G)) along columns
    # (L prefix, U suffix sums, U = L^T) are symmetric operators: the cotangent of G is the
    # same map applied to h; those of the resistances are products of line sums.
    shape, (down_wl, up_bl), rs = res
    R_wl, R_bl = _line_resistances(jax.ShapeDtypeStruct(shape, h.dtype), *rs)
    g_G, (h_down, h_up) = _drop_parts(h, R_wl, R_bl)
    g_wl, g_bl = h_down * down_wl, h_up * up_bl
    r_wl, r_bl, r_src, r_sense = rs
    return (
        g_G,
        _unbroadcast(g_wl, jnp.shape(r_wl)),
        _unbroadcast(g_bl, jnp.shape(r_bl)),
        _unbroadcast(g_wl[..., :, 0], jnp.shape(r_src)),
        _unbroadcast(g_bl[..., -1, :], jnp.shape(r_sense)),
    )


_delta.defvjp(_delta_fwd, _delta_bwd)


def _min_sum(x, axis: int, reverse: bool = False):
    """``y[k] = sum_m x[m] (min(c(k), c(m)) + 1)`` along ``axis`` (-1 or -2), ``c(k) = k``, or
    ``n - 1 - k`` with ``reverse``: a prefix sum of suffix sums (``reverse``: a suffix sum of
    prefix sums) in one pass. With ``k = p bs + i`` in blocks of ``bs`` (which must divide
    ``n``), the blocks ``q > p`` enter through their sums ``S_q`` times ``c(k) + 1`` and the
    blocks ``q < p`` through ``c_q bs S_q + sum_j (j + 1) x_qj``; each block and two
    block-level columns then go through one product with a fixed matrix."""
    rows = axis in (-2, x.ndim - 2)
    n = x.shape[-2] if rows else x.shape[-1]
    bs = _block(n)
    nb = n // bs
    dt = x.dtype
    i = jnp.arange(bs, dtype=dt)
    j = (bs - 1 - i) if reverse else i  # position within the block, in the orientation
    p = jnp.arange(nb, dtype=dt)
    pb = (nb - 1 - p) if reverse else p  # block index, in the orientation
    later = (p[None, :] > p[:, None]) if not reverse else (p[None, :] < p[:, None])
    later = later.astype(dt)  # later[b, c] = 1 where block c comes after block b
    weights = jnp.stack([jnp.ones_like(j), j + 1], -1)  # block sums S and moments M
    within = jnp.minimum(j[:, None], j[None, :]) + 1.0
    mat = jnp.concatenate([within, (j + 1.0)[:, None], jnp.ones((bs, 1), dt)], axis=1)
    if rows:  # blocks of rows: products batched over the blocks keep x's layout
        xb = x.reshape(x.shape[:-2] + (nb, bs, x.shape[-1]))
        stats = jnp.einsum("...bkn,ks->...bsn", xb, weights, precision=_HI)
        S, M = stats[..., 0, :], stats[..., 1, :]
        T = jnp.einsum("bc,...cn->...bn", later, S, precision=_HI)
        E = jnp.einsum("bc,...cn->...bn", later.T, pb[:, None] * bs * S + M, precision=_HI)
        c = pb[:, None] * bs * (S + T) + E
        xb = jnp.concatenate([xb, T[..., None, :], c[..., None, :]], axis=-2)
        out = jnp.matmul(jnp.broadcast_to(mat, (nb, bs, bs + 2)), xb, precision=_HI)
        return out.reshape(x.shape)
    xb = x.reshape(x.shape[:-1] + (nb, bs))
    stats = jnp.einsum("...bk,ks->...bs", xb, weights, precision=_HI)
    S, M = stats[..., 0], stats[..., 1]
    T = jnp.einsum("...c,bc->...b", S, later, precision=_HI)
    E = jnp.einsum("...c,bc->...b", pb * bs * S + M, later.T, precision=_HI)
    c = pb * bs * (S + T) + E
    xb = jnp.concatenate([xb, T[..., None], c[..., None]], axis=-1)
    return jnp.einsum("...bk,lk->...bl", xb, mat, precision=_HI).reshape(x.shape)


def _uniform_parts(G, r_wl, r_bl, r_src, r_sense):
    """``(delta, parts)`` for scalar segment resistances: ``r_wl A + r_src S_row + r_bl B +
    r_sense S_col`` with ``A = _min_sum`` along rows, ``B`` the reverse along columns and the
    line totals ``S``."""
    A, B = _min_sum(G, -1), _min_sum(G, -2, reverse=True)
    s_row, s_col = jnp.sum(G, axis=-1), jnp.sum(G, axis=-2)
    src = r_src[..., None] if r_src.ndim else r_src
    delta = r_wl * A + r_bl * B + src * s_row[..., None] + r_sense * s_col[..., None, :]
    return delta, (A, B, s_row, s_col)


@jax.custom_vjp
def _delta_uniform(G, r_wl, r_bl, r_src, r_sense):
    """:func:`_delta` for scalar ``r_wl``, ``r_bl``: half the passes of the general form."""
    return _uniform_parts(G, r_wl, r_bl, r_src, r_sense)[0]


def _delta_uniform_fwd(G, r_wl, r_bl, r_src, r_sense):
    delta, parts = _uniform_parts(G, r_wl, r_bl, r_src, r_sense)
    return delta, (parts, (r_wl, r_bl, r_src, r_sense))


def _delta_uniform_bwd(res, h):
    # every part is a symmetric linear map of G (min(k, m) + 1 and the all-ones line sums)
    (A, B, s_row, s_col), rs = res
    g_G, (_, _, h_row, h_col) = _uniform_parts(h, *rs)
    r_wl, r_bl, r_src, r_sense = rs
    return (
        g_G,
        _unbroadcast(h * A, jnp.shape(r_wl)),
        _unbroadcast(h * B, jnp.shape(r_bl)),
        _unbroadcast(h_row * s_row, jnp.shape(r_src)),
        _unbroadcast(h_col * s_col, jnp.shape(r_sense)),
    )


_delta_uniform.defvjp(_delta_uniform_fwd, _delta_uniform_bwd)


def _line_resistances(G, r_wl, r_bl, r_src, r_sense):
    """Per-segment resistances ``(R_wl, R_bl)``, broadcast to ``G``'s shape ``(..., M, N)``
    [Ohm] (written with selects, so that XLA fuses them into their consumers)."""
    shape = tuple(G.shape)
    nd = len(shape)
    r_src = jnp.asarray(r_src, G.dtype)
    r_sense = jnp.asarray(r_sense, G.dtype)
    first_col = jax.lax.broadcasted_iota(jnp.int32, shape, nd - 1) == 0
    last_row = jax.lax.broadcasted_iota(jnp.int32, shape, nd - 2) == shape[-2] - 1
    src = r_src[..., :, None] if r_src.ndim else r_src
    sense = r_sense[..., None, :] if r_sense.ndim else r_sense
    R_wl = jnp.asarray(r_wl, G.dtype) + jnp.where(first_col, src, 0.0)
    R_bl = jnp.asarray(r_bl, G.dtype) + jnp.where(last_row, sense, 0.0)
    return jnp.broadcast_to(R_wl, shape), jnp.broadcast_to(R_bl, shape)


def _check(G):
    G = jnp.asarray(G)
    if G.ndim < 2:
        raise ValueError(f"G must have shape (..., M, N), got shape {G.shape}")
    return G.astype(jnp.promote_types(G.dtype, jnp.float32))


def ir_drop_fraction(
    G: Float[ArrayLike, "*b M N"],
    *,
    r_wl: float | Float[ArrayLike, "M N"],
    r_bl: float | Float[ArrayLike, "M N"],
    r_src: float | Float[ArrayLike, " M"] = 0.0,
    r_sense: float | Float[ArrayLike, " N"] = 0.0,
) -> Float[Array, "*b M N"]:
    """First-order relative voltage loss ``delta = a + b`` of every cell (module docstring).

    ``delta[i, j]`` is the fraction of the drive lost on the wires at cell ``(i, j)``
    when all rows are driven with the same voltage, to first order in the wire
    resistance [-]; ``max(delta)`` is the IR-drop parameter ``eps`` that decides whether
    :func:`effective_matrix_first_order` is valid (``eps <~ 0.3``).

    Args:
        G: cell conductances [S], shape ``(..., M, N)``.
        r_wl, r_bl: word-/bit-line segment resistance [Ohm] (scalar or ``(M, N)``).
        r_src: driver resistance [Ohm] (scalar or ``(M,)``); r_sense: sense-node input
            resistance [Ohm] (scalar or ``(N,)``).
    """
    G = _check(G)
    r_wl, r_bl, r_src, r_sense = (jnp.asarray(r, G.dtype) for r in (r_wl, r_bl, r_src, r_sense))
    M, N = G.shape[-2:]
    uniform = r_wl.ndim == 0 and r_bl.ndim == 0 and r_src.ndim <= 1 and r_sense.ndim <= 1
    if uniform and M % _block(M) == 0 and N % _block(N) == 0:
        return _delta_uniform(G, r_wl, r_bl, r_src, r_sense)
    return _delta(G, r_wl, r_bl, r_src, r_sense)


def effective_matrix_first_order(
    G: Float[ArrayLike, "*b M N"],
    *,
    r_wl: float | Float[ArrayLike, "M N"],
    r_bl: float | Float[ArrayLike, "M N"],
    r_src: float | Float[ArrayLike, " M"] = 0.0,
    r_sense: float | Float[ArrayLike, " N"] = 0.0,
    resummed: bool = True,
) -> Float[Array, "*b M N"]:
    """Effective conductance matrix [S] to first order in the wire resistance, so that
    ``i_out ~ v_in @ W1``: ``G / (1 + delta)`` (``resummed``, Eq. 2, default) or
    ``G * (1 - delta)`` (Taylor form, Eq. 1), ``delta = ir_drop_fraction(G, ...)``.

    O(MN) (two cumulative sums per line family), differentiable in ``G`` and all
    resistances, batched over leading axes of ``G``. Exactly ``G`` without wire
    resistance. Relative (Frobenius) error against :func:`xbar.effective_matrix`, measured
    for sizes 32-256 and ``eps = max(delta) <= 1``: at most ``0.1 eps^2`` (resummed) /
    ``0.55 eps^2`` (Taylor); valid for ``eps <~ 1`` / ``eps <~ 0.3`` (module docstring).
    Arguments as in :func:`ir_drop_fraction`.
    """
    G = _check(G)
    delta = ir_drop_fraction(G, r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense)
    return G / (1.0 + delta) if resummed else G * (1.0 - delta)
