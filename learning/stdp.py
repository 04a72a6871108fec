"""Spike-timing-dependent plasticity (STDP) rules with synaptic traces.

All rules follow :mod:`.rules` (pure ``init`` / ``update``, the trace convention there)
and ask for a weight change in weight units; none changes a weight itself.

Pair-based STDP (Bi & Poo, J. Neurosci. 18:10464, 1998; Song, Miller & Abbott, Nat.
Neurosci. 3:919, 2000). For a pre spike at ``t_pre`` and a post spike at ``t_post``,
``dt = t_post - t_pre``::

    dW = +A_plus  exp(-dt / tau_plus)     dt > 0 (pre before post: potentiation)
    dW = -A_minus exp(+dt / tau_minus)    dt < 0 (post before pre: depression)

realised with a presynaptic trace ``x`` (time constant ``tau_plus``) and a postsynaptic
trace ``y`` (``tau_minus``): at a post spike ``dW_ij += A_plus x_i``, at a pre spike
``dW_ij -= A_minus y_j``. All-to-all interaction adds 1 to a trace per spike (every pair
counts); nearest-spike interaction sets it to 1 (only the latest spike of the other
side counts) (Morrison, Diesmann & Gerstner, Biol. Cybern. 98:459, 2008, Eqs. 5-6 and
section 4.1.2).

Reduced nearest-spike interaction (Morrison, Diesmann & Gerstner 2008, section 4.1.2,
the "reduced symmetric" scheme; the rule of Masquelier, Guyonneau & Thorpe, PLoS ONE
3:e1377, 2008, identified as such by Hathway & Goodman, ReScience 4(1):6, 2018): a post
spike potentiates a synapse with its latest pre spike only if no other post spike came
between them, and a pre spike depresses with the latest post spike only if it is the
first pre spike since that post spike. Potentiation and depression of one synapse
therefore alternate. With a presynaptic rate far above the postsynaptic one the plain
nearest-spike rule depresses at every pre spike and silences the neuron; this one
does not (Hathway & Goodman 2018).

Triplet STDP (Pfister & Gerstner, J. Neurosci. 26:9673, 2006, Eqs. 2-3): two pre traces
``r1`` (``tau_plus``), ``r2`` (``tau_x``) and two post traces ``o1`` (``tau_minus``),
``o2`` (``tau_y``)::

    post spike:  dW += r1 (A2_plus + A3_plus o2(t - eps))
    pre spike:   dW -= o1 (A2_minus + A3_minus r2(t - eps))

(``t - eps``: the trace before the present spike is added, which the trace convention
of :mod:`.rules` gives).

Stochastic STDP for binary (abruptly switching) devices: a synapse has two levels;
a post spike sends every synapse a SET pulse of amplitude ``v_set`` whose width is the
presynaptic trace times ``width_s`` (a nearest-spike trace in ``[0, 1]``), a pre spike a
RESET pulse of width ``width_s`` times the postsynaptic trace; the device switches with
the probability of its stochastic switching law, ``P_sw(V, t_p)`` (``devices.
PoissonSwitching``: ``1 - exp(-t_p / tau(V))``, Gaba et al., Nanoscale 5:5872, 2013;
``devices.LognormalSwitching``, Medeiros-Ribeiro et al., Nanotechnology 22:095702,
2011). The switching probability thus falls with ``|t_post - t_pre|`` as in the
stochastic STDP of binary memristive synapses (Suri et al., IEEE TED 60:2402, 2013;
Bill & Legenstein, Front. Neurosci. 8:412, 2014).

Three-factor (reward-modulated) STDP (Izhikevich, Cereb. Cortex 17:2443, 2007, Eqs. 1-2;
Fremaux & Gerstner, Front. Neural Circuits 9:85, 2016): the pair-STDP change is not
applied but accumulated in an eligibility trace ``e`` (time constant ``tau_e``), and the
weight change is ``lr * reward * e`` per step (``reward`` the third factor, e.g.
dopamine relative to baseline, dimensionless).

Post-triggered STDP with a target trace (Diehl & Cook, Front. Comput. Neurosci. 9:99,
2015, Eq. 3 without the weight dependence, which :class:`.rules.SoftBound` adds): at a
post spike ``dW_ij += eta_post (x_i - x_target)``; at a pre spike ``dW_ij -= eta_pre y_j``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from xbar import devices

from .rules import AbstractRule, _check_spikes, add, decay

__all__ = [
    "DiehlCookSTDP",
    "PairSTDP",
    "PairTraces",
    "ReducedNearestSTDP",
    "ReducedTraces",
    "RewardModulatedSTDP",
    "StochasticSTDP",
    "TripletSTDP",
    "TripletTraces",
]


def _positive(name, value, unit="s"):
    if isinstance(value, (int, float)) and not value > 0:
        raise ValueError(f"{name} must be positive [{unit}], got {value}")


def _nonneg(name, value):
    if isinstance(value, (int, float)) and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _bump(trace, spikes, nearest: bool):
    """Add this step's spikes to a (decayed) trace: +1 (all-to-all) or set to 1
    (nearest-spike)."""
    if nearest:
        return jnp.where(spikes > 0, jnp.ones_like(trace), trace)
    return trace + spikes


class PairTraces(eqx.Module):
    """Traces of pair-based STDP: presynaptic ``x`` (M,) and postsynaptic ``y`` (N,)."""

    x: Float[Array, " m"]
    y: Float[Array, " n"]


class PairSTDP(AbstractRule):
    """Pair-based STDP with traces (module docstring).

    Fields:
        a_plus, a_minus: amplitudes of potentiation and depression [weight units].
            Defaults 0.01 and 0.0105 (Song, Miller & Abbott 2000: A_minus / A_plus = 1.05).
        tau_plus, tau_minus: trace time constants [s]. Default 20 ms (Song et al. 2000;
            Bi & Poo 1998 fit about 17 and 34 ms).
        nearest: nearest-spike interaction (True) or all-to-all (False, default).
    """

    a_plus: float = 0.01
    a_minus: float = 0.0105
    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    nearest: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        _positive("tau_plus", self.tau_plus)
        _positive("tau_minus", self.tau_minus)
        _nonneg("a_plus", self.a_plus)
        _nonneg("a_minus", self.a_minus)

    def init(self, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        return PairTraces(x=jnp.zeros((shape[0],), dtype), y=jnp.zeros((shape[1],), dtype))

    def asked(self, state: PairTraces, pre, post, dt):
        """Decayed traces and this step's change ``A+ x (x) post - A- pre (x) y``."""
        x = state.x * decay(dt, self.tau_plus)
        y = state.y * decay(dt, self.tau_minus)
        dw = self.a_plus * x[:, None] * post[None, :] - self.a_minus * pre[:, None] * y[None, :]
        return dw, x, y

    def factors(self, state: PairTraces, pre, post, dt):
        """This step's change as outer products, ``(rows (2, M), cols (2, N))`` with
        ``rows.T @ cols`` equal to it (for :func:`xbar.learning.deliver`)."""
        x = state.x * decay(dt, self.tau_plus)
        y = state.y * decay(dt, self.tau_minus)
        return jnp.stack([x, pre]), jnp.stack([self.a_plus * post, -self.a_minus * y])

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        pre, post = _check_spikes(pre, post, (state.x.shape[-1], state.y.shape[-1]))
        change, x, y = self.asked(state, pre, post, dt)
        new = PairTraces(x=_bump(x, pre, self.nearest), y=_bump(y, post, self.nearest))
        return add(dw, change), new


