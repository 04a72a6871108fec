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
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
from xbar.networks.wta import AdaptiveLIF, WTALayer

import xbar

from . import rules, stdp, transfer

__all__ = [
    "LearningStats",
    "WTATrainer",
    "assign_labels",
    "hidden_pattern",
    "predict",
    "train_pattern_neuron",
]


class LearningStats(eqx.Module):
    """Asked-for vs delivered statistics over the learning events (sums over synapses
    and events): ``asked_sum``, ``delivered_sum``, ``asked_abs``, ``err_sq`` (sum of
    ``(delivered - asked)^2``), ``n`` (synapse-events with a nonzero request), ``pulses``,
    ``energy_j``, ``time_s``; ``refresh_pulses``, ``refresh_energy_j``, ``refreshes``: the
    pair refreshes of :meth:`WTATrainer.train` (0 without)."""

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

    @classmethod
    def zeros(cls, dtype):
        z = jnp.zeros((), dtype)
        return cls(z, z, z, z, z, z, z, z, z, z, z, z)

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


def hidden_pattern(
    key,
    n_in: int = 200,
    n_steps: int = 20000,
    pattern_steps: int = 50,
    p_spike: float = 0.02,
    n_pattern_inputs: int | None = None,
    every: int = 4,
):
    """Input of the pattern-detection experiment (Masquelier, Guyonneau & Thorpe, PLoS ONE
    3:e1377, 2008, Fig. 1): ``n_in`` Poisson afferents firing with probability ``p_spike``
    per step; one frozen segment of ``pattern_steps`` steps of the first ``n_pattern_inputs``
    afferents (default half) is pasted into the stream at the start of a random one of
    every ``every`` consecutive windows of ``pattern_steps`` steps, so the pattern has the
    same rates as the noise and is invisible in them. Returns ``(spikes (T, n_in),
    in_pattern (T,))``."""
    n_pat = n_in // 2 if n_pattern_inputs is None else n_pattern_inputs
    k_bg, k_pat, k_pos = jax.random.split(key, 3)
    spikes = (jax.random.uniform(k_bg, (n_steps, n_in)) < p_spike).astype(float)
    pattern = (jax.random.uniform(k_pat, (pattern_steps, n_pat)) < p_spike).astype(float)
    n_win = n_steps // pattern_steps
    win = jnp.arange(n_win)
    # one window in each group of `every` carries the pattern (never two in a row)
    pick = jax.random.randint(k_pos, (n_win // every + 1,), 0, every - 1)
    chosen = (win % every) == pick[win // every]
    in_pattern = jnp.repeat(chosen, pattern_steps)
    in_pattern = jnp.pad(in_pattern, (0, n_steps - in_pattern.shape[0]))
    tiled = jnp.tile(pattern, (n_win, 1))
    tiled = jnp.pad(tiled, ((0, n_steps - tiled.shape[0]), (0, 0)))
    spikes = spikes.at[:, :n_pat].set(jnp.where(in_pattern[:, None], tiled, spikes[:, :n_pat]))
    return spikes, in_pattern


def train_pattern_neuron(
    spikes, neuron, rule: rules.AbstractRule, w0, *, gain: float, dt: float = 1e-3
):
    """One neuron (any ``xbar.networks`` spiking neuron with ``step``) driven by ``spikes``
    (T, M) through plastic weights ``w0`` (M,) that follow ``rule`` (ideal synapses);
    returns ``(w, post (T,))``."""
    m = spikes.shape[1]
    st0 = neuron.init_state((1,), spikes.dtype)
    rs0 = rule.init((m, 1), spikes.dtype)

    def step(c, pre):
        w, st, rs = c
        st, z = neuron.step(st, gain * (pre @ w)[None], dt)
        dw, rs = rule.update(None, rs, pre, z, dt, weights=w[:, None])
        return (w + dw[:, 0], st, rs), z[0]

    (w, _, _), post = jax.lax.scan(step, (jnp.asarray(w0, spikes.dtype), st0, rs0), spikes)
    return w, post
