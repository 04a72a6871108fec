"""Emergent STDP: learning windows from overlapping spike waveforms on one device.

Memristive STDP without any learning circuit (Zamarreno-Ramos et al., Front. Neurosci.
5:26, 2011, Figs. 2-4; Serrano-Gotarredona et al., Front. Neurosci. 7:2, 2013, Fig. 1):
each neuron emits the same-shaped action potential on its terminal of the synapse, a
short peak followed by a long, shallow tail of the opposite sign; neither alone exceeds
the device's switching threshold. The device sits between the post terminal and the
pre terminal and sees

    v_MR(t) = v_post(t - t_post) - v_pre(t - t_pre),      dt = t_post - t_pre.

Pre before post (``dt > 0``): the post peak coincides with the pre tail, ``v_MR`` rises
above the SET threshold for the duration of the peak, by an amount that shrinks as the
pre tail decays with ``dt``: potentiation decaying with ``dt``. Post before pre: the pre
peak rides on the post tail, ``v_MR`` dips below the RESET threshold: depression. The
window ``dG(dt)`` is what the device's own dynamics make of ``v_MR`` (here the physical
models of ``xbar.devices``: Stanford-PKU RRAM, the electro-thermal PCM), integrated
step by step with ``device.apply_pulse`` over a time grid of ``dt_s``. Other waveforms
give other windows: a tail of the same sign as the peak gives anti-STDP, a symmetric
tail around the peak (a peak between two tails) a symmetric window.

:class:`SpikeWaveform` (per unit time ``t`` from the spike onset)::

    v(t) = a_peak                                  0 <= t < t_peak
         = -a_tail exp(-(t - t_peak) / tau_tail)   t_peak <= t < t_peak + t_tail
         = 0                                       otherwise

with ``a_tail`` signed (positive: the usual opposite-sign tail) and an optional
pre-peak tail of duration ``t_lead`` and amplitude ``a_lead`` (for symmetric windows).
Unipolar devices (PCM): both polarities heat the cell, and RESET (melt-quench) is abrupt,
so one PCM cell cannot give the bipolar window above. The literature uses a two-device
synapse (Bichler et al., IEEE Trans. Electron Devices 59(8), 2206 (2012); Suri et al.,
IEDM 2011): a long-term-potentiation device ``G+`` and a long-term-depression device
``G-``, both only ever crystallised step by step (partial SET), weight ``~ G+ - G-``.
:func:`pair_learning_window` realises it with overlapping waveforms (our combination of
that synapse with the overlap principle above): the post neuron drives the shared
terminal with a peak alone (no tail); the pre neuron drives the ``G+`` line with its
spike (peak, then the tail) and the ``G-`` line with the mirrored spike
(:meth:`SpikeWaveform.mirrored`: the tail before the peak, the spike time being the
peak, as in the pulse trains of Kuzum et al., Nano Lett. 12, 2179 (2012), which are
centred on the spike). Pre before post: the post peak meets the pre tail on ``G+``,
whose crystallisation grows with the summed amplitude, so ``dG+`` decays with ``dt``;
on ``G-`` the post peak comes after the mirrored spike and acts alone (below the
threshold switching voltage: nothing). Post before pre: the same on ``G-``. Window:
``dG+(dt) - dG-(dt)``.

Device speed sets the time scale: Stanford-PKU switches in nanoseconds at 1.3-1.5 V, so
the default waveforms are nanosecond spikes (a time-scaled version of the millisecond
waveforms of the papers; the shape of the window in units of the tail time constant is
what carries over).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["SpikeWaveform", "learning_window", "overlap_voltage", "pair_learning_window"]


class SpikeWaveform(eqx.Module):
    """A spike waveform (module docstring). Amplitudes [V], times [s].

    Defaults (UNCONFIRMED, our choice for Stanford-PKU: peak 0.9 V and tail 0.45 V are
    each below its ~1.05 V field threshold, their sum above it; nanosecond time scale):
    ``a_peak`` 0.9 V for ``t_peak`` 5 ns, tail ``a_tail`` 0.45 V decaying with ``tau_tail``
    25 ns over ``t_tail`` 100 ns; no leading tail."""

    a_peak: float = 0.9
    t_peak: float = 5e-9
    a_tail: float = 0.45
    tau_tail: float = 25e-9
    t_tail: float = 100e-9
    a_lead: float = 0.0
    t_lead: float = 0.0

    def __check_init__(self):
        for name in ("t_peak", "tau_tail", "t_tail"):
            val = getattr(self, name)
            if isinstance(val, (int, float)) and not val > 0:
                raise ValueError(f"{name} must be positive [s], got {val}")
        if isinstance(self.t_lead, (int, float)) and self.t_lead < 0:
            raise ValueError(f"t_lead must be >= 0 [s], got {self.t_lead}")

    def __call__(self, t: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Voltage [V] at time ``t`` [s] after the onset of the peak."""
        t = jnp.asarray(t)
        tail = -self.a_tail * jnp.exp(-(t - self.t_peak) / self.tau_tail)
        lead = -self.a_lead * jnp.exp((t + 0.0) / self.tau_tail)
        v = jnp.where((t >= 0) & (t < self.t_peak), self.a_peak, 0.0)
        v = jnp.where((t >= self.t_peak) & (t < self.t_peak + self.t_tail), tail, v)
        return jnp.where((t < 0) & (t >= -self.t_lead), lead, v)

    def mirrored(self) -> SpikeWaveform:
        """The same spike with its tail moved ahead of the peak (``a_lead = a_tail``,
        ``t_lead = t_tail``, no trailing tail): the ``G-`` line of
        :func:`pair_learning_window`."""
        return SpikeWaveform(
            a_peak=self.a_peak,
            t_peak=self.t_peak,
            a_tail=0.0,
            tau_tail=self.tau_tail,
            t_tail=self.t_peak,
            a_lead=self.a_tail,
            t_lead=self.t_tail,
        )

    @property
    def span(self):
        """Time from the start of the lead to the end of the tail [s]."""
        return self.t_lead + self.t_peak + self.t_tail


