"""Unsupervised STDP learning in a competitive layer (Diehl & Cook 2015), on ideal or
device synapses.

Protocol (Diehl & Cook, Front. Comput. Neurosci. 9:99, 2015, "Methods: training,
evaluation"): images are presented one after another as Poisson spike trains (pixel
``x`` in [0, 1] fires with probability ``p_max x`` per step) for ``n_steps`` steps of
``dt``; the input synapses learn with an STDP rule (default post-triggered with a
target trace and soft bounds, :class:`.stdp.DiehlCookSTDP` + :class:`.rules.SoftBound`);
membranes are reset between images, adaptive thresholds are kept. After training,
learning is switched off, every neuron is labelled with the class for which it
responded most (mean spike count) on the training set, and a test image is classified
as the class whose labelled neurons respond most on average.

Synapses: ``xb=None`` keeps ideal weights (a float array updated by the asked-for
change: linear, noise-free). With a crossbar ``xb`` and a pulse scheme the asked-for
change of every step with a post spike goes through :func:`.transfer.deliver` (the
devices deliver what they deliver); the input currents use the crossbar's weights read
at the start of each image (noiseless read). The statistics of asked-for vs delivered
change are accumulated over all learning events.

Pattern detection (Masquelier, Guyonneau & Thorpe, PLoS ONE 3:e1377, 2008):
:class:`HiddenPattern` generates the paper's input (a repeating 50 ms spatio-temporal
pattern on half of 2000 afferents, hidden among inhomogeneous Poisson spike trains of the
same rates, with noise and jitter), :func:`detect_pattern` drives one SRM neuron
(:class:`.srm.SRMNeuron`) with reduced nearest-spike STDP
(:class:`.stdp.ReducedNearestSTDP`) on ideal synapses, and :func:`pattern_scores` gives
the paper's criteria (hit rate, false alarms, latency).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
from xbar.networks.wta import AdaptiveLIF, WTALayer

import xbar

from . import rules, stdp, transfer
from .srm import SRMNeuron

__all__ = [
    "HiddenPattern",
    "LearningStats",
    "PatternRun",
    "PatternScores",
    "ProcessState",
    "WTATrainer",
    "assign_labels",
    "detect_pattern",
    "pattern_scores",
    "predict",
    "window_latencies",
]


class LearningStats(eqx.Module):
    """Asked-for vs delivered statistics over the learning events (sums over synapses
    and events): ``asked_sum``, ``delivered_sum``, ``asked_abs``, ``err_sq`` (sum of
    ``(delivered - asked)^2``), ``n`` (synapse-events with a nonzero request), ``pulses``,
    ``energy_j``, ``time_s``; ``refresh_pulses``, ``refresh_energy_j``, ``refreshes``: the
    pair refreshes of :meth:`WTATrainer.train` (0 without); ``asked_rise`` and
    ``delivered_rise`` (sums over the synapse-events asked to rise), ``asked_fall`` and
    ``delivered_fall`` (asked to fall).

    Read the two polarities apart (:attr:`ratio_rise`, :attr:`ratio_fall`): in
    competitive STDP the rises (active inputs) and falls (silent inputs) nearly cancel,
    so ``delivered_sum / asked_sum`` divides two small differences and can take either
    sign when each polarity is delivered with the right sign but its own gain (a device
    with unequal SET and RESET steps)."""

    asked_sum: Array
    delivered_sum: Array
    asked_abs: Array
    delivered_abs: Array
    err_sq: Array
    n: Array
    pulses: Array
    energy_j: Array
    time_s: Array
    refresh_pulses: Array
    refresh_energy_j: Array
    refreshes: Array
    asked_rise: Array
    delivered_rise: Array
    asked_fall: Array
    delivered_fall: Array

    @classmethod
    def zeros(cls, dtype):
        z = jnp.zeros((), dtype)
        return cls(*([z] * 16))

    @property
    def ratio_rise(self):
        """Delivered over asked change, summed over the synapse-events asked to rise."""
        return self.delivered_rise / self.asked_rise

    @property
    def ratio_fall(self):
        """Delivered over asked change, summed over the synapse-events asked to fall."""
        return self.delivered_fall / self.asked_fall

    def add_refresh(self, rep):
        """Count one refresh (an ``xbar.ProgramReport``)."""
        dt = self.n.dtype
        return eqx.tree_at(
            lambda s: (s.refresh_pulses, s.refresh_energy_j, s.refreshes),
            self,
            (
                self.refresh_pulses + jnp.sum(rep.pulses).astype(dt),
                self.refresh_energy_j + rep.total_energy_j.astype(dt),
                self.refreshes + jnp.ones((), dt),
            ),
        )

    def add(self, asked, delivered, rep: transfer.Delivery | None):
        nz = asked != 0
        dt = self.n.dtype
        return jax.tree_util.tree_map(
            lambda a: jnp.asarray(a).astype(dt),
            LearningStats(
                asked_sum=self.asked_sum + jnp.sum(asked),
                delivered_sum=self.delivered_sum + jnp.sum(delivered),
                asked_abs=self.asked_abs + jnp.sum(jnp.abs(asked)),
                delivered_abs=self.delivered_abs + jnp.sum(jnp.abs(delivered)),
                err_sq=self.err_sq + jnp.sum(jnp.where(nz, (delivered - asked) ** 2, 0.0)),
                n=self.n + jnp.sum(nz),
                pulses=self.pulses + (0 if rep is None else jnp.sum(rep.pulses)),
                energy_j=self.energy_j + (0 if rep is None else rep.total_energy_j),
                time_s=self.time_s + (0 if rep is None else rep.time_s),
                refresh_pulses=self.refresh_pulses,
                refresh_energy_j=self.refresh_energy_j,
                refreshes=self.refreshes,
                asked_rise=self.asked_rise + jnp.sum(jnp.where(asked > 0, asked, 0.0)),
                delivered_rise=self.delivered_rise + jnp.sum(jnp.where(asked > 0, delivered, 0.0)),
                asked_fall=self.asked_fall + jnp.sum(jnp.where(asked < 0, asked, 0.0)),
                delivered_fall=self.delivered_fall + jnp.sum(jnp.where(asked < 0, delivered, 0.0)),
            ),
        )


class WTATrainer(eqx.Module):
    """Training and evaluation of a :class:`xbar.networks.WTALayer` with STDP (module
    docstring).

    Fields: ``layer``; ``rule`` (default ``chain(DiehlCookSTDP(...), SoftBound(0, 1))``);
    ``n_steps`` steps of ``dt`` [s] per image; ``p_max`` spike probability per step of a
    full pixel; ``gain`` input current per unit weight and input spike (units of the
    membrane's ``r i``)."""

    layer: WTALayer = WTALayer(neuron=AdaptiveLIF(theta_plus=0.1))
    rule: rules.AbstractRule = rules.chain(
        stdp.DiehlCookSTDP(eta_post=0.1, eta_pre=0.0, x_target=0.4), rules.SoftBound(0.0, 1.0)
    )
    n_steps: int = eqx.field(default=100, static=True)
    dt: float = 1e-3
    p_max: float = 0.2
    gain: float = 6.0

    def _spikes(self, key, x):
        return (jax.random.uniform(key, (self.n_steps,) + x.shape) < self.p_max * x).astype(x.dtype)

    def _factors(self, st, pre, post):
        r = self.rule.rules[0] if isinstance(self.rule, rules.Chain) else self.rule
        return r.factors(st[0] if isinstance(self.rule, rules.Chain) else st, pre, post, self.dt)

    def train(
        self,
        key,
        x: Float[Array, "b m"],
        w0: Float[Array, "m n"],
        *,
        xb=None,
        scheme=None,
        refresh=None,
        refresh_every: int = 0,
    ):
        """One pass over the images ``x`` (B, M). Ideal synapses start from ``w0``; with
        ``xb`` (and ``scheme``) the crossbar is trained and ``w0`` ignored. Returns
        ``(weights or crossbar, theta, LearningStats)``.

        Refresh (differential pairs of one-way devices, e.g. SET-only PCM pairs, Bichler
        et al., IEEE TED 59:2206, 2012; Boybat et al., Nat. Commun. 9:2514, 2018): with a
        programming scheme ``refresh`` (e.g. ``xbar.WriteVerify``) and ``refresh_every``
        ``k > 0``, after every ``k``-th image both devices of every pair are re-programmed
        (:func:`xbar.program`) to the pair's present weight ``G+ - G-`` (clipped to the
        mapping's range), so that the pair leaves the top of its window; the pulses and
        energy of the refreshes are counted in the statistics (``refresh_pulses``,
        ``refresh_energy_j``), apart from the learning pulses.

        With a crossbar the rule's first member must have ``factors`` (outer-product
        delivery) and any modifier after it (e.g. ``SoftBound``) is left to the devices,
        whose steps shrink near the window edges by their own physics."""
        dtype = x.dtype
        m, n = w0.shape
        neu0 = self.layer.init_state(n, dtype)

        def image(carry, xs):
            syn, theta, stats = carry
            xi, k, idx = xs
            k_in, k_del = jax.random.split(k)
            w_img = (syn if xb is None else xb.with_state(syn).weights()).astype(dtype)
            pre_t = self._spikes(k_in, xi)
            neu = eqx.tree_at(lambda s: s.theta, neu0, theta)
            rst = self.rule.init((m, n), dtype)

            def step(c, ys):
                syn, w_img, neu, rst, stats = c
                pre, ks = ys
                i_in = self.gain * (pre @ w_img)
                neu, post = self.layer.step(neu, i_in, self.dt)
                w_now = w_img
                asked, rst_new = self.rule.update(None, rst, pre, post, self.dt, weights=w_now)
                if xb is None:
                    syn = syn + asked
                    w_img = syn
                    stats = stats.add(asked, asked, None)
                else:
                    factors = self._factors(rst, pre, post)
                    asked = factors[0].T @ factors[1]

                    def learn(args):
                        syn, stats = args
                        new, rep = transfer.deliver(
                            xb.with_state(syn), asked, scheme, ks, factors=factors
                        )
                        return new.state, stats.add(asked, rep.delivered, rep)

                    syn, stats = jax.lax.cond(jnp.any(post > 0), learn, lambda a: a, (syn, stats))
                return (syn, w_img, neu, rst_new, stats), None

            keys = jax.random.split(k_del, self.n_steps)
            (syn, _, neu, _, stats), _ = jax.lax.scan(
                step, (syn, w_img, neu, rst, stats), (pre_t, keys)
            )
            if do_refresh:
                k_ref = jax.random.fold_in(k, 1)

                def refresh_pairs(args):
                    syn, stats = args
                    xb_now = xb.with_state(syn)
                    wmax = xb.mapping.w_max
                    target = jnp.clip(xb_now.weights(), -wmax, wmax)
                    new, rep = xbar.program(xb_now, target, refresh, k_ref)
                    return new.state, stats.add_refresh(rep)

                syn, stats = jax.lax.cond(
                    (idx + 1) % refresh_every == 0, refresh_pairs, lambda a: a, (syn, stats)
                )
            return (syn, neu.theta, stats), None

        if refresh is not None and not (isinstance(refresh_every, int) and refresh_every > 0):
            raise ValueError(f"refresh_every must be a positive integer, got {refresh_every!r}")
        do_refresh = refresh is not None and xb is not None
        syn0 = w0 if xb is None else xb.state
        carry = (syn0, neu0.theta, LearningStats.zeros(dtype))
        keys = jax.random.split(key, x.shape[0])
        (syn, theta, stats), _ = jax.lax.scan(image, carry, (x, keys, jnp.arange(x.shape[0])))
        out = syn if xb is None else xb.with_state(syn)
        return out, theta, stats

    def responses(self, key, x: Float[Array, "b m"], w: Float[Array, "m n"], theta):
        """Spike counts (B, N) of the layer for images ``x`` with learning off."""
        n = w.shape[1]
        neu0 = eqx.tree_at(lambda s: s.theta, self.layer.init_state(n, x.dtype), theta)
        # thresholds are frozen during evaluation (Diehl & Cook 2015)
        layer = eqx.tree_at(lambda l: l.neuron.theta_plus, self.layer, 0.0)

        def one(xi, k):
            def step(neu, pre):
                neu, z = layer.step(neu, self.gain * (pre @ w), self.dt)
                return neu, z

            _, z = jax.lax.scan(step, neu0, self._spikes(k, xi))
            return jnp.sum(z, axis=0)

        return jax.lax.map(lambda a: one(*a), (x, jax.random.split(key, x.shape[0])))


def assign_labels(counts: Float[Array, "b n"], y, n_classes: int):
    """Label of each neuron: the class with the highest mean response (Diehl & Cook
    2015); neurons that never fired get label -1."""
    onehot = jax.nn.one_hot(y, n_classes, dtype=counts.dtype)
    per_class = (onehot.T @ counts) / jnp.maximum(onehot.sum(0)[:, None], 1.0)
    labels = jnp.argmax(per_class, axis=0)
    return jnp.where(jnp.sum(counts, axis=0) > 0, labels, -1)


def predict(counts: Float[Array, "b n"], labels, n_classes: int):
    """Class per image: the class whose labelled neurons respond most on average."""
    onehot = jax.nn.one_hot(labels, n_classes, dtype=counts.dtype)  # label -1: no class
    mean = (counts @ onehot) / jnp.maximum(onehot.sum(0), 1.0)
    return jnp.argmax(mean, axis=1)


# ---- a repeating spatio-temporal pattern hidden in Poisson noise -------------------------


class ProcessState(eqx.Module):
    """State of the afferents' rate process: ``rate`` [Hz], ``speed`` (its rate of change)
    [Hz/s], ``gap`` steps since the last spike of the process (M,) each."""

    rate: Float[Array, " m"]
    speed: Float[Array, " m"]
    gap: Array


class HiddenPattern(eqx.Module):
    """Input of the pattern-detection experiment of Masquelier, Guyonneau & Thorpe (PLoS
    ONE 3:e1377, 2008, Methods).

    Each of ``n_afferents`` afferents is an inhomogeneous Poisson process: per step of
    ``dt`` it fires with probability ``rate dt``; then the rate changes by ``speed dt``
    (clipped to ``[0, rate_max_hz]``) and the speed by a uniform draw in
    ``[-speed_step, speed_step]`` (clipped to ``[-speed_max, speed_max]``, so a rate can
    go from 0 to 90 Hz in 50 ms). An afferent that has not fired for ``max_gap_s`` is
    made to fire, so every afferent fires at least once per pattern length. Each
    afferent starts as if its last spike came at a uniformly random time within
    ``max_gap_s`` before the start (the original code's virtual spike before the
    simulation, as ported by Hathway & Goodman, ReScience 4(1):6, 2018), so the forced
    spikes are not synchronised. A pattern is a ``pattern_s`` segment of this process on
    the first ``n_pattern`` afferents; the stream is cut into windows of that length and
    the pattern replaces the process in a window with probability ``q = f / (1 - f)``
    after a window without it and never in two windows in a row, so a fraction ``f =
    frequency`` of the time carries it, at irregular intervals. Each pattern spike is jittered by a Gaussian of standard
    deviation ``jitter_s`` (rounded to steps, kept inside its window) at every
    presentation, and independent spontaneous spikes at ``noise_hz`` are added to all
    afferents at all times. The pattern has the statistics of the rest of the input: it
    cannot be seen in the rates (population rate about 64 Hz: 54 Hz of the process plus
    10 Hz of noise, Masquelier et al. 2008).

    Fields (defaults: the paper's standard configuration): ``n_afferents`` 2000,
    ``n_pattern`` 1000, ``pattern_s`` 50 ms, ``dt`` 1 ms, ``rate_max_hz`` 90,
    ``speed_max`` 1800 Hz/s, ``speed_step`` 360 Hz/s per step (one fifth of ``speed_max``
    per 1 ms step in the original code as ported by Hathway & Goodman 2018),
    ``max_gap_s`` 50 ms, ``noise_hz`` 10, ``jitter_s`` 1 ms, ``frequency`` 0.25.
    """

    n_afferents: int = eqx.field(default=2000, static=True)
    n_pattern: int = eqx.field(default=1000, static=True)
    pattern_s: float = eqx.field(default=50e-3, static=True)
    dt: float = eqx.field(default=1e-3, static=True)
    rate_max_hz: float = 90.0
    speed_max: float = 1800.0
    speed_step: float = 360.0
    max_gap_s: float = eqx.field(default=50e-3, static=True)
    noise_hz: float = 10.0
    jitter_s: float = 1e-3
    frequency: float = 0.25

    def __check_init__(self):
        if not (isinstance(self.n_afferents, int) and self.n_afferents > 0):
            raise ValueError(f"n_afferents must be a positive integer, got {self.n_afferents!r}")
        if not (isinstance(self.n_pattern, int) and 0 < self.n_pattern <= self.n_afferents):
            raise ValueError(
                f"n_pattern must be an integer in [1, n_afferents={self.n_afferents}], "
                f"got {self.n_pattern!r}"
            )
        if not self.dt > 0:
            raise ValueError(f"dt must be positive [s], got {self.dt}")
        if not self.pattern_s >= self.dt:
            raise ValueError(f"pattern_s must be at least dt ({self.dt} s), got {self.pattern_s}")
        if not self.max_gap_s >= self.dt:
            raise ValueError(f"max_gap_s must be at least dt ({self.dt} s), got {self.max_gap_s}")
        for name in ("rate_max_hz", "speed_max", "speed_step", "noise_hz", "jitter_s"):
            v = getattr(self, name)
            if isinstance(v, (int, float)) and not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        f = self.frequency
        if isinstance(f, (int, float)) and not 0 <= f <= 0.5:
            raise ValueError(f"frequency must be in [0, 0.5] (no two windows in a row), got {f}")

    @property
    def pattern_steps(self) -> int:
        """Steps per window (the pattern's length)."""
        return max(1, round(self.pattern_s / self.dt))

    def init_process(self, key, dtype=None) -> ProcessState:
        """Rates uniform in ``[0, rate_max_hz]``, speeds uniform in ``±speed_max``, steps
        since the last spike uniform in ``[0, max_gap)`` (class docstring).

        With all afferents starting at 0 steps, those that do not fire at random are
        forced at the same step, once per ``max_gap_s``: in a pattern cut from the first
        windows about 20 % of the pattern afferents then fire in its last step (5 % in any
        other step), and these late, weakly depressed afferents grow once the
        latency is short, which made the neuron lose the pattern (docs/learning.md)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        k1, k2, k3 = jax.random.split(key, 3)
        m = self.n_afferents
        rate = jax.random.uniform(k1, (m,), dtype, 0.0, self.rate_max_hz)
        speed = jax.random.uniform(k2, (m,), dtype, -self.speed_max, self.speed_max)
        max_gap = max(1, round(self.max_gap_s / self.dt))
        gap = jax.random.randint(k3, (m,), 0, max_gap, jnp.int32)
        return ProcessState(rate=rate, speed=speed, gap=gap)

    def _process(self, key, st: ProcessState):
        """One window of the process: ``(state, process spikes (L, M) bool, noise spikes
        (L, M) bool)``."""
        L, m, dt = self.pattern_steps, self.n_afferents, self.dt
        dtype = st.rate.dtype
        k_fire, k_speed = jax.random.split(key)
        u_fire = jax.random.uniform(k_fire, (L, m), dtype)
        du = jax.random.uniform(k_speed, (L, m), dtype, -self.speed_step, self.speed_step)
        max_gap = max(1, round(self.max_gap_s / dt))
        p_noise = self.noise_hz * dt

        def one(st, xs):
            u, d = xs
            p = st.rate * dt
            fire = (u < p) | (st.gap + 1 >= max_gap)
            # noise uses the same draw, outside the process's interval: independent of
            # it with probability p_noise (exact while p + p_noise <= 1)
            noise = (u >= p) & (u < p + p_noise)
            speed = jnp.clip(st.speed + d, -self.speed_max, self.speed_max)
            rate = jnp.clip(st.rate + st.speed * dt, 0.0, self.rate_max_hz)
            gap = jnp.where(fire, 0, st.gap + 1)
            return ProcessState(rate.astype(dtype), speed.astype(dtype), gap), (fire, noise)

        st, (fire, noise) = jax.lax.scan(one, st, (u_fire, du))
        return st, fire, noise

    def make_pattern(self, key, dtype=None) -> Float[Array, "L n_pattern"]:
        """The pattern: one window of the process on the first ``n_pattern`` afferents,
        taken after one window of burn-in (so it obeys the at-least-once rule)."""
        k0, k1, k2 = jax.random.split(key, 3)
        st = self.init_process(k0, dtype)
        st, _, _ = self._process(k1, st)
        _, fire, _ = self._process(k2, st)
        dtype = st.rate.dtype
        return fire[:, : self.n_pattern].astype(dtype)

    def schedule(self, key, n_windows: int) -> Array:
        """Which windows carry the pattern (bool, ``n_windows``): never two in a row, a
        fraction ``frequency`` on average (class docstring)."""
        f = jnp.asarray(self.frequency)
        q = f / (1.0 - f)
        u = jax.random.uniform(key, (n_windows,))

        def one(prev, ui):
            now = (~prev) & (ui < q)
            return now, now

        _, on = jax.lax.scan(one, jnp.asarray(True), u)  # the first window never
        return on

    def jitter(self, key, pattern):
        """One presentation of the pattern with every spike moved by a Gaussian jitter of
        ``jitter_s`` rounded to steps and clipped to the window."""
        L, n = pattern.shape
        shift = jnp.round(jax.random.normal(key, (L, n)) * (self.jitter_s / self.dt))
        t_new = jnp.clip(jnp.arange(L)[:, None] + shift.astype(jnp.int32), 0, L - 1)
        cols = jnp.broadcast_to(jnp.arange(n)[None, :], (L, n))
        return jnp.zeros_like(pattern).at[t_new, cols].max(pattern)

    def window(self, key, st: ProcessState, pattern, on):
        """One window of input: ``(state, spikes (L, M))`` with the (jittered) pattern
        pasted on its afferents where ``on``."""
        k_proc, k_jit = jax.random.split(key)
        st, fire, noise = self._process(k_proc, st)
        dtype = pattern.dtype
        pat = jax.lax.cond(
            on, lambda: self.jitter(k_jit, pattern) > 0, lambda: jnp.zeros(pattern.shape, bool)
        )
        n = self.n_pattern
        first = jnp.where(on, pat, fire[:, :n])
        base = jnp.concatenate([first, fire[:, n:]], axis=1)
        return st, (base | noise).astype(dtype)

    def spikes(self, key, n_windows: int, dtype=None):
        """The whole input at once, for studies and tests of small size: ``(spikes (T,
        M), on (n_windows,), pattern (L, n_pattern))`` with ``T = n_windows L``."""
        k_pat, k_sched, k_init, k_run = jax.random.split(key, 4)
        pattern = self.make_pattern(k_pat, dtype)
        on = self.schedule(k_sched, n_windows)
        st = self.init_process(k_init, pattern.dtype)

        def one(st, xs):
            k, o = xs
            return self.window(k, st, pattern, o)

        _, s = jax.lax.scan(one, st, (jax.random.split(k_run, n_windows), on))
        return s.reshape(-1, self.n_afferents), on, pattern


class PulsedSynapses(eqx.Module):
    """Synaptic weights held by devices (M,) and changed only through their pulse
    response, for :func:`detect_pattern`.

    The weight is the noise-free read ``w = (G - g_lo) / (g_hi - g_lo)``. A step's
    asked-for change ``dw`` becomes a whole number of pulses per synapse, by stochastic
    rounding of ``dw / dw_pulse`` (unbiased, as in :class:`.transfer.Coincidence`;
    Gokmen & Vlasov, Front. Neurosci. 10:333, 2016), capped at ``max_pulses`` (a change
    beyond ``max_pulses dw_pulse`` saturates): SET pulses (``v_set``) for a rise, RESET
    pulses (``v_reset``) for a fall, each applied with the device's ``apply_pulse`` (its
    own step, bounds, state dependence and cycle-to-cycle noise). With
    ``abrupt_reset=True`` (a device whose RESET returns it to the bottom, e.g. PCM) a fall
    is one RESET with probability ``|dw| / w``, so that its expected change is the
    asked one (the stochastic-update rule for binary or abrupt devices; Suri et al., IEEE
    TED 60:2402, 2013). Each synapse is driven on its own: no array, no half-select.

    Fields: ``device`` (``xbar.devices.Device`` with a ``program(key, g)`` method, as
    ``devices.PCMStatistical``, or a state variable ``g``, as
    :class:`.transfer.LinearSynapse`); ``g_lo``, ``g_hi`` [S] the conductances of weights
    0 and 1; ``dw_pulse`` the nominal weight step of one pulse; ``v_set``, ``v_reset``
    [V]; ``width_s`` [s]; ``max_pulses``; ``abrupt_reset``.
    """

    device: xbar.devices.Device
    g_lo: float
    g_hi: float
    dw_pulse: float
    v_set: float = 1.0
    v_reset: float = -1.0
    width_s: float = 100e-9
    max_pulses: int = eqx.field(default=4, static=True)
    abrupt_reset: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        if not self.g_hi > self.g_lo:
            raise ValueError(f"need g_lo < g_hi, got {self.g_lo}, {self.g_hi} S")
        if not self.dw_pulse > 0:
            raise ValueError(f"dw_pulse must be positive (weight units), got {self.dw_pulse}")
        if not (isinstance(self.max_pulses, int) and self.max_pulses >= 1):
            raise ValueError(f"max_pulses must be an integer >= 1, got {self.max_pulses!r}")

    def init(self, w0: float, m: int):
        """``m`` device states programmed noise-free to the weight ``w0`` in [0, 1]."""
        g = float(self.g_lo + w0 * (self.g_hi - self.g_lo))
        program = getattr(self.device, "program", None)
        if program is not None:
            return program(None, jnp.full((m,), g))
        if "g" not in self.device.state_defaults():
            raise ValueError(
                f"{type(self.device).__name__} has neither program(key, g) nor a state "
                "variable g; PulsedSynapses cannot set its initial weights"
            )
        # the state class directly: init_state checks values in Python (not under jit)
        values = {k: jnp.full((m,), v) for k, v in self.device.state_defaults().items()}
        return self.device.State(**{**values, "g": jnp.full((m,), g)})

    def weights(self, state) -> Float[Array, " m"]:
        """Noise-free weights of the states (M,)."""
        return (self.device.conductance(state) - self.g_lo) / (self.g_hi - self.g_lo)

    def apply(self, state, dw: Float[Array, " m"], w: Float[Array, " m"], key):
        """Deliver the asked-for change ``dw`` (M,) from weights ``w``: ``(state, number
        of pulses applied)``."""
        k_round, k_pulse = jax.random.split(key)
        x = dw / self.dw_pulse
        r = jax.random.uniform(k_round, x.shape, x.dtype)
        n = jnp.floor(jnp.abs(x)) + (r < jnp.abs(x) - jnp.floor(jnp.abs(x)))
        if self.abrupt_reset:
            p_reset = jnp.abs(dw) / jnp.maximum(w, 1e-6)
            n = jnp.where(dw < 0, (r < p_reset).astype(x.dtype), n)
        n = jnp.minimum(n, self.max_pulses)
        sign = jnp.sign(dw)

        def pulses(state):
            for i, k in enumerate(jax.random.split(k_pulse, self.max_pulses)):
                v = jnp.where(n > i, jnp.where(sign > 0, self.v_set, self.v_reset), 0.0)
                state = self.device.apply_pulse(state, v.astype(x.dtype), self.width_s, k)
            return state

        state = jax.lax.cond(jnp.any(n > 0), pulses, lambda st: st, state)
        return state, jnp.sum(n)


class PatternRun(eqx.Module):
    """Record of :func:`detect_pattern`: ``post`` (T,) output spikes, ``u`` (T,) the
    potential (peak-EPSP units; before the reset in spike steps), ``on`` (n_windows,)
    the pattern schedule, ``w`` (M,) final weights, ``w_mean`` and ``w_pattern`` (n_windows,)
    mean weight of all and of the pattern afferents at the end of each window, ``pattern``
    (L, n_pattern) the pattern; ``pulses`` (n_windows,) device pulses applied per window
    (0 with ideal synapses); ``dt`` [s] and ``pattern_steps``."""

    post: Array
    u: Array
    on: Array
    w: Array
    w_mean: Array
    w_pattern: Array
    pattern: Array
    pulses: Array
    dt: float = eqx.field(static=True)
    pattern_steps: int = eqx.field(static=True)


def detect_pattern(
    key,
    n_windows: int,
    *,
    source: HiddenPattern = HiddenPattern(),
    neuron: SRMNeuron = SRMNeuron(),
    rule: rules.AbstractRule = rules.chain(
        stdp.ReducedNearestSTDP(p_pre_after=0.5), rules.HardBound(0.0, 1.0)
    ),
    w0: float = 0.475,
    synapses: PulsedSynapses | None = None,
) -> PatternRun:
    """One neuron with STDP on all its afferents, driven by ``n_windows`` windows of
    ``source`` (Masquelier, Guyonneau & Thorpe 2008): the SRM neuron of :mod:`.srm`
    (threshold 500 peak EPSPs), the reduced nearest-spike rule with weights clipped to
    [0, 1], all weights starting at ``w0`` (0.475 in the paper). The default rule orders
    a pre and a post spike of the same step at random (``p_pre_after=0.5``, the
    continuous-time expectation): at the 1 ms step either fixed choice biases the rule
    enough to lose the paper's result (docs/learning.md). Ideal synapses (default): the
    weights change by the asked-for amount; with ``synapses`` they are device states
    changed by pulses (:class:`PulsedSynapses`). One ``lax.scan`` over windows, each a scan
    over its steps (input generated on the fly, so memory stays O(M L)). Returns a
    :class:`PatternRun`; score it with :func:`pattern_scores`."""
    dt = source.dt
    k_pat, k_sched, k_init, k_run = jax.random.split(key, 4)
    pattern = source.make_pattern(k_pat)
    dtype = pattern.dtype
    on = source.schedule(k_sched, n_windows)
    m, n_pat = source.n_afferents, source.n_pattern
    w = jnp.full((m,), w0, dtype)
    dev = None if synapses is None else synapses.init(w0, m)
    if synapses is not None:
        w = synapses.weights(dev).astype(dtype)
    carry = (source.init_process(k_init, dtype), neuron.init_state((1,), dtype))
    carry = carry + (rule.init((m, 1), dtype), w, dev)

    def window(c, xs):
        proc, neu, rs, w, dev = c
        k, o = xs
        k_in, k_rule = jax.random.split(k)
        proc, spikes = source.window(k_in, proc, pattern, o)

        def step(c, ys):
            neu, rs, w, dev, n_p = c
            pre, kr = ys
            neu, z, u = neuron.step(neu, (pre @ w)[None], dt)
            k_ord, k_dev = (kr, None) if synapses is None else jax.random.split(kr)
            dw, rs = rule.update(None, rs, pre, z, dt, weights=w[:, None], key=k_ord)
            if synapses is None:
                w = w + dw[:, 0]
            else:
                dev, n = synapses.apply(dev, dw[:, 0], w, k_dev)
                w, n_p = synapses.weights(dev).astype(w.dtype), n_p + n
            return (neu, rs, w, dev, n_p), (z[0] > 0, u[0])

        ks = jax.random.split(k_rule, spikes.shape[0])
        c0 = (neu, rs, w, dev, jnp.zeros((), dtype))
        (neu, rs, w, dev, n_p), (z, u) = jax.lax.scan(step, c0, (spikes, ks))
        return (proc, neu, rs, w, dev), (z, u, jnp.mean(w), jnp.mean(w[:n_pat]), n_p)

    keys = jax.random.split(k_run, n_windows)
    (_, _, _, w, _), (z, u, wm, wp, n_p) = jax.lax.scan(window, carry, (keys, on))
    return PatternRun(
        post=z.reshape(-1),
        u=u.reshape(-1),
        on=on,
        w=w,
        w_mean=wm,
        w_pattern=wp,
        pattern=pattern,
        pulses=n_p,
        dt=dt,
        pattern_steps=source.pattern_steps,
    )


class PatternScores(eqx.Module):
    """The criteria of Masquelier et al. (2008) over a span of a run: ``hit_rate``
    (fraction of pattern presentations with at least one output spike inside the
    window), ``false_alarm_hz`` (output spikes outside pattern windows per second of
    non-pattern time), ``latency_s`` (mean time from the pattern's start to the first
    output spike, over hits), ``n_presentations``, ``rate_hz`` (output rate)."""

    hit_rate: Array
    false_alarm_hz: Array
    latency_s: Array
    n_presentations: Array
    rate_hz: Array


def window_latencies(run: PatternRun):
    """Per window: ``(first spike step in the window or -1, spike count)``."""
    z = run.post.reshape(-1, run.pattern_steps)
    count = jnp.sum(z, axis=1)
    first = jnp.where(count > 0, jnp.argmax(z, axis=1), -1)
    return first, count


def pattern_scores(run: PatternRun, first_window: int = 0, last_window: int | None = None):
    """:class:`PatternScores` over windows ``[first_window, last_window)`` (the paper
    scores the last 150 s)."""
    first, count = window_latencies(run)
    sl = slice(first_window, last_window)
    on, first, count = run.on[sl], first[sl], count[sl]
    win_s = run.pattern_steps * run.dt
    hits = on & (count > 0)
    n_on = jnp.sum(on)
    hit_rate = jnp.sum(hits) / jnp.maximum(n_on, 1)
    off_time = jnp.sum(~on) * win_s
    fa = jnp.sum(jnp.where(on, 0, count)) / jnp.maximum(off_time, win_s)
    lat = jnp.sum(jnp.where(hits, first, 0)) / jnp.maximum(jnp.sum(hits), 1) * run.dt
    rate = jnp.sum(count) / (on.shape[0] * win_s)
    return PatternScores(hit_rate, fa, lat, n_on, rate)
