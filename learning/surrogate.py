"""Surrogate spike functions: an exact Heaviside step forward, a smooth derivative backward.

A spiking neuron emits ``z = H(x)`` with ``H(x) = 1`` for ``x > 0`` (strictly) and 0
otherwise, where ``x = (v - v_th) / v_scale`` is the membrane potential relative to the
threshold in units of the neuron's voltage scale (dimensionless). ``H`` has zero derivative
almost everywhere, so gradient descent through a spiking network stalls. Surrogate-gradient
learning keeps the exact step in the forward pass and replaces ``H'(x)`` by a smooth
pseudo-derivative ``g(x)`` in the backward pass (Neftci, Mostafa & Zenke, "Surrogate gradient
learning in spiking neural networks", IEEE Signal Process. Mag. 36(6):51-63, 2019, Sec. "Smoothed
and surrogate gradients"). Learning is robust to the shape of ``g`` but sensitive to its scale
(Zenke & Vogels, Neural Comput. 33(4):899-925, 2021), hence the slope parameter of every member.

Each class below is a :class:`xbar.networks.AbstractSpikeFunction` built on ``jax.custom_jvp``:
``f(x)`` is the step, ``jvp(f)(x; dx) = g(x) dx``. With ``k`` the ``slope`` field:

| class | ``g(x)`` | peak | integral | default ``k`` |
| --- | --- | --- | --- | --- |
| :class:`FastSigmoid` (SuperSpike) | ``1 / (k |x| + 1)^2`` | 1 | ``2 / k`` | 25 |
| :class:`ATan` | ``(k / 2) / (1 + (pi k x / 2)^2)`` | ``k / 2`` | 1 | 2 |
| :class:`Triangular` | ``max(0, 1 - k |x|)`` | 1 | ``1 / k`` | 1 |
| :class:`Boxcar` | ``k`` for ``|x| < 1 / (2 k)``, else 0 | ``k`` | 1 | 1 |
| :class:`StraightThrough` | ``k`` | ``k`` | (unbounded) | 1 |

Sources: fast sigmoid, the SuperSpike pseudo-derivative (Zenke & Ganguli, Neural Comput.
30(6):1514-1541, 2018, Eq. 5; slope 25 is the default of snnTorch and Spyx); arctan (Fang et
al., ICCV 2021, Eq. 8, the convention of snnTorch, alpha 2); triangular (Esser et al., PNAS
113(41):11441, 2016; Bellec et al., NeurIPS 2018, without their damping factor 0.3); boxcar
(rectangular pseudo-derivative of Wu et al., Front. Neurosci. 12:331, 2018, Eq. 7, width
``a = 1 / k``); straight-through (Bengio, Léonard & Courville, arXiv:1308.3432, 2013).

The derivative with respect to ``slope`` is zero (the step does not depend on it).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from xbar.networks import AbstractSpikeFunction

__all__ = ["FastSigmoid", "SuperSpike", "ATan", "Triangular", "Boxcar", "StraightThrough"]


def _step(x):
    return jnp.where(x > 0, 1.0, 0.0).astype(x.dtype)


def _surrogate_step(derivative):
    """``H(x)`` with ``derivative(x, k)`` as its JVP coefficient."""

    @jax.custom_jvp
    def spike(x, k):
        return _step(x)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        x, k = primals
        dx, _ = tangents
        return _step(x), (derivative(x, k) * dx).astype(x.dtype)

    return spike


def _fast_sigmoid_g(x, k):
    return 1.0 / (k * jnp.abs(x) + 1.0) ** 2


def _atan_g(x, k):
    return (0.5 * k) / (1.0 + (0.5 * math.pi * k * x) ** 2)


def _triangular_g(x, k):
    return jnp.maximum(0.0, 1.0 - k * jnp.abs(x))


def _boxcar_g(x, k):
    return jnp.where(jnp.abs(x) < 0.5 / k, k, 0.0)


def _straight_through_g(x, k):
    return jnp.broadcast_to(k, jnp.shape(x))


_fast_sigmoid = _surrogate_step(_fast_sigmoid_g)
_atan = _surrogate_step(_atan_g)
_triangular = _surrogate_step(_triangular_g)
_boxcar = _surrogate_step(_boxcar_g)
_straight_through = _surrogate_step(_straight_through_g)


def _check_slope(cls_name: str, slope) -> None:
    try:
        values = np.asarray(slope, dtype=float)
    except (TypeError, jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return  # traced slope (e.g. built inside jit): nothing to check at construction
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError(f"{cls_name}.slope must be finite and > 0, got {slope!r}")


def _as_float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.zeros(()).dtype)


class FastSigmoid(AbstractSpikeFunction):
    """Heaviside step with the fast-sigmoid (SuperSpike) pseudo-derivative
    ``g(x) = 1 / (slope |x| + 1)^2`` (Zenke & Ganguli 2018, Eq. 5). ``slope`` > 0, dimensionless
    (per unit of the normalised membrane potential), default 25."""

    slope: float | Float[Array, ""] = 25.0

    def __check_init__(self):
        _check_slope(type(self).__name__, self.slope)

    def __call__(self, x):
        x = _as_float(x)
        return _fast_sigmoid(x, jnp.asarray(self.slope, x.dtype))


SuperSpike = FastSigmoid
"""The SuperSpike surrogate of Zenke & Ganguli (2018) is the fast sigmoid; same class."""


class ATan(AbstractSpikeFunction):
    """Heaviside step with the arctan pseudo-derivative
    ``g(x) = (slope / 2) / (1 + (pi slope x / 2)^2)``, the derivative of
    ``arctan(pi slope x / 2) / pi + 1/2`` (Fang et al., ICCV 2021, Eq. 8; snnTorch's ``alpha``).
    ``slope`` > 0, default 2 (peak 1)."""

    slope: float | Float[Array, ""] = 2.0

    def __check_init__(self):
        _check_slope(type(self).__name__, self.slope)

    def __call__(self, x):
        x = _as_float(x)
        return _atan(x, jnp.asarray(self.slope, x.dtype))


class Triangular(AbstractSpikeFunction):
    """Heaviside step with the triangular pseudo-derivative ``g(x) = max(0, 1 - slope |x|)``
    (Esser et al. 2016; Bellec et al. 2018): peak 1, support ``|x| < 1 / slope``.
    ``slope`` > 0, default 1."""

    slope: float | Float[Array, ""] = 1.0

    def __check_init__(self):
        _check_slope(type(self).__name__, self.slope)

    def __call__(self, x):
        x = _as_float(x)
        return _triangular(x, jnp.asarray(self.slope, x.dtype))


class Boxcar(AbstractSpikeFunction):
    """Heaviside step with the rectangular pseudo-derivative ``g(x) = slope`` for
    ``|x| < 1 / (2 slope)`` and 0 elsewhere (Wu et al. 2018, Eq. 7, with width
    ``a = 1 / slope``; unit integral). ``slope`` > 0, default 1."""

    slope: float | Float[Array, ""] = 1.0

    def __check_init__(self):
        _check_slope(type(self).__name__, self.slope)

    def __call__(self, x):
        x = _as_float(x)
        return _boxcar(x, jnp.asarray(self.slope, x.dtype))


class StraightThrough(AbstractSpikeFunction):
    """Heaviside step whose backward pass passes the gradient straight through, scaled by
    ``slope`` (``g(x) = slope``; Bengio, Léonard & Courville 2013). ``slope`` > 0, default 1."""

    slope: float | Float[Array, ""] = 1.0

    def __check_init__(self):
        _check_slope(type(self).__name__, self.slope)

    def __call__(self, x):
        x = _as_float(x)
        return _straight_through(x, jnp.asarray(self.slope, x.dtype))