def overlap_voltage(pre: SpikeWaveform, post: SpikeWaveform, lag_s, t_s):
    """``v_MR(t) = v_post(t - lag) - v_pre(t)`` [V]: pre spike at 0, post at ``lag_s``."""
    return post(t_s - lag_s) - pre(t_s)


def learning_window(
    device,
    state,
    lags_s: Float[Array, " k"],
    *,
    pre: SpikeWaveform = SpikeWaveform(),
    post: SpikeWaveform | None = None,
    dt_s: float = 0.5e-9,
    n_steps: int | None = None,
    v_read: float | None = None,
) -> Float[Array, " k"]:
    """The learning window ``dG(lag)`` [S] of ``device`` from state ``state`` (scalar
    state): for each ``lag = t_post - t_pre`` [s] the device integrates ``v_MR(t)`` on a
    grid of ``dt_s`` (piecewise constant, one ``device.apply_pulse`` per step, no
    cycle-to-cycle noise) from the earlier spike's start to the later spike's end;
    returns the conductance change at ``v_read`` (default the device's).

    ``n_steps`` (static) fixes the grid length (default: enough for the largest lag)."""
    post = pre if post is None else post
    lags = jnp.asarray(lags_s)
    if dt_s <= 0:
        raise ValueError(f"dt_s must be positive [s], got {dt_s}")
    if n_steps is None:
        span = max(float(pre.span), float(post.span))
        n_steps = int(jnp.ceil((float(jnp.max(jnp.abs(lags))) + span) / dt_s)) + 2
    g0 = device.conductance(state, v_read)

    def one(lag):
        t0 = jnp.minimum(0.0, lag) - jnp.maximum(pre.t_lead, post.t_lead)
        ts = t0 + (jnp.arange(n_steps) + 0.5) * dt_s

        def step(st, t):
            v = overlap_voltage(pre, post, lag, t)
            return device.apply_pulse(st, v, dt_s, None), None

        st, _ = jax.lax.scan(step, state, ts)
        return device.conductance(st, v_read) - g0

    return jax.vmap(one)(lags)


def pair_learning_window(
    device,
    state,
    lags_s: Float[Array, " k"],
    *,
    pre: SpikeWaveform,
    post: SpikeWaveform,
    dt_s: float,
    state_minus=None,
    v_read: float | None = None,
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """Learning window of a two-device synapse (``G+``, ``G-``, module docstring):
    ``(dG+(lag), dG-(lag))`` [S]; the weight window is their difference.

    ``G+`` sees ``v_post(t - lag) - v_pre(t)``, ``G-`` sees ``v_post(t - lag) -
    v_pre_mirrored(t)`` (:meth:`SpikeWaveform.mirrored`); ``post`` should be a peak
    without a tail (``a_tail = 0``). ``state`` is the state of ``G+`` and, unless
    ``state_minus`` is given, of ``G-``. Each device integrates on a grid of ``dt_s``
    as in :func:`learning_window`. For a device whose temperature relaxes between calls
    of ``apply_pulse`` (the PCM model), choose ``dt_s`` equal to the peak width and lags
    and times on that grid, so that every overlap is one pulse."""
    lags = jnp.asarray(lags_s)
    kw = dict(post=post, dt_s=dt_s, v_read=v_read)
    d_plus = learning_window(device, state, lags, pre=pre, **kw)
    st_m = state if state_minus is None else state_minus
    d_minus = learning_window(device, st_m, lags, pre=pre.mirrored(), **kw)
    return d_plus, d_minus
