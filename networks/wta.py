"""Competitive (winner-take-all) circuit with adaptive thresholds, after Diehl & Cook.

Diehl & Cook, "Unsupervised learning of digit recognition using spike-timing-dependent
plasticity", Front. Comput. Neurosci. 9:99 (2015): a layer of excitatory LIF neurons
driven by plastic input synapses, each neuron's threshold rising by ``theta_plus`` at
each of its spikes and relaxing with ``tau_theta`` (homeostasis: a neuron that wins
often becomes harder to excite, so all neurons get to learn), and lateral inhibition
(an inhibitory population one-to-one with the excitatory neurons that inhibits all the
others), which makes the layer competitive.

Here the inhibitory population is folded into a direct lateral inhibition of strength
``w_inh`` (a spike of neuron ``j`` lowers the membrane of every other neuron by
``w_inh``, in the same step), which is the limit of a fast inhibitory relay (UNCONFIRMED
as to equivalence in all regimes; Diehl & Cook's own inhibition is conductance-based).
Membranes are dimensionless (``v`` in units of the threshold, as in a NIR graph) unless
the user gives physical values.

:class:`AdaptiveLIF` (per step of ``dt``)::

    v     <- v + (1 - exp(-dt / tau)) (v_leak - v + r i)
    theta <- theta exp(-dt / tau_theta)
    z     =  H(v - (v_threshold + theta)),  v <- v_reset where z,  theta <- theta + theta_plus z

with a refractory period ``t_ref``.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .neurons import AbstractNeuron, FixedPoint
from .spikes import AbstractSpikeFunction, Heaviside

__all__ = ["AdaptiveLIF", "AdaptiveState", "WTALayer"]


class AdaptiveState(eqx.Module):
    """State of :class:`AdaptiveLIF`: membrane ``v``, remaining refractory time
    ``refractory`` [s], threshold increase ``theta`` (units of ``v``)."""

    v: Float[Array, "*shape"]
    refractory: Float[Array, "*shape"]
    theta: Float[Array, "*shape"]


class AdaptiveLIF(AbstractNeuron):
    """LIF neuron with an adaptive threshold (module docstring; Diehl & Cook 2015).

    Fields: ``tau`` [s], ``r`` (input -> voltage), ``v_leak``, ``v_threshold``, ``v_reset``
    (units of ``v``), ``t_ref`` [s], ``theta_plus`` (threshold step per spike),
    ``tau_theta`` [s]. Defaults dimensionless (threshold 1, reset 0); ``tau`` 100 ms and
    ``t_ref`` 5 ms as the excitatory neurons of Diehl & Cook (2015); ``theta_plus`` 0.05
    and ``tau_theta`` 1e4 s are our values for the dimensionless membrane (Diehl & Cook:
    0.05 mV and 1e7 ms)."""

    tau: float = 100e-3
    r: float = 1.0
    v_leak: float = 0.0
    v_threshold: float = 1.0
    v_reset: float = 0.0
    t_ref: float = 5e-3
    theta_plus: float = 0.05
    tau_theta: float = 1e4
    spike_fn: AbstractSpikeFunction = Heaviside()
    precision: FixedPoint | None = None
    spiking: ClassVar[bool] = True
    n_ops: ClassVar[int] = 6

    def __check_init__(self):
        for name in ("tau", "tau_theta"):
            val = getattr(self, name)
            if isinstance(val, (int, float)) and not val > 0:
                raise ValueError(f"{name} must be positive [s], got {val}")
        for name in ("t_ref", "theta_plus"):
            val = getattr(self, name)
            if isinstance(val, (int, float)) and val < 0:
                raise ValueError(f"{name} must be >= 0, got {val}")

    def init_state(self, shape, dtype=None) -> AdaptiveState:
        dtype = jnp.result_type(float) if dtype is None else dtype
        z = jnp.zeros(tuple(shape), dtype)
        return AdaptiveState(v=z, refractory=z, theta=z)

    def _step(self, state, i_in, dt):
        a = 1.0 - jnp.exp(-dt / self.tau)
        v = state.v + a * (self.v_leak - state.v + self.r * i_in)
        v = self._quantise(v)
        theta = state.theta * jnp.exp(-dt / self.tau_theta)
        active = state.refractory <= 0.5 * dt
        v = jnp.where(active, v, self.v_reset)
        thr = self.v_threshold + theta
        scale = jnp.abs(self.v_threshold - self.v_reset)
        z = jnp.where(active, self.spike_fn((v - thr) / scale), 0.0).astype(v.dtype)
        v = jnp.where(z > 0, self.v_reset, v)
        ref = jnp.where(z > 0, self.t_ref, jnp.maximum(state.refractory - dt, 0.0))
        return AdaptiveState(
            v=v, refractory=ref.astype(v.dtype), theta=theta + self.theta_plus * z
        ), z


class WTALayer(eqx.Module):
    """Excitatory adaptive neurons with lateral inhibition (module docstring).

    Fields: ``neuron`` (:class:`AdaptiveLIF`), ``w_inh`` (membrane drop of every other
    neuron per spike, units of ``v``), ``hard``: at most one spike per step (the neuron
    with the largest suprathreshold margin wins the step; the others keep their
    membranes, then get inhibited), as a fast inhibition would enforce.

    ``step(state, i_in, dt) -> (state, spikes)`` with ``i_in`` of shape ``(N,)``."""

    neuron: AdaptiveLIF = AdaptiveLIF()
    w_inh: float = 1.0
    hard: bool = eqx.field(default=True, static=True)

    def init_state(self, n: int, dtype=None) -> AdaptiveState:
        return self.neuron.init_state((n,), dtype)

    def step(self, state: AdaptiveState, i_in, dt):
        i_in = jnp.asarray(i_in).astype(state.v.dtype)
        if not self.hard:
            new, z = self.neuron.step(state, i_in, dt)
        else:
            # find the winner from the membranes the neurons would reach
            trial, z_all = self.neuron.step(state, i_in, dt)
            a = 1.0 - jnp.exp(-dt / self.neuron.tau)
            v_pre = state.v + a * (self.neuron.v_leak - state.v + self.neuron.r * i_in)
            margin = jnp.where(z_all > 0, v_pre - (self.neuron.v_threshold + state.theta), -jnp.inf)
            win = (jnp.arange(z_all.shape[-1]) == jnp.argmax(margin, axis=-1)) & (z_all > 0)
            z = win.astype(z_all.dtype)
            lose = (z_all > 0) & ~win
            # losers: no spike, no threshold step, membrane as before the threshold test
            new = AdaptiveState(
                v=jnp.where(lose, v_pre, trial.v),
                refractory=jnp.where(lose, state.refractory, trial.refractory),
                theta=jnp.where(lose, trial.theta - self.neuron.theta_plus, trial.theta),
            )
        others = jnp.sum(z, axis=-1, keepdims=True) - z
        v = new.v - self.w_inh * others
        v = jnp.maximum(v, self.neuron.v_reset - self.w_inh)  # inhibition saturates
        return eqx.tree_at(lambda s: s.v, new, v), z
