"""Neurosynaptic cores: synaptic layers on crossbar tiles, and a core = synapses + neurons.

Synaptic layers compute ``y = W x (+ b)`` for a signal ``x`` without batch axis
(``W`` of shape ``(n_out, n_in)``, the convention of NIR and PyTorch):

* :class:`IdealSynapses`: exact weights, a matrix product;
* :class:`CrossbarSynapses`: ``W`` programmed onto crossbar tiles
  (:class:`xbar.TiledCrossbar`, logical tile matrix ``W^T / s``), read with
  :meth:`xbar.TiledCrossbar.mvm`: the input becomes read pulses on the rows (DAC
  amplitude ``v_read`` for a spike of 1, width ``t_read``), the column currents through the
  device conductances (IR drop through the cached effective matrix, read noise, ADC) give
  the partial sums of each tile, and tiles that share columns are added digitally;
* :class:`ConvSynapses`: a PyTorch-style convolution (channels first, stride, padding,
  dilation, groups), ideal or on crossbars: the kernel of each group is one matrix
  ``(C_in/groups * prod(k), C_out/groups)`` read once per output position (im2col; the
  standard mapping of a convolution onto a crossbar, e.g. Shafiee et al., ISAAC, ISCA 2016).

Programming and scaling follow :class:`xbar.networks.CrossbarConfig`.

A :class:`Core` is a synaptic layer followed by a layer of neurons: one step is
``(core, state, spikes_in, key) -> (state, spikes_out)``. The current into neuron ``j``
is ``i_j = u (W x)_j`` with ``u = current_per_unit``. For a core in SI units the charge of
one read pulse, ``Q_j = (W x)_j i_unit t_read`` (``i_unit = v_read * mapping.scale``, the
column current of one weight unit at full input), is delivered to the membrane over the
step of ``dt``, i.e. ``u = i_unit t_read / dt`` [A per weight unit]; with forward Euler
this adds exactly ``Q_j / C`` to the membrane. For dimensionless networks (NIR graphs)
``u = 1``.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import xbar

from .config import CrossbarConfig, DeviceProgramming
from .neurons import AbstractNeuron, NeuronState


# ---- programming a matrix ------------------------------------------------------------
def weight_scale(w, w_max) -> float:
    """``s = max|w| / w_max`` (1 for an all-zero matrix): ``w / s`` fills the window."""
    m = float(np.max(np.abs(np.asarray(w)))) if np.size(w) else 0.0
    return m / float(w_max) if m > 0 else 1.0


def program_matrix(
    w_logical: Float[Array, "m n"], config: CrossbarConfig, key: PRNGKeyArray
) -> xbar.TiledCrossbar:
    """Tiles holding the logical matrix ``w_logical`` (rows = inputs, in mapping weight
    units, within ``[-w_max, w_max]``), programmed with ``config.programming`` and, with
    resistive wires, carrying their effective matrices (``config.ir_drop``). A matrix larger
    than ``config.tile_shape`` goes onto the fewest tiles of that size, split evenly
    (``ceil(M / R)`` rows on each of the ``R = ceil(M / tm)`` tile rows, likewise for the
    columns), so that no tile carries padding rows: a 784-row layer on 256-row tiles uses
    196 rows of each of four tiles."""
    w_logical = jnp.asarray(w_logical)
    m, n = w_logical.shape
    tm, tn = config.tile_shape
    tile = (-(-m // -(-m // tm)), -(-n // -(-n // tn)))
    k_make, k_prog = jax.random.split(key)
    kw: dict[str, Any] = dict(
        mapping=config.mapping,
        wiring=config.wiring,
        dac=config.dac,
        adc=config.adc,
        sense=config.sense,
    )
    if config.variability:
        kw["variability"] = config.variability
    if config.state_values:
        kw.update(config.state_values)
    tc = xbar.TiledCrossbar.create(config.device, (m, n), tile, key=k_make, **kw)
    blocks = tc.split(w_logical)
    r, c = tc.grid
    keys = jax.random.split(k_prog, r * c).reshape((r, c) + k_prog.shape)
    scheme = config.programming
    if isinstance(scheme, DeviceProgramming):

        def prog(t, wb, k):
            g = t.mapping.to_conductance(wb)
            # a cell cannot be programmed beyond its own (varied) bounds: it saturates there
            lo, hi = getattr(t.device, "g_min", None), getattr(t.device, "g_max", None)
            if hi is not None:
                g = jnp.minimum(g, hi)
            if lo is not None:
                g = jnp.maximum(g, lo)
            return t.with_state(t.device.program(k if scheme.noise else None, g))

    else:

        def prog(t, wb, k):
            return xbar.program(t, wb, scheme, k)[0]

    tc = tc.map_tiles(prog, blocks, keys)
    if config.has_wires:
        ir = config.ir_drop
        tc = tc.map_tiles(lambda t: t.with_cached_matrix(ir(t.conductances(), t.wiring)))
    return tc


# ---- synaptic layers ----------------------------------------------------------------
class AbstractSynapses(eqx.Module):
    """A synaptic layer: ``__call__(x, key) -> y`` on one sample (no batch axis).

    ``in_shape`` / ``out_shape`` are static; ``weight`` (and ``bias`` or None) are the
    intended parameters in NIR's layout (for a crossbar layer: the programming targets,
    not the read-back conductances); ``on_crossbar`` says whether reads are analog."""

    in_shape: eqx.AbstractVar[tuple[int, ...]]
    out_shape: eqx.AbstractVar[tuple[int, ...]]
    weight: eqx.AbstractVar[Array]
    bias: eqx.AbstractVar[Array | None]

    @property
    @abc.abstractmethod
    def on_crossbar(self) -> bool:
        """Whether reads are analog crossbar reads."""

    @abc.abstractmethod
    def __call__(self, x, key: PRNGKeyArray | None = None):
        raise NotImplementedError

    def init_state(self, dtype=None):
        """Synapses have no state (graph-node interface)."""
        return None

    def realise(self, key: PRNGKeyArray | None) -> AbstractSynapses:
        """The layer as it is for one run of many reads (a per-call read-noise draw taken
        with ``key``); the default has nothing to draw and returns ``self``."""
        return self

    def step(self, state, x, key: PRNGKeyArray | None = None):
        """Graph-node interface: ``(None, self(x, key))``."""
        return None, self(x, key)

    def _check_input(self, x):
        x = jnp.asarray(x)
        if x.shape != self.in_shape:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {self.in_shape}, got {x.shape}"
            )
        return x

    def _add_bias(self, y):
        return y if self.bias is None else y + self.bias


class IdealSynapses(AbstractSynapses):
    """Exact synapses ``y = W x + b`` (``W`` (n_out, n_in), ``b`` (n_out,) or None)."""

    weight: Float[Array, "n_out n_in"]
    bias: Float[Array, " n_out"] | None
    in_shape: tuple[int, ...] = eqx.field(static=True)
    out_shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, weight, bias=None):
        w = jnp.asarray(weight)
        if w.ndim != 2:
            raise ValueError(f"weight must have shape (n_out, n_in), got {w.shape}")
        if bias is not None:
            bias = jnp.asarray(bias)
            if bias.shape != (w.shape[0],):
                raise ValueError(f"bias must have shape ({w.shape[0]},), got {bias.shape}")
        self.weight, self.bias = w, bias
        self.in_shape, self.out_shape = (w.shape[1],), (w.shape[0],)

    @property
    def on_crossbar(self) -> bool:
        return False

    def __call__(self, x, key=None):
        return self._add_bias(self.weight @ self._check_input(x))


class CrossbarSynapses(AbstractSynapses):
    """``y ~ s * input_scale * mvm(x / input_scale) + b`` on programmed crossbar tiles
    (module docstring). Build with :meth:`create`.

    Fields: ``tiles`` (:class:`xbar.TiledCrossbar` of the logical matrix ``W^T / s``),
    ``scale`` ``s``, ``input_scale``, ``read_noise`` (how reads given a key draw device
    read noise: ``xbar.PerRead()``, ``xbar.PerCall()``, or None for none; with
    ``xbar.PerCall()``, :meth:`realise` freezes one draw for many calls), ``weight`` /
    ``bias`` (the targets)."""

    tiles: xbar.TiledCrossbar
    weight: Float[Array, "n_out n_in"]
    bias: Float[Array, " n_out"] | None
    scale: float | Array
    input_scale: float | Array
    read_noise: xbar.AbstractNoiseDraw | None = eqx.field(static=True)
    in_shape: tuple[int, ...] = eqx.field(static=True)
    out_shape: tuple[int, ...] = eqx.field(static=True)

    @classmethod
    def create(
        cls,
        weight,
        config: CrossbarConfig,
        key: PRNGKeyArray,
        bias=None,
        *,
        scale: float | None = None,
    ) -> CrossbarSynapses:
        """Program ``weight`` (n_out, n_in) onto tiles of ``config``. ``scale`` fixes ``s``
        (default ``max|W| / w_max``); weights beyond ``s * w_max`` raise."""
        w = jnp.asarray(weight)
        if w.ndim != 2:
            raise ValueError(f"weight must have shape (n_out, n_in), got {w.shape}")
        if bias is not None:
            bias = jnp.asarray(bias)
            if bias.shape != (w.shape[0],):
                raise ValueError(f"bias must have shape ({w.shape[0]},), got {bias.shape}")
        w_max = config.mapping.w_max
        s = weight_scale(w, w_max) if scale is None else float(scale)
        if s <= 0 or float(np.max(np.abs(np.asarray(w)), initial=0.0)) > s * w_max * (1 + 1e-12):
            raise ValueError(
                f"weights must lie in [-scale * w_max, scale * w_max] = [-{s * w_max}, "
                f"{s * w_max}], got max |w| = {float(np.max(np.abs(np.asarray(w))))}"
            )
        # clip only the rounding of w / s at the window edge
        tiles = program_matrix(jnp.clip(w.T / s, -w_max, w_max), config, key)
        return cls(
            tiles=tiles,
            weight=w,
            bias=bias,
            scale=s,
            input_scale=config.input_scale,
            read_noise=config.noise_draw,
            in_shape=(w.shape[1],),
            out_shape=(w.shape[0],),
        )

    @property
    def on_crossbar(self) -> bool:
        return True

    def read(self, x, key=None):
        """The crossbar read of inputs ``x`` (..., n_in) -> (..., n_out), bias excluded."""
        if self.read_noise is None:
            key = None
        u = self.input_scale
        kw = {} if self.read_noise is None else {"read_noise": self.read_noise}
        return (self.scale * u) * self.tiles.mvm(x / u, key, **kw)

    def realise(self, key: PRNGKeyArray | None) -> CrossbarSynapses:
        """With ``xbar.PerCall()`` read noise and a key: a copy whose tiles carry one
        read-noise draw (``xbar.Crossbar.with_read_noise_frozen``), for every read until
        the next call of ``realise``; else ``self``."""
        if key is None or not isinstance(self.read_noise, xbar.PerCall):
            return self
        return eqx.tree_at(lambda s: s.tiles, self, _frozen_tiles(self.tiles, key))

    def __call__(self, x, key=None):
        return self._add_bias(self.read(self._check_input(x), key))


def _frozen_tiles(tc: xbar.TiledCrossbar, key) -> xbar.TiledCrossbar:
    r, c = tc.grid
    keys = jax.random.split(key, r * c).reshape((r, c) + key.shape)
    return tc.map_tiles(lambda t, k: t.with_read_noise_frozen(k), keys)


def _pairs(v, nd: int, name: str) -> tuple[int, ...]:
    t = (int(v),) * nd if np.ndim(v) == 0 else tuple(int(a) for a in np.asarray(v).ravel())
    if len(t) != nd:
        raise ValueError(f"{name} must have {nd} entries, got {v!r}")
    return t


def conv_padding(padding, kernel, dilation) -> tuple[tuple[int, int], ...]:
    """PyTorch padding (int, tuple, 'valid', 'same') as ``((lo, hi), ...)`` per spatial
    axis; 'same' puts the odd extra element at the end, as PyTorch does."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            tot = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in tot)
        raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    p = _pairs(padding, nd, "padding")
    return tuple((a, a) for a in p)


