"""Losses, activity regularisers and metrics on the :class:`~xbar.learning.Trace` of a forward pass.

Every loss reads class scores (``logits``) off the network's output and applies the softmax
cross-entropy ``CE = -log softmax(logits)[y]``, averaged over the batch:

- :class:`SpikeCountCrossEntropy`: ``logits_k = scale * sum_t z_k[t]``, the spike counts of
  the output neurons (``scale = 1/T`` gives rates; the count decoding of snnTorch's
  ``ce_count_loss``; Eshraghian et al., Proc. IEEE 111(9):1016, 2023, Sec. IV).
- :class:`MembraneCrossEntropy`: ``logits_k = reduce_t v_k[t] / v_unit`` for a non-spiking
  readout (``LI``), with the maximum over time (:class:`MaxOverTime`; Cramer et al., IEEE
  TNNLS 33(7):2744, 2022, the "max-over-time" readout), the last step (:class:`LastStep`) or
  the mean (:class:`MeanOverTime`).
- :class:`FirstSpikeCrossEntropy`: ``logits_k = -t_k / tau`` with ``t_k`` the first spike
  time of output neuron ``k`` (``T dt`` if it never fires): the earliest neuron should be the
  right one (time-to-first-spike coding; Mostafa, IEEE TNNLS 29(7):3227, 2018; Göltz et al.,
  Nat. Mach. Intell. 3:823, 2021, Eq. 7). With ``z`` exact 0/1 spikes,
  ``t_k = dt sum_t t * z_k[t] prod_{u<t} (1 - z_k[u]) + T dt prod_t (1 - z_k[t])`` is the exact
  first spike time, and its surrogate gradient moves spikes earlier or later.

:class:`ActivityRegulariser` adds the penalties of Zenke & Vogels (Neural Comput. 33(4):899,
2021, Eqs. 9-10) on the spike counts ``c`` of the hidden layers: an upper bound on the
population mean, ``strength_upper * relu(mean_i c_i - upper)^2``, and a lower bound per neuron,
``strength_lower * mean_i relu(lower - c_i)^2`` (against silent neurons), averaged over the
batch. :class:`Regularised` adds regularisers to a loss.

Metrics (:class:`Accuracy`, :class:`SpikeRate`) are averaged over the samples of an epoch by
:func:`~xbar.learning.fit`; ``metric(trace, y, loss)`` returns the batch mean.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .model import Trace

__all__ = [
    "AbstractLoss",
    "AbstractMetric",
    "AbstractTimeReduction",
    "Accuracy",
    "ActivityRegulariser",
    "FirstSpikeCrossEntropy",
    "LastStep",
    "MaxOverTime",
    "MeanOverTime",
    "MembraneCrossEntropy",
    "Regularised",
    "SpikeCountCrossEntropy",
    "SpikeRate",
    "first_spike_times",
]


def _cross_entropy(logits, y):
    n = logits.shape[-1]
    y = eqx.error_if(y, (y < 0) | (y >= n), f"labels must lie in [0, {n})")
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[..., None].astype(jnp.int32), axis=-1))


def _positive(name: str, value) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite (0, inf), got {value}")


def first_spike_times(spikes: Float[Array, "T ..."], dt: float) -> Float[Array, ...]:
    """First spike time [s] along the leading (time) axis of ``spikes``, ``T dt`` where there
    is none: step ``t`` counts as time ``t dt`` (module docstring; differentiable through
    surrogate spikes)."""
    n = spikes.shape[0]
    not_yet = jnp.cumprod(1.0 - spikes, axis=0)
    before = jnp.concatenate([jnp.ones_like(spikes[:1]), not_yet[:-1]], axis=0)
    steps = jnp.arange(n, dtype=spikes.dtype).reshape((n,) + (1,) * (spikes.ndim - 1))
    return dt * (jnp.sum(steps * spikes * before, axis=0) + n * not_yet[-1])


class AbstractLoss(eqx.Module):
    """A loss: ``logits(trace) -> (*batch, n_out)`` class scores, ``loss(trace, y)`` the batch
    mean of the loss for integer labels ``y`` of shape ``batch``."""

    @abc.abstractmethod
    def logits(self, trace: Trace) -> Float[Array, "*batch n_out"]:
        raise NotImplementedError

    @abc.abstractmethod
    def __call__(self, trace: Trace, y: Int[Array, "*batch"]) -> Float[Array, ""]:
        raise NotImplementedError


class SpikeCountCrossEntropy(AbstractLoss):
    """Cross-entropy of ``scale * spike counts`` of a spiking output layer (module docstring).
    ``scale`` > 0 (default 1; ``1/T`` decodes rates per step)."""

    scale: float = 1.0

    def __check_init__(self):
        _positive("scale", self.scale)

    def logits(self, trace):
        if not trace.output_spiking:
            raise ValueError("SpikeCountCrossEntropy needs a spiking output layer")
        return self.scale * jnp.sum(trace.output, axis=0)

    def __call__(self, trace, y):
        return _cross_entropy(self.logits(trace), y)


class AbstractTimeReduction(eqx.Module):
    """How a membrane trace ``(T, ...)`` becomes one value per neuron."""

    @abc.abstractmethod
    def __call__(self, v: Float[Array, "T ..."]) -> Float[Array, ...]:
        raise NotImplementedError


class MaxOverTime(AbstractTimeReduction):
    """``max_t v[t]`` (gradient to the step of the maximum)."""

    def __call__(self, v):
        return jnp.max(v, axis=0)


class LastStep(AbstractTimeReduction):
    """``v[T - 1]``."""

    def __call__(self, v):
        return v[-1]


class MeanOverTime(AbstractTimeReduction):
    """``mean_t v[t]``."""

    def __call__(self, v):
        return jnp.mean(v, axis=0)


class MembraneCrossEntropy(AbstractLoss):
    """Cross-entropy of the readout membrane potentials, ``reduce_t v[t] / v_unit`` (module
    docstring). Fields: ``reduce`` (an :class:`AbstractTimeReduction`, default
    :class:`MaxOverTime`), ``v_unit`` [V] > 0 (default 1 V)."""

    reduce: AbstractTimeReduction = MaxOverTime()
    v_unit: float = 1.0

    def __check_init__(self):
        _positive("v_unit", self.v_unit)

    def logits(self, trace):
        if trace.output_spiking:
            raise ValueError(
                "MembraneCrossEntropy needs a non-spiking readout (e.g. readout=LI()), the "
                "output layer spikes"
            )
        return self.reduce(trace.output) / self.v_unit

    def __call__(self, trace, y):
        return _cross_entropy(self.logits(trace), y)


class FirstSpikeCrossEntropy(AbstractLoss):
    """Cross-entropy of ``-t_first / tau`` of a spiking output layer (module docstring).
    ``tau`` [s] > 0: the time scale over which an earlier spike wins."""

    tau: float

    def __check_init__(self):
        _positive("tau", self.tau)

    def logits(self, trace):
        if not trace.output_spiking:
            raise ValueError("FirstSpikeCrossEntropy needs a spiking output layer")
        return -first_spike_times(trace.output, trace.dt) / self.tau

    def __call__(self, trace, y):
        return _cross_entropy(self.logits(trace), y)


class ActivityRegulariser(eqx.Module):
    """Spike-count penalties on the hidden layers (Zenke & Vogels 2021; module docstring).

    Fields: ``upper`` (population mean count above which the upper penalty starts, spikes per
    neuron per sample), ``strength_upper``, ``lower`` (per-neuron count below which the lower
    penalty starts), ``strength_lower``; strengths >= 0 (0 switches a bound off).
    ``regulariser(trace)`` returns the penalty (batch mean)."""

    upper: float = 10.0
    strength_upper: float = 0.0
    lower: float = 1e-3
    strength_lower: float = 0.0

    def __check_init__(self):
        for name in ("upper", "strength_upper", "lower", "strength_lower"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be non-negative and finite [0, inf), got {value}")

    def __call__(self, trace: Trace) -> Float[Array, ""]:
        hidden = trace.spikes[:-1] if trace.output_spiking else trace.spikes
        total = jnp.zeros((), trace.output.dtype)
        for z in hidden:
            counts = jnp.sum(z, axis=0)  # (*batch, n)
            up = jax.nn.relu(jnp.mean(counts, axis=-1) - self.upper) ** 2
            low = jnp.mean(jax.nn.relu(self.lower - counts) ** 2, axis=-1)
            total = total + self.strength_upper * jnp.mean(up) + self.strength_lower * jnp.mean(low)
        return total


class Regularised(AbstractLoss):
    """``loss(trace, y) + sum_r r(trace)``; the logits are those of ``loss``."""

    loss: AbstractLoss
    regularisers: tuple[ActivityRegulariser, ...]

    def __init__(self, loss: AbstractLoss, *regularisers: ActivityRegulariser):
        self.loss = loss
        self.regularisers = tuple(regularisers)

    def logits(self, trace):
        return self.loss.logits(trace)

    def __call__(self, trace, y):
        total = self.loss(trace, y)
        for r in self.regularisers:
            total = total + r(trace)
        return total


class AbstractMetric(eqx.Module):
    """A metric: ``metric(trace, y, loss)`` the batch mean of a per-sample quantity; ``name``
    (a static string field) keys it in the training history."""

    name: eqx.AbstractVar[str]

    @abc.abstractmethod
    def __call__(self, trace: Trace, y: Int[Array, "*batch"], loss: AbstractLoss):
        raise NotImplementedError


class Accuracy(AbstractMetric):
    """Fraction of samples whose largest logit (of the loss) is the label; ties count for
    the lowest index, as ``argmax`` does."""

    name: str = eqx.field(static=True, default="accuracy")

    def __call__(self, trace, y, loss):
        hit = jnp.argmax(loss.logits(trace), axis=-1) == y
        return jnp.mean(hit.astype(trace.output.dtype))


class SpikeRate(AbstractMetric):
    """Mean spike count per neuron and sample of spiking layer ``layer`` (0 = first hidden)."""

    layer: int = eqx.field(static=True, default=0)
    name: str = eqx.field(static=True, default="spike_rate")

    def __call__(self, trace, y, loss):
        return jnp.mean(jnp.sum(trace.spikes[self.layer], axis=0))