class ReducedTraces(eqx.Module):
    """State of :class:`ReducedNearestSTDP`: nearest-spike traces ``x`` (M,) and ``y``
    (N,), and ``last`` (M, N), the latest event of each synapse's pair: +1 a pre spike
    (not yet paired with a post spike), -1 a post spike (not yet paired with a pre
    spike), 0 neither (no spike yet, or a pre and a post spike in the same step)."""

    x: Float[Array, " m"]
    y: Float[Array, " n"]
    last: Float[Array, "m n"]


class ReducedNearestSTDP(AbstractRule):
    """Pair STDP with the reduced nearest-spike interaction (module docstring)::

        post spike at t:  dW_ij += A_plus  exp(-(t - t_pre_i) / tau_plus)   if last_ij = +1
        pre spike at t:   dW_ij -= A_minus exp(-(t - t_post_j) / tau_minus) if last_ij = -1

    with ``t_pre_i`` (``t_post_j``) the latest pre (post) spike before ``t``.

    A pre and a post spike in the same step: with ``p_pre_after = None`` (default) they
    do not interact (the trace convention of :mod:`.rules`) and leave ``last = 0``
    (neither is paired later). Otherwise they are ordered, the pre spike after the post
    spike with probability ``p_pre_after`` (independently per synapse; a ``key`` is
    needed when it is strictly between 0 and 1) and paired at ``dt = 0``: post first,
    the post potentiates with the pending pre spike and the pre is depressed by
    ``A_minus``; pre first, the pre is depressed by the pending post spike and the post
    potentiates it by ``A_plus``. ``p_pre_after = 0.5`` is the continuous-time
    expectation when the order of two spikes in one step is unknown; a fixed order
    biases the rule (Hathway & Goodman 2018 found all weights potentiated at a 1 ms step
    when same-step pairs all count as pre before post).

    Defaults: Masquelier, Guyonneau & Thorpe (2008), Methods: ``a_plus = 2^-5``,
    ``a_minus = 0.85 a_plus``, ``tau_plus`` 16.8 ms, ``tau_minus`` 33.7 ms. Additive; add
    :class:`.rules.HardBound` for the paper's weights clipped to [0, 1]."""

    a_plus: float = 2.0**-5
    a_minus: float = 0.85 * 2.0**-5
    tau_plus: float = 16.8e-3
    tau_minus: float = 33.7e-3
    p_pre_after: float | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        _positive("tau_plus", self.tau_plus)
        _positive("tau_minus", self.tau_minus)
        _nonneg("a_plus", self.a_plus)
        _nonneg("a_minus", self.a_minus)
        p = self.p_pre_after
        if p is not None and not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise ValueError(f"p_pre_after must be None or in [0, 1], got {p!r}")

    def init(self, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        m, n = shape
        return ReducedTraces(
            x=jnp.zeros((m,), dtype), y=jnp.zeros((n,), dtype), last=jnp.zeros((m, n), dtype)
        )

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        pre, post = _check_spikes(pre, post, (state.x.shape[-1], state.y.shape[-1]))
        x = state.x * decay(dt, self.tau_plus)
        y = state.y * decay(dt, self.tau_minus)
        pre_c, post_r = pre[:, None] > 0, post[None, :] > 0
        last = state.last
        # the latest event of each pair: a pre spike (+1), else a post spike (-1)
        new_last = jnp.where(pre_c, 1.0, jnp.where(post_r, -1.0, last))
        if self.p_pre_after is None:
            ltp = jnp.where(post_r & (last > 0), self.a_plus * x[:, None], 0.0)
            ltd = jnp.where(pre_c & (last < 0), self.a_minus * y[None, :], 0.0)
            new_last = jnp.where(pre_c & post_r, 0.0, new_last)
        else:
            both = pre_c & post_r
            p = self.p_pre_after
            if p in (0.0, 1.0):
                after = both & (p == 1.0)
            else:
                if key is None:
                    raise ValueError("ReducedNearestSTDP with 0 < p_pre_after < 1 needs a key")
                after = both & (jax.random.uniform(key, last.shape, x.dtype) < p)
            before = both & ~after
            # post first: the post pairs with the pending pre, the pre with the post at
            # dt = 0; pre first: the pre pairs with the pending post, the post with it
            ltp_ok = post_r & (((last > 0) & ~before) | before)
            ltd_ok = pre_c & (((last < 0) & ~after) | after)
            ltp = jnp.where(ltp_ok, self.a_plus * jnp.where(before, 1.0, x[:, None]), 0.0)
            ltd = jnp.where(ltd_ok, self.a_minus * jnp.where(after, 1.0, y[None, :]), 0.0)
            new_last = jnp.where(before, -1.0, new_last)
        last = new_last.astype(state.last.dtype)
        new = ReducedTraces(x=_bump(x, pre, True), y=_bump(y, post, True), last=last)
        return add(dw, (ltp - ltd).astype(x.dtype)), new


class TripletTraces(eqx.Module):
    """Traces of triplet STDP: pre ``r1, r2`` (M,), post ``o1, o2`` (N,)."""

    r1: Float[Array, " m"]
    r2: Float[Array, " m"]
    o1: Float[Array, " n"]
    o2: Float[Array, " n"]


class TripletSTDP(AbstractRule):
    """Triplet STDP of Pfister & Gerstner (2006) (module docstring).

    Defaults: the all-to-all fit to visual-cortex data in Pfister & Gerstner (2006),
    Table 4 (``tau_plus`` 16.8 ms, ``tau_minus`` 33.7 ms, ``tau_x`` 101 ms, ``tau_y``
    125 ms, ``A2+`` 5e-10, ``A3+`` 6.2e-3, ``A2-`` 7e-3, ``A3-`` 2.3e-4; UNCONFIRMED
    against the printed table: values as restated in later reimplementations).
    ``nearest``: traces set to 1 at a spike instead of incremented (the paper's
    nearest-spike variant).
    """

    a2_plus: float = 5e-10
    a3_plus: float = 6.2e-3
    a2_minus: float = 7e-3
    a3_minus: float = 2.3e-4
    tau_plus: float = 16.8e-3
    tau_minus: float = 33.7e-3
    tau_x: float = 101e-3
    tau_y: float = 125e-3
    nearest: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        for name in ("tau_plus", "tau_minus", "tau_x", "tau_y"):
            _positive(name, getattr(self, name))
        for name in ("a2_plus", "a3_plus", "a2_minus", "a3_minus"):
            _nonneg(name, getattr(self, name))

    def init(self, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        m, n = shape
        z = jnp.zeros
        return TripletTraces(
            r1=z((m,), dtype), r2=z((m,), dtype), o1=z((n,), dtype), o2=z((n,), dtype)
        )

    def factors(self, state: TripletTraces, pre, post, dt):
        """This step's change as outer products ``(rows (2, M), cols (2, N))``."""
        r1 = state.r1 * decay(dt, self.tau_plus)
        r2 = state.r2 * decay(dt, self.tau_x)
        o1 = state.o1 * decay(dt, self.tau_minus)
        o2 = state.o2 * decay(dt, self.tau_y)
        rows = jnp.stack([r1, pre * (self.a2_minus + self.a3_minus * r2)])
        return rows, jnp.stack([post * (self.a2_plus + self.a3_plus * o2), -o1])

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        pre, post = _check_spikes(pre, post, (state.r1.shape[-1], state.o1.shape[-1]))
        r1 = state.r1 * decay(dt, self.tau_plus)
        r2 = state.r2 * decay(dt, self.tau_x)
        o1 = state.o1 * decay(dt, self.tau_minus)
        o2 = state.o2 * decay(dt, self.tau_y)
        pot = r1[:, None] * (post * (self.a2_plus + self.a3_plus * o2))[None, :]
        dep = (pre * (self.a2_minus + self.a3_minus * r2))[:, None] * o1[None, :]
        nb = self.nearest
        new = TripletTraces(
            r1=_bump(r1, pre, nb),
            r2=_bump(r2, pre, nb),
            o1=_bump(o1, post, nb),
            o2=_bump(o2, post, nb),
        )
        return add(dw, pot - dep), new


class StochasticSTDP(AbstractRule):
    """Stochastic STDP for binary devices (module docstring). Asks for full switches:
    ``(w_high - w)`` where a SET pulse switches, ``-(w - w_low)`` where a RESET does.

    Fields:
        law: the device's switching law (``devices.PoissonSwitching`` or
            ``devices.LognormalSwitching``).
        v_set, v_reset: pulse amplitudes [V] (the law uses ``|V|``).
        width_s: width of a pulse sent at a trace value of 1 [s].
        tau_plus, tau_minus: time constants of the (nearest-spike) traces [s].
        w_low, w_high: the two weight levels [weight units].

    Needs ``weights`` (the present levels) and a ``key``.
    """

    law: devices.PoissonSwitching | devices.LognormalSwitching = devices.PoissonSwitching()
    v_set: float = 1.0
    v_reset: float = -1.0
    width_s: float = 100e-9
    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    w_low: float = 0.0
    w_high: float = 1.0

    def __check_init__(self):
        _positive("width_s", self.width_s)
        _positive("tau_plus", self.tau_plus)
        _positive("tau_minus", self.tau_minus)
        if not self.w_high > self.w_low:
            raise ValueError(f"w_high ({self.w_high}) must exceed w_low ({self.w_low})")

    def init(self, shape, dtype=None):
        return PairSTDP(nearest=True).init(shape, dtype)

    def probabilities(self, state: PairTraces, pre, post, dt):
        """Switching probabilities ``(p_set, p_reset)`` of this step, each ``(M, N)``, and
        the decayed traces."""
        x = state.x * decay(dt, self.tau_plus)
        y = state.y * decay(dt, self.tau_minus)
        tiny = jnp.finfo(x.dtype).tiny
        w_set = jnp.maximum(self.width_s * x, tiny)
        w_reset = jnp.maximum(self.width_s * y, tiny)
        p_set = jnp.where(x > 0, self.law.probability(self.v_set, w_set), 0.0)
        p_reset = jnp.where(y > 0, self.law.probability(self.v_reset, w_reset), 0.0)
        return p_set[:, None] * post[None, :], pre[:, None] * p_reset[None, :], x, y

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        pre, post = _check_spikes(pre, post, (state.x.shape[-1], state.y.shape[-1]))
        if key is None:
            raise ValueError("StochasticSTDP.update needs a key (key=None given)")
        if weights is None:
            raise ValueError("StochasticSTDP.update needs the present weights (weights=None)")
        w = jnp.asarray(weights)
        p_set, p_reset, x, y = self.probabilities(state, pre, post, dt)
        k_set, k_reset = jax.random.split(key)
        up = jax.random.uniform(k_set, p_set.shape, p_set.dtype) < p_set
        down = jax.random.uniform(k_reset, p_reset.shape, p_reset.dtype) < p_reset
        change = jnp.where(up, self.w_high - w, 0.0) - jnp.where(down, w - self.w_low, 0.0)
        new = PairTraces(x=_bump(x, pre, True), y=_bump(y, post, True))
        return add(dw, change), new


class RewardState(eqx.Module):
    """State of :class:`RewardModulatedSTDP`: pair traces and eligibility ``e`` (M, N)."""

    traces: PairTraces
    eligibility: Float[Array, "m n"]


class RewardModulatedSTDP(AbstractRule):
    """Three-factor STDP with an eligibility trace (module docstring).

    Fields:
        stdp: the pair rule whose change feeds the eligibility trace.
        tau_e: eligibility time constant [s]. Default 1 s (Izhikevich 2007: tau_c = 1 s).
        lr: learning rate [-].

    ``reward`` (scalar or broadcastable to ``(N,)``, dimensionless) at each step; None
    counts as 0.
    """

    stdp: PairSTDP = PairSTDP()
    tau_e: float = 1.0
    lr: float = 1.0

    def __check_init__(self):
        _positive("tau_e", self.tau_e)

    def init(self, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        return RewardState(self.stdp.init(shape, dtype), jnp.zeros(tuple(shape), dtype))

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        stdp_dw, traces = self.stdp.update(None, state.traces, pre, post, dt)
        e = state.eligibility * decay(dt, self.tau_e) + stdp_dw
        r = 0.0 if reward is None else jnp.asarray(reward)
        return add(dw, self.lr * r * e), RewardState(traces, e)


class DiehlCookSTDP(AbstractRule):
    """Post-triggered STDP with a presynaptic target trace (Diehl & Cook 2015, Eq. 3;
    module docstring).

    Fields:
        eta_post: learning rate at a post spike [weight units]. Default 0.01 (Diehl &
            Cook 2015, Table/Methods: eta_post = 0.01).
        eta_pre: learning rate of the pre-triggered depression [weight units]. Default
            1e-4 (Diehl & Cook 2015: eta_pre = 0.0001).
        x_target: target value of the presynaptic trace [-] (the offset that depresses
            synapses from inputs that were silent before a post spike).
        tau_pre, tau_post: trace time constants [s]. Default 20 ms (Diehl & Cook 2015).
        nearest: traces set to 1 at a spike (default True, so ``x`` stays in [0, 1] and
            the target is comparable with it).
    """

    eta_post: float = 0.01
    eta_pre: float = 1e-4
    x_target: float = 0.4
    tau_pre: float = 20e-3
    tau_post: float = 20e-3
    nearest: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        _positive("tau_pre", self.tau_pre)
        _positive("tau_post", self.tau_post)
        _nonneg("eta_post", self.eta_post)
        _nonneg("eta_pre", self.eta_pre)

    def init(self, shape, dtype=None):
        return PairSTDP().init(shape, dtype)

    def factors(self, state: PairTraces, pre, post, dt):
        """This step's change as outer products ``(rows (2, M), cols (2, N))``."""
        x = state.x * decay(dt, self.tau_pre)
        y = state.y * decay(dt, self.tau_post)
        rows = jnp.stack([x - self.x_target, pre])
        return rows, jnp.stack([self.eta_post * post, -self.eta_pre * y])

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        pre, post = _check_spikes(pre, post, (state.x.shape[-1], state.y.shape[-1]))
        x = state.x * decay(dt, self.tau_pre)
        y = state.y * decay(dt, self.tau_post)
        change = self.eta_post * (x - self.x_target)[:, None] * post[None, :]
        change = change - self.eta_pre * pre[:, None] * y[None, :]
        new = PairTraces(x=_bump(x, pre, self.nearest), y=_bump(y, post, self.nearest))
        return add(dw, change), new
