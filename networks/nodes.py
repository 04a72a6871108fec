"""Graph nodes of a network besides synapses and cores: neuron layers, identity, scale,
threshold, flatten, pooling and delay.

Every node meets one interface (duck-typed, shared with :class:`.core.AbstractSynapses`
and :class:`.core.Core`): static ``in_shape`` / ``out_shape`` (no batch axis),
``init_state(dtype) -> state`` (None when stateless) and ``step(state, x, key) -> (state,
y)`` for one time step of one sample. Definitions follow NIR's node types (Pedersen et
al., Nat. Commun. 15:8122, 2024):

* :class:`Identity`: ``y = x`` (NIR ``Input`` / ``Output``);
* :class:`NeuronLayer`: a layer of neurons of ``shape`` stepped with ``dt``;
* :class:`Scale`: ``y = s x``; :class:`Threshold`: ``y = 1`` where ``x > threshold``;
* :class:`Flatten`: merges the axes ``start_dim .. end_dim`` of the batch-less shape;
* :class:`Pool2d`: window sum (``SumPool2d``) or window mean over the full kernel area,
  padding included (``AvgPool2d``, PyTorch's default ``count_include_pad=True``);
* :class:`Delay`: ``y(t) = x(t - d)`` with ``d`` an integer number of steps per element
  (zeros before the first input arrives).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._checks import check_dt
from .neurons import AbstractNeuron
from .spikes import AbstractSpikeFunction, Heaviside


def _shape(s) -> tuple[int, ...]:
    return tuple(int(a) for a in np.asarray(s).ravel())


class Identity(eqx.Module):
    """``y = x`` on signals of ``shape`` (graph input and output)."""

    shape: tuple[int, ...] = eqx.field(static=True)

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    def init_state(self, dtype=None):
        return None

    def step(self, state, x, key=None):
        return None, x


class NeuronLayer(eqx.Module):
    """A layer of ``shape`` neurons of one model, stepped with ``dt`` [s]."""

    neuron: AbstractNeuron
    dt: float
    shape: tuple[int, ...] = eqx.field(static=True)

    def __check_init__(self):
        check_dt(self.dt)

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    def init_state(self, dtype=None):
        return self.neuron.init_state(self.shape, dtype)

    def step(self, state, x, key=None):
        return self.neuron.step(state, x, self.dt)


class Scale(eqx.Module):
    """``y = scale * x`` elementwise (``scale`` of the signal shape)."""

    scale: Array
    shape: tuple[int, ...] = eqx.field(static=True)

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    def init_state(self, dtype=None):
        return None

    def step(self, state, x, key=None):
        return None, self.scale * x


class Threshold(eqx.Module):
    """``y = spike_fn(x - threshold)``: 1 where ``x > threshold`` (strict), else 0."""

    threshold: Array
    shape: tuple[int, ...] = eqx.field(static=True)
    spike_fn: AbstractSpikeFunction = Heaviside()

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    def init_state(self, dtype=None):
        return None

    def step(self, state, x, key=None):
        return None, self.spike_fn(x - self.threshold).astype(x.dtype)


class Flatten(eqx.Module):
    """Merge the axes ``start_dim .. end_dim`` (inclusive, negative from the end) of the
    batch-less input shape ``in_shape``."""

    in_shape: tuple[int, ...] = eqx.field(static=True)
    start_dim: int = eqx.field(static=True)
    end_dim: int = eqx.field(static=True)

    def __check_init__(self):
        nd = len(self.in_shape)
        s, e = self.start_dim % max(nd, 1), self.end_dim % max(nd, 1)
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd and s <= e):
            raise ValueError(
                f"start_dim ({self.start_dim}) and end_dim ({self.end_dim}) must index the "
                f"input shape {self.in_shape} with start_dim <= end_dim"
            )

    @property
    def out_shape(self):
        nd = len(self.in_shape)
        s, e = self.start_dim % nd, self.end_dim % nd
        sh = self.in_shape
        return sh[:s] + (math.prod(sh[s : e + 1]),) + sh[e + 1 :]

    def init_state(self, dtype=None):
        return None

    def step(self, state, x, key=None):
        return None, jnp.reshape(x, self.out_shape)


class Pool2d(eqx.Module):
    """2-D sum or average pooling over ``(C, H, W)`` inputs (module docstring).

    Fields: ``kernel_size``, ``stride``, ``padding`` (pairs of ints, symmetric zero
    padding), ``average`` (divide by the kernel area), ``in_shape``."""

    kernel_size: tuple[int, int] = eqx.field(static=True)
    stride: tuple[int, int] = eqx.field(static=True)
    padding: tuple[int, int] = eqx.field(static=True)
    average: bool = eqx.field(static=True)
    in_shape: tuple[int, ...] = eqx.field(static=True)

    def __check_init__(self):
        if len(self.in_shape) != 3:
            raise ValueError(f"Pool2d needs a (C, H, W) input shape, got {self.in_shape}")
        for name in ("kernel_size", "stride"):
            v = getattr(self, name)
            if len(v) != 2 or min(v) < 1:
                raise ValueError(f"{name} must be two positive integers, got {v}")
        if len(self.padding) != 2 or min(self.padding) < 0:
            raise ValueError(f"padding must be two non-negative integers, got {self.padding}")
        if min(self.out_shape[1:]) < 1:
            raise ValueError(f"the pooling window does not fit the input {self.in_shape}")

    @property
    def out_shape(self):
        c, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    def init_state(self, dtype=None):
        return None

    def step(self, state, x, key=None):
        (ph, pw) = self.padding
        y = jax.lax.reduce_window(
            x,
            jnp.zeros((), x.dtype),
            jax.lax.add,
            (1,) + self.kernel_size,
            (1,) + self.stride,
            ((0, 0), (ph, ph), (pw, pw)),
        )
        if self.average:
            y = y / (self.kernel_size[0] * self.kernel_size[1])
        return None, y


class Delay(eqx.Module):
    """``y(t) = x(t - d)`` with ``d = steps`` (non-negative integers per element; the NIR
    delay in seconds is kept in ``delay`` for export). Zeros before ``t = d``."""

    steps: Array
    delay: Array
    depth: int = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)

    @classmethod
    def create(cls, delay, dt: float, shape=None, *, name: str = "delay") -> Delay:
        """From delays [s] (array of the signal shape): each must be an integer multiple
        of ``dt`` (relative tolerance 1e-9), else ``ValueError`` naming ``name``."""
        d = np.asarray(delay, dtype=float)
        shape = d.shape if shape is None else _shape(shape)
        d = np.broadcast_to(d, shape)
        n = d / float(dt)
        k = np.round(n)
        if np.any(k < 0) or np.any(np.abs(n - k) > 1e-9 * np.maximum(1.0, np.abs(n))):
            bad = float(d.ravel()[np.argmax(np.abs(n - k).ravel())])
            raise ValueError(
                f"node {name!r}: field 'delay' must hold non-negative integer multiples of "
                f"dt = {dt} s, got {bad} s ({bad / float(dt)} steps)"
            )
        return cls(
            steps=jnp.asarray(k.astype(np.int32)),
            delay=jnp.asarray(np.asarray(delay)),
            depth=int(k.max()) if k.size else 0,
            shape=tuple(shape),
        )

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    def init_state(self, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        return jnp.zeros((max(self.depth, 1),) + self.shape, dtype)

    def step(self, state, x, key=None):
        # state[j] holds the input of j + 1 steps ago.
        if self.depth == 0:
            return state, x
        past = jnp.take_along_axis(state, jnp.clip(self.steps - 1, 0)[None], axis=0)[0]
        y = jnp.where(self.steps == 0, x, past)
        new = jnp.concatenate([x[None].astype(state.dtype), state[:-1]], axis=0)
        return new, y


__all__ = ["Delay", "Flatten", "Identity", "NeuronLayer", "Pool2d", "Scale", "Threshold"]
