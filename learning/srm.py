"""The spike response model (SRM0) neuron of Masquelier, Guyonneau & Thorpe (2008).

Source: T. Masquelier, R. Guyonneau, S. J. Thorpe, "Spike timing dependent plasticity
finds the start of repeating patterns in continuous spike trains", PLoS ONE 3(1):e1377
(2008), Methods; the model is Gerstner's SRM0 (W. Gerstner & W. M. Kistler, *Spiking
Neuron Models*, CUP 2002, section 4.2). The membrane potential, in units of the peak of
one EPSP of weight 1, is

    u(t) = eta(t - t_i) + sum_{j, t_j > t_i} w_j eps(t - t_j)

with ``t_i`` the last output spike and ``t_j`` the input spikes that arrived after it
(EPSPs of spikes before the last output spike are ignored), and the kernels

    eps(s) = K (exp(-s / tau_m) - exp(-s / tau_s))                       (EPSP)
    eta(s) = T (K1 exp(-s / tau_m) - K2 (exp(-s / tau_m) - exp(-s / tau_s)))

(``eta``: a positive pulse of height ``K1 T`` at the spike and a negative
after-potential). ``K`` normalises the peak of ``eps`` to 1: the peak is at ``s* =
tau_m tau_s / (tau_m - tau_s) ln(tau_m / tau_s)``. Paper values: ``tau_m`` 10 ms,
``tau_s`` 2.5 ms, threshold ``T`` 500, ``K1`` 2, ``K2`` 4.

A spike is emitted when ``u`` crosses ``T`` from below (the event an event-driven
simulation detects); the positive pulse of ``eta`` therefore never fires the neuron
again, whatever the step.

Discretisation (exact for the kernels): both exponentials of the EPSP sum are state
variables that decay by ``exp(-dt / tau)`` per step; an input spike in step ``n`` is
taken to arrive at the end of the step (``t_n``), so it contributes ``eps(0) = 0`` at
``t_n`` and ``eps(k dt)`` ``k`` steps later. A spike at ``t_n`` first clears the EPSPs
of the inputs of earlier steps; the inputs of step ``n`` itself are kept (they count as
arriving after the output spike).

This neuron takes weighted input spike counts (peak-EPSP units) rather than a current,
and its state is not the :class:`xbar.networks.NeuronState` of the networks layer, so it
lives here beside the experiment that uses it.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["SRMNeuron", "SRMState"]


class SRMState(eqx.Module):
    """State of :class:`SRMNeuron` (arrays of the layer shape).

    Fields: ``epsp_m``, ``epsp_s`` the sums ``sum_j w_j exp(-(t - t_j) / tau)`` over the
    inputs since the last output spike (peak-EPSP units, before the factor ``K``);
    ``since_spike`` time since the last output spike [s] (large at the start: no spike
    yet); ``u`` the potential at the end of the last step (after a spike: its value just
    after the spike, ``eta(0) = K1 T`` plus the kept EPSPs)."""

    epsp_m: Float[Array, "*shape"]
    epsp_s: Float[Array, "*shape"]
    since_spike: Float[Array, "*shape"]
    u: Float[Array, "*shape"]


class SRMNeuron(eqx.Module):
    """SRM0 neuron of Masquelier et al. (2008) (module docstring).

    Fields:
        threshold: ``T`` [peak-EPSP units]. Default 500 (Masquelier et al. 2008).
        tau_m: membrane time constant [s]. Default 10 ms.
        tau_s: synapse time constant [s]. Default 2.5 ms.
        k1, k2: the after-potential's pulse and undershoot constants [-]. Defaults 2, 4.
    """

    threshold: float = 500.0
    tau_m: float = 10e-3
    tau_s: float = 2.5e-3
    k1: float = 2.0
    k2: float = 4.0

    def __check_init__(self):
        for name in ("threshold", "tau_m", "tau_s"):
            v = getattr(self, name)
            if isinstance(v, (int, float)) and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive and finite (0, inf), got {v}")
        if isinstance(self.tau_m, (int, float)) and isinstance(self.tau_s, (int, float)):
            if not self.tau_s < self.tau_m:
                raise ValueError(
                    f"tau_s ({self.tau_s} s) must be below tau_m ({self.tau_m} s) for the "
                    "EPSP kernel to be positive"
                )
        for name in ("k1", "k2"):
            v = getattr(self, name)
            if isinstance(v, (int, float)) and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be non-negative and finite [0, inf), got {v}")

    @property
    def t_peak(self):
        """Time of the EPSP peak ``tau_m tau_s / (tau_m - tau_s) ln(tau_m / tau_s)`` [s]."""
        tm, ts = self.tau_m, self.tau_s
        return tm * ts / (tm - ts) * jnp.log(tm / ts)

    @property
    def k(self):
        """``K``: the factor that makes the EPSP peak 1."""
        s = self.t_peak
        return 1.0 / (jnp.exp(-s / self.tau_m) - jnp.exp(-s / self.tau_s))

    def epsp(self, s):
        """``eps(s)`` for ``s >= 0`` [s] (0 for ``s < 0``)."""
        s = jnp.asarray(s)
        e = self.k * (jnp.exp(-s / self.tau_m) - jnp.exp(-s / self.tau_s))
        return jnp.where(s >= 0, e, 0.0)

    def after_potential(self, s):
        """``eta(s)`` for ``s >= 0`` [s] (peak-EPSP units)."""
        s = jnp.asarray(s)
        em, es = jnp.exp(-s / self.tau_m), jnp.exp(-s / self.tau_s)
        return self.threshold * (self.k1 * em - self.k2 * (em - es))

    def init_state(self, shape: tuple[int, ...], dtype=None) -> SRMState:
        """No input, no spike yet."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        z = jnp.zeros(tuple(shape), dtype)
        # "no spike yet": long enough for eta to have decayed to 0 in any precision
        return SRMState(epsp_m=z, epsp_s=z, since_spike=z + 1e3 * self.tau_m, u=z)

    def potential(self, state: SRMState):
        """``u`` from the state's EPSP sums and time since the last spike."""
        return self.after_potential(state.since_spike) + self.k * (state.epsp_m - state.epsp_s)

    def step(
        self, state: SRMState, x: Float[Array, "*shape"], dt: float
    ) -> tuple[SRMState, Float[Array, "*shape"], Float[Array, "*shape"]]:
        """One step of ``dt`` [s]: decay, threshold, reset, then add this step's input
        ``x = sum_j w_j s_j`` (weighted input spike count, peak-EPSP units). Returns
        ``(state, spikes in {0, 1}, u)`` with ``u`` the potential at the end of the step
        before the spike's reset."""
        if isinstance(dt, (int, float)) and not dt > 0:
            raise ValueError(f"dt must be positive [s], got {dt}")
        x = jnp.asarray(x, state.u.dtype)
        if x.shape != state.u.shape:
            raise ValueError(f"x must have the shape of the state {state.u.shape}, got {x.shape}")
        dm = jnp.exp(-dt / jnp.asarray(self.tau_m, x.dtype))
        ds = jnp.exp(-dt / jnp.asarray(self.tau_s, x.dtype))
        em, es = state.epsp_m * dm, state.epsp_s * ds
        since = state.since_spike + dt
        u = self.after_potential(since) + self.k * (em - es)
        z = (u >= self.threshold) & (state.u < self.threshold)
        em = jnp.where(z, 0.0, em) + x
        es = jnp.where(z, 0.0, es) + x
        since = jnp.where(z, 0.0, since)
        u_after = jnp.where(z, self.after_potential(0.0), u)
        new = SRMState(
            epsp_m=em.astype(x.dtype),
            epsp_s=es.astype(x.dtype),
            since_spike=since.astype(x.dtype),
            u=u_after.astype(x.dtype),
        )
        return new, z.astype(x.dtype), u.astype(x.dtype)
