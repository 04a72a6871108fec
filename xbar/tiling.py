"""Tiling: a large weight matrix split over several crossbar tiles, partial sums added digitally.

``TiledCrossbar`` holds a stack of identical-shape :class:`xbar.Crossbar` tiles (a
pytree whose array leaves carry two leading axes ``(R, C)``: tile row, tile column).
The logical matrix ``(M, N)`` is zero-padded to ``(R tm, C tn)``; input slice ``r`` drives
tile row ``r``; each tile's ADC output is a partial sum, and the partial sums of a tile
column are added in the digital domain (as aihwkit splits layers larger than its
``max_input_size``, and as multi-core chips map large layers, e.g. NeuRRAM, Wan et al.,
Nature 608, 504 (2022), with 256x256 cores).
"""

from __future__ import annotations

import functools
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from . import read as _read
from ._inputs import as_float, check_key, check_last_axis
from .crossbar import Crossbar

# the keyword arguments of Crossbar.mvm and their defaults (``weights`` is split per tile)
_MVM_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(Crossbar.mvm).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name != "weights"
}


class TiledCrossbar(eqx.Module):
    """A logical ``(M, N)`` matrix on ``R x C`` tiles of ``tile_shape`` (see module doc)."""

    tiles: Crossbar
    shape: tuple[int, int] = eqx.field(static=True)
    tile_shape: tuple[int, int] = eqx.field(static=True)

    @classmethod
    def create(
        cls,
        device,
        shape: tuple[int, int],
        tile_shape: tuple[int, int] = (256, 256),
        *,
        key: PRNGKeyArray,
        **crossbar_kwargs,
    ) -> TiledCrossbar:
        """Tiles for a logical ``shape`` (each tile ``Crossbar.create(device, tile_shape,
        key=k, **crossbar_kwargs)`` with its own key: independent variability/faults)."""
        for name, val in (("shape", shape), ("tile_shape", tile_shape)):
            if not (
                isinstance(val, (tuple, list))
                and len(val) == 2
                and all(isinstance(s, (int, np.integer)) and s >= 1 for s in val)
            ):
                raise ValueError(f"{name} must be two positive integers, got {val!r}")
        key = check_key("key", key)
        if key is None:
            raise ValueError("key must be a PRNG key (one per tile is split from it), got None")
        m, n = (int(s) for s in shape)
        tm, tn = (int(s) for s in tile_shape)
        r, c = -(-m // tm), -(-n // tn)
        keys = jax.random.split(key, r * c).reshape((r, c) + key.shape)

        def make(k):
            return Crossbar.create(device, (tm, tn), key=k, **crossbar_kwargs)

        tiles = eqx.filter_vmap(eqx.filter_vmap(make))(keys)
        return cls(tiles=tiles, shape=(m, n), tile_shape=(tm, tn))

    @property
    def grid(self) -> tuple[int, int]:
        tm, tn = self.tile_shape
        return -(-self.shape[0] // tm), -(-self.shape[1] // tn)

    def split(self, w: Float[Array, "m n"]) -> Float[Array, "r c tm tn"]:
        """The zero-padded weight blocks of ``w`` per tile."""
        (r, c), (tm, tn) = self.grid, self.tile_shape
        m, n = self.shape
        wp = jnp.zeros((r * tm, c * tn), w.dtype).at[:m, :n].set(w)
        return wp.reshape(r, tm, c, tn).transpose(0, 2, 1, 3)

    def map_tiles(self, fn, *args) -> TiledCrossbar:
        """Apply ``fn(tile, *tile_args) -> Crossbar`` to every tile (args with leading
        ``(R, C)`` axes), e.g. programming: ``tc.map_tiles(lambda t, w, k: program(t, w,
        scheme, k)[0], tc.split(W), keys)``."""
        new = eqx.filter_vmap(eqx.filter_vmap(fn))(self.tiles, *args)
        return eqx.tree_at(lambda t: t.tiles, self, new)

    def mvm(
        self, x: Float[Array, "*b m"], key: PRNGKeyArray | None = None, **mvm_kwargs
    ) -> Float[Array, "*b n"]:
        """``y ~ x @ W``: per-tile reads (``Crossbar.mvm`` keyword arguments; a
        ``weights=`` argument is the full logical matrix), digital sum over tile rows."""
        (r, c), (tm, tn) = self.grid, self.tile_shape
        m, n = self.shape
        x = as_float("x", x)
        check_last_axis("x", x, m, "one input per logical row")
        key = check_key("key", key)
        xp = jnp.zeros(x.shape[:-1] + (r * tm,), x.dtype).at[..., :m].set(x)
        xs = jnp.moveaxis(xp.reshape(x.shape[:-1] + (r, tm)), -2, 0)  # (R, *b, tm)
        weights = mvm_kwargs.pop("weights", None)
        if weights is not None:
            weights = as_float("weights", weights)
            if weights.shape != (m, n):
                raise ValueError(f"weights must have shape {(m, n)}, got {weights.shape}")
        wb = None if weights is None else self.split(weights)
        keys = None if key is None else jax.random.split(key, r * c).reshape((r, c) + key.shape)
        kw = dict(_MVM_DEFAULTS)
        unknown = set(mvm_kwargs) - set(kw)
        if unknown:
            raise TypeError(f"TiledCrossbar.mvm got unexpected keyword arguments {sorted(unknown)}")
        kw.update(mvm_kwargs)

        def one(tile, xr, k, wt):  # x and weights checked above, once
            return _read.mvm(tile, xr, k, weights=wt, checked=True, **kw)

        def row(tiles_r, xr, keys_r, w_r):
            return eqx.filter_vmap(lambda t, k, wt: one(t, xr, k, wt))(tiles_r, keys_r, w_r)

        parts = eqx.filter_vmap(row)(self.tiles, xs, keys, wb)  # (R, C, *b, tn)
        # digital addition of the partial sums: written out, because XLA's CPU reduction
        # over a short leading axis is several times slower than the adds (0.37 vs 0.06
        # ms for four 128 x 256 parts)
        y = functools.reduce(jnp.add, [parts[i] for i in range(r)])
        y = jnp.moveaxis(y, 0, -2).reshape(x.shape[:-1] + (c * tn,))
        return y[..., :n]


__all__ = ["TiledCrossbar"]