class ConvSynapses(AbstractSynapses):
    """Convolution with PyTorch semantics (channels first, no batch axis): input
    ``(C_in, *spatial)``, weight ``(C_out, C_in / groups, *kernel)``, output
    ``(C_out, *spatial_out)`` with ``spatial_out = floor((n + lo + hi - d (k - 1) - 1) / s) + 1``.

    Ideal (``groups`` grouped ``lax`` convolution) or on crossbars (``tiles``: one
    :class:`xbar.TiledCrossbar` per group holding the flattened kernel, read once per
    output position). Build with :meth:`create`."""

    weight: Array
    bias: Array | None
    tiles: tuple | None
    scale: float | Array
    input_scale: float | Array
    stride: tuple[int, ...] = eqx.field(static=True)
    padding: tuple[tuple[int, int], ...] = eqx.field(static=True)
    dilation: tuple[int, ...] = eqx.field(static=True)
    groups: int = eqx.field(static=True)
    read_noise: xbar.AbstractNoiseDraw | None = eqx.field(static=True)
    padding_spec: Any = eqx.field(static=True)
    in_shape: tuple[int, ...] = eqx.field(static=True)
    out_shape: tuple[int, ...] = eqx.field(static=True)

    @classmethod
    def create(
        cls,
        weight,
        input_shape,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias=None,
        crossbar: CrossbarConfig | None = None,
        key: PRNGKeyArray | None = None,
    ) -> ConvSynapses:
        """A convolution of ``weight`` on inputs of spatial shape ``input_shape``; with a
        ``crossbar`` configuration (and a ``key``) the kernel is programmed onto tiles."""
        w = jnp.asarray(weight)
        nd = w.ndim - 2
        if nd not in (1, 2):
            raise ValueError(f"weight must have 3 or 4 dimensions, got shape {w.shape}")
        spatial = _pairs(input_shape, nd, "input_shape")
        stride_t = _pairs(stride, nd, "stride")
        dil_t = _pairs(dilation, nd, "dilation")
        groups = int(groups)
        c_out, c_in_g = w.shape[:2]
        if groups < 1 or c_out % groups:
            raise ValueError(f"groups ({groups}) must divide the {c_out} output channels")
        pad = conv_padding(padding, w.shape[2:], dil_t)
        out_sp = []
        for n, (lo, hi), d, k, s in zip(spatial, pad, dil_t, w.shape[2:], stride_t, strict=True):
            o = (n + lo + hi - d * (k - 1) - 1) // s + 1
            if o < 1:
                raise ValueError(
                    f"the kernel {tuple(w.shape[2:])} does not fit the input {spatial}"
                )
            out_sp.append(o)
        if bias is not None:
            bias = jnp.asarray(bias)
            if bias.shape != (c_out,):
                raise ValueError(f"bias must have shape ({c_out},), got {bias.shape}")
        tiles, s = None, 1.0
        if crossbar is not None:
            if key is None:
                raise ValueError("ConvSynapses.create needs a key with a crossbar configuration")
            s = weight_scale(w, crossbar.mapping.w_max)
            wg = w.reshape((groups, c_out // groups, c_in_g * math.prod(w.shape[2:])))
            keys = jax.random.split(key, groups)
            w_max = crossbar.mapping.w_max
            tiles = tuple(
                program_matrix(jnp.clip(wg[g].T / s, -w_max, w_max), crossbar, keys[g])
                for g in range(groups)
            )
        return cls(
            weight=w,
            bias=bias,
            tiles=tiles,
            scale=s,
            input_scale=1.0 if crossbar is None else crossbar.input_scale,
            stride=stride_t,
            padding=pad,
            dilation=dil_t,
            groups=groups,
            read_noise=None if crossbar is None else crossbar.noise_draw,
            padding_spec=padding if isinstance(padding, str) else _pairs(padding, nd, "padding"),
            in_shape=(c_in_g * groups, *spatial),
            out_shape=(c_out, *out_sp),
        )

    @property
    def on_crossbar(self) -> bool:
        return self.tiles is not None

    def realise(self, key: PRNGKeyArray | None) -> ConvSynapses:
        """With ``xbar.PerCall()`` read noise and a key: every group's tiles carry one
        read-noise draw (as :meth:`CrossbarSynapses.realise`); else ``self``."""
        if key is None or self.tiles is None or not isinstance(self.read_noise, xbar.PerCall):
            return self
        keys = jax.random.split(key, len(self.tiles))
        tiles = tuple(_frozen_tiles(tc, k) for tc, k in zip(self.tiles, keys, strict=True))
        return eqx.tree_at(lambda s: s.tiles, self, tiles)

    def _dn(self):
        nd = len(self.stride)
        sp = "HW"[:nd] if nd == 2 else "H"
        return ("NC" + sp, "OI" + sp, "NC" + sp)

    def __call__(self, x, key=None):
        x = self._check_input(x)
        if self.tiles is None:
            y = jax.lax.conv_general_dilated(
                x[None],
                self.weight.astype(x.dtype),
                self.stride,
                self.padding,
                rhs_dilation=self.dilation,
                dimension_numbers=self._dn(),
                feature_group_count=self.groups,
                precision=jax.lax.Precision.HIGHEST,
            )[0]
            if self.bias is not None:
                y = y + self.bias.reshape((-1,) + (1,) * (y.ndim - 1))
            return y
        # im2col: features ordered (channel, kernel position), as the flattened kernel.
        patches = jax.lax.conv_general_dilated_patches(
            x[None],
            self.weight.shape[2:],
            self.stride,
            self.padding,
            rhs_dilation=self.dilation,
            dimension_numbers=self._dn(),
            precision=jax.lax.Precision.HIGHEST,
        )[0]  # (C_in * prod(k), *out)
        c_in = self.in_shape[0]
        feat = patches.shape[0] // c_in
        out_sp = patches.shape[1:]
        cols = patches.reshape((self.groups, c_in // self.groups * feat, -1))
        keys = [None] * self.groups
        if key is not None and self.read_noise is not None:
            keys = list(jax.random.split(key, self.groups))
        u = self.input_scale
        kw = {} if self.read_noise is None else {"read_noise": self.read_noise}
        ys = [
            (self.scale * u) * tc.mvm(cols[g].T / u, keys[g], **kw).T
            for g, tc in enumerate(self.tiles)
        ]
        y = jnp.concatenate(ys, axis=0).reshape((-1, *out_sp))
        if self.bias is not None:
            y = y + self.bias.reshape((-1,) + (1,) * (y.ndim - 1))
        return y


# ---- the core ---------------------------------------------------------------------
class Core(eqx.Module):
    """Crossbar tile(s) + a row of neurons (module docstring).

    Fields: ``synapses`` (an :class:`AbstractSynapses`), ``neuron`` (an
    :class:`xbar.networks.AbstractNeuron`, parameters broadcastable to the output shape),
    ``dt`` time step [s], ``current_per_unit`` ``u`` [A per weight unit].

    ``step(state, spikes_in, key) -> (state, spikes_out)`` on one sample; batch with
    ``jax.vmap``."""

    synapses: AbstractSynapses
    neuron: AbstractNeuron
    dt: float
    current_per_unit: float | Array = 1.0

    @classmethod
    def create(
        cls,
        weight,
        neuron: AbstractNeuron,
        *,
        dt: float,
        crossbar: CrossbarConfig | None = None,
        key: PRNGKeyArray | None = None,
        bias=None,
        current_per_unit: float | None = None,
    ) -> Core:
        """A core for ``weight`` (n_out, n_in).

        Without ``crossbar``: ideal synapses, ``current_per_unit = 1`` unless given. With a
        ``crossbar`` configuration (and a ``key``): the weights are programmed in mapping
        units (``s = 1``; weights beyond ``w_max`` raise) and the default
        ``current_per_unit`` is the physical ``i_unit t_read / dt`` (module docstring),
        so that neurons in SI units see the column charge of each read pulse."""
        if crossbar is None:
            syn = IdealSynapses(weight, bias)
            u = 1.0 if current_per_unit is None else current_per_unit
        else:
            if key is None:
                raise ValueError("Core.create needs a key with a crossbar configuration")
            syn = CrossbarSynapses.create(weight, crossbar, key, bias, scale=1.0)
            i_unit = crossbar.dac.v_read * crossbar.mapping.scale
            u = (
                i_unit * crossbar.dac.t_read_s / dt
                if current_per_unit is None
                else current_per_unit
            )
        return cls(synapses=syn, neuron=neuron, dt=dt, current_per_unit=u)

    @property
    def in_shape(self):
        return self.synapses.in_shape

    @property
    def out_shape(self):
        return self.synapses.out_shape

    def init_state(self, dtype=None) -> NeuronState:
        return self.neuron.init_state(self.out_shape, dtype)

    def realise(self, key: PRNGKeyArray | None) -> Core:
        """The core with its synapses realised for a run (:meth:`AbstractSynapses.realise`)."""
        return eqx.tree_at(lambda c: c.synapses, self, self.synapses.realise(key))

    def step(self, state: NeuronState, spikes_in, key: PRNGKeyArray | None = None):
        i_in = self.current_per_unit * self.synapses(spikes_in, key)
        return self.neuron.step(state, i_in.astype(state.v.dtype), self.dt)


__all__ = [
    "AbstractSynapses",
    "ConvSynapses",
    "Core",
    "CrossbarSynapses",
    "IdealSynapses",
    "conv_padding",
    "program_matrix",
    "weight_scale",
]
