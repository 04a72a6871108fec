"""Unsupervised STDP in a competitive layer: digits learned from spikes alone (small, fast
version with a loose bound; the full study is in notebook 07), and a neuron that finds a
repeating spike pattern hidden in noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import load_digits, rules, stdp, transfer
from xbar.learning import unsupervised as u

import xbar
from xbar import networks


def _data(n_train, n_test):
    tr, te = load_digits()
    x = jnp.asarray(tr.x, jnp.float32).reshape(len(tr.y), -1)[:n_train]
    xt = jnp.asarray(te.x, jnp.float32).reshape(len(te.y), -1)[:n_test]
    return x / x.max(), jnp.asarray(tr.y)[:n_train], xt / xt.max(), jnp.asarray(te.y)[:n_test]


def test_labels_and_prediction_rules():
    counts = jnp.array([[3.0, 0, 0], [0, 2, 0], [1, 0, 0]])
    y = jnp.array([0, 1, 0])
    lab = u.assign_labels(counts, y, 3)
    assert lab.tolist() == [0, 1, -1]
    assert u.predict(jnp.array([[0.0, 5, 9], [4, 1, 9]]), lab, 3).tolist() == [1, 0]


def test_competitive_stdp_learns_digits_ideal_and_on_devices():
    x, y, xt, yt = _data(600, 200)
    trainer = u.WTATrainer()
    key = jax.random.PRNGKey(0)
    w0 = jax.random.uniform(key, (64, 40), jnp.float32, 0.1, 0.4)
    w, theta, st = jax.jit(trainer.train)(key, x, w0)
    lab = u.assign_labels(trainer.responses(key, x, w, theta), y, 10)
    acc = float(jnp.mean(u.predict(trainer.responses(key, xt, w, theta), lab, 10) == yt))
    assert acc > 0.5  # chance is 0.1; the full run (100 neurons, all images) reaches ~0.8
    # receptive fields: the weights move towards the mean image of the neuron's class
    assert float(st.n) > 0
    # the same network on ideal linear device synapses through the pulse scheme
    dev = transfer.LinearSynapse(dg=0.25e-6, g_ini=12.5e-6)
    mapping = xbar.ReferenceMapping(g_min=0.0, g_max=25e-6, w_max=1.0)
    w_init = 0.25 * jnp.ones((64, 20))
    xb = xbar.Crossbar.create(
        dev,
        (64, 20),
        mapping=mapping,
        wiring=xbar.Wiring.ideal(),
        state=dev.State(g=mapping.to_conductance(w_init)),
    )
    scheme = transfer.Coincidence(dw_pulse=0.02, v_set=1.0, v_reset=-1.0, n_slots=2)
    xb2, theta2, st2 = jax.jit(
        lambda k, a: trainer.train(k, a, jnp.zeros((64, 20)), xb=xb, scheme=scheme)
    )(key, x[:200])
    assert float(st2.pulses) > 0 and float(st2.energy_j) > 0
    # delivered follows asked on the ideal device: same sign of the total, similar size
    ratio = float(st2.delivered_sum / st2.asked_sum)
    assert 0.5 < ratio < 1.5
    w2 = xb2.weights()
    assert bool(jnp.all(jnp.isfinite(w2))) and float(jnp.std(w2)) > 0.01


def test_hidden_pattern_repeats_exactly_and_is_invisible_in_the_rates():
    # Masquelier, Guyonneau & Thorpe (2008): a repeating 50-step pattern of half of 200
    # afferents, with the noise's rates, pasted into a quarter of the time
    t = 20000
    spikes, in_pat = u.hidden_pattern(jax.random.PRNGKey(0), n_steps=t)
    s, q = np.asarray(spikes), np.asarray(in_pat)
    assert abs(q.mean() - 0.25) < 0.01
    starts = np.flatnonzero(np.diff(np.r_[0, q.astype(int)]) == 1)
    first = s[starts[0] : starts[0] + 50, :100]
    for k in starts[1:]:
        np.testing.assert_array_equal(s[k : k + 50, :100], first)
    # same mean rate inside and outside the pattern (binomial error over the samples)
    p_in, p_out = s[q].mean(), s[~q].mean()
    assert abs(p_in - 0.02) < 4 * np.sqrt(0.02 / s[q].size) + 0.002
    assert abs(p_out - 0.02) < 4 * np.sqrt(0.02 / s[~q].size)


def test_pattern_neuron_loop_matches_the_rule_on_a_silent_neuron():
    # without output spikes the post trace stays 0 and pair STDP asks for nothing: the
    # weights stay put; with a strong drive the neuron fires and the weights move
    spikes, _ = u.hidden_pattern(jax.random.PRNGKey(1), n_in=20, n_steps=500)
    rule = rules.chain(stdp.PairSTDP(), rules.HardBound(0.0, 1.0))
    neuron = networks.LIF(tau=10e-3, r=1.0, v_threshold=1.0, v_reset=0.0)
    w, post = u.train_pattern_neuron(spikes, neuron, rule, jnp.full((20,), 0.5), gain=1e-3)
    assert float(post.sum()) == 0.0
    np.testing.assert_allclose(w, 0.5, atol=1e-15)
    w, post = u.train_pattern_neuron(spikes, neuron, rule, jnp.full((20,), 0.5), gain=50.0)
    assert float(post.sum()) > 0 and not np.allclose(w, 0.5)


def test_pair_refresh_keeps_the_weights_and_frees_the_window():
    # SET-only differential pairs climb to the top of their window; a refresh re-programs
    # both devices of each pair to their difference (Bichler et al. 2012, Boybat et al.
    # 2018): the weight is kept (within the programming tolerance), one device returns to
    # g_min. Without post spikes (gain 0) nothing but the refreshes acts.
    dev = transfer.LinearSynapse(dg=0.1e-6, g_ini=12.5e-6)
    mapping = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
    key = jax.random.PRNGKey(3)
    g = jax.random.uniform(key, (8, 10), jnp.float32, 15e-6, 24e-6)  # both devices high
    xb = xbar.Crossbar.create(
        dev, (8, 5), mapping=mapping, wiring=xbar.Wiring.ideal(), state=dev.State(g=g)
    )
    w_before = xb.weights()
    trainer = u.WTATrainer(rule=stdp.DiehlCookSTDP(eta_post=0.1, eta_pre=0.0), gain=0.0, n_steps=5)
    refresh = xbar.WriteVerify(
        v_set0=1.0, v_set_step=0.0, v_set_max=1.0, v_reset0=-1.0, v_reset_step=0.0,
        v_reset_max=1.0, max_pulses=300, tol=0.01,
    )  # fmt: skip
    scheme = transfer.Coincidence(dw_pulse=0.004, v_set=1.0, set_only=True)
    x = jnp.ones((4, 8), jnp.float32)
    xb2, _, st = jax.jit(
        lambda k: trainer.train(
            k, x, jnp.zeros((8, 5)), xb=xb, scheme=scheme, refresh=refresh, refresh_every=2
        )
    )(key)
    assert int(st.refreshes) == 2 and int(st.pulses) == 0 and int(st.refresh_pulses) > 0
    assert float(st.refresh_energy_j) > 0
    np.testing.assert_allclose(xb2.weights(), w_before, atol=0.011 * 2)
    gp, gm = np.asarray(xb2.conductances()).reshape(8, 5, 2).transpose(2, 0, 1)
    np.testing.assert_allclose(np.minimum(gp, gm), 0.0, atol=0.011 * 25e-6)
    assert np.max(np.maximum(gp, gm)) < np.max(np.asarray(g)) - 5e-6
    with pytest.raises(ValueError, match="refresh_every"):
        trainer.train(key, x, jnp.zeros((8, 5)), xb=xb, scheme=scheme, refresh=refresh)


@pytest.mark.slow
def test_refreshed_pcm_pairs_learn_digits_where_unrefreshed_ones_run_away():
    # physical PCM SET-only pairs (notebook 07, section 4): the partial-SET step grows with
    # G, so without refresh the pairs climb out of their window (chance accuracy); with a
    # write-verify refresh every 5 images they learn (0.32 at this size, ideal 0.64)
    x, y, xt, yt = _data(300, 360)
    x, xt = x.astype(jnp.float64), xt.astype(jnp.float64)
    pcm = xbar.devices.PCM()
    n = 30
    u_plus = jax.random.uniform(jax.random.PRNGKey(4), (64, n), minval=14e-9, maxval=22e-9)
    u_a = jnp.stack([u_plus, jnp.full((64, n), 22e-9)], -1).reshape(64, 2 * n)
    xb = xbar.Crossbar.create(
        pcm,
        (64, n),
        mapping=xbar.DifferentialMapping(g_min=2e-6, g_max=12e-6),
        wiring=xbar.Wiring.ideal(),
        state=pcm.init_state((64, 2 * n), u_a=u_a),
    )
    scheme = transfer.Coincidence(
        dw_pulse=0.03, v_set=0.85, width_set_s=5e-9, n_slots=2, set_only=True
    )
    refresh = xbar.WriteVerify(
        v_set0=0.7, v_set_step=0.01, v_set_max=1.05, v_reset0=-1.38, v_reset_step=-0.005,
        v_reset_max=1.5, width_set_s=10e-9, width_reset_s=20e-9, max_pulses=60, tol=0.05,
    )  # fmt: skip
    ideal = u.WTATrainer()
    trainer = u.WTATrainer(rule=ideal.rule.rules[0])
    key = jax.random.PRNGKey(0)
    out = {}
    for every in (0, 5):
        kw = dict(refresh=refresh, refresh_every=every) if every else {}
        xb2, theta, st = jax.jit(
            lambda k, a, kw=kw: trainer.train(k, a, jnp.zeros((64, n)), xb=xb, scheme=scheme, **kw)
        )(key, x)
        w = xb2.weights()
        lab = u.assign_labels(ideal.responses(jax.random.PRNGKey(7), x, w, theta), y, 10)
        c = ideal.responses(jax.random.PRNGKey(8), xt, w, theta)
        acc = float(jnp.mean(u.predict(c, lab, 10) == yt))
        rms = float(jnp.sqrt(st.err_sq / st.n))
        out[every] = (acc, rms, float(jnp.max(jnp.abs(w))))
    assert out[0][2] > 5.0 and out[5][2] < 1.2  # runaway vs kept in the window
    assert out[5][1] < 0.3 * out[0][1]
    assert out[5][0] > out[0][0] + 0.1
