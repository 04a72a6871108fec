"""Unsupervised STDP in a competitive layer: digits learned from spikes alone (small, fast
version with a loose bound; the full study is in notebook 07), and a neuron that finds a
repeating spike pattern hidden in noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import load_digits, stdp, transfer
from xbar.learning import unsupervised as u

import xbar


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


def test_hidden_pattern_input_has_the_papers_statistics():
    # Masquelier, Guyonneau & Thorpe (2008): rates in [0, 90] Hz changing at most
    # 1800 Hz/s, at least one spike per 50 ms, 10 Hz of noise: about 64 Hz per afferent,
    # the same inside and outside the pattern; a quarter of the windows, never two in a
    # row
    src = u.HiddenPattern(n_afferents=400, n_pattern=200)
    n_win = 400
    s, on, pat = jax.jit(lambda k: src.spikes(k, n_win))(jax.random.PRNGKey(0))
    s, on = np.asarray(s), np.asarray(on)
    assert s.shape == (n_win * 50, 400)
    assert not np.any(on[1:] & on[:-1])
    assert abs(on.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n_win)
    rate = s.mean() / 1e-3
    assert 61.0 < rate < 67.0, rate
    # inside the pattern the rate is the frozen pattern's (one 50 ms sample of the
    # process, so it differs from the long-run mean by its sampling error) plus noise
    q = np.repeat(on, 50)
    r_in, r_out = s[q, :200].mean() / 1e-3, s[~q, :200].mean() / 1e-3
    counts = np.asarray(pat).sum(0)
    sem = counts.std() / np.sqrt(counts.size) / 50e-3
    assert abs(r_in - r_out) < 4 * sem + 2.0, (r_in, r_out, sem)

    # the process alone: rates bounded, speed bounded, never 50 ms without a spike
    def windows(k):
        def one(st, kk):
            st, fire, _ = src._process(kk, st)
            return st, (fire, st.rate, st.speed)

        st0 = src.init_process(jax.random.fold_in(k, 1))
        return jax.lax.scan(one, st0, jax.random.split(k, 40))[1]

    fire, rates, speeds = jax.jit(windows)(jax.random.PRNGKey(2))
    assert float(rates.min()) >= 0 and float(rates.max()) <= 90.0
    assert float(jnp.abs(speeds).max()) <= 1800.0
    f = np.asarray(fire).reshape(-1, 400)
    for j in range(0, 400, 37):
        t = np.flatnonzero(f[:, j])
        assert np.diff(t).max() <= 50 and t[0] < 50


def test_forced_spikes_are_not_synchronised():
    # every step of a pattern (a window cut from the process just after its start) holds
    # the process's mean rate: the forced spikes (one per 50 ms at least) start at random
    # offsets, as after the original code's virtual spike before the start (Hathway &
    # Goodman 2018). Started in step, ~20 % of the afferents fired in the last step.
    src = u.HiddenPattern()
    pats = [np.asarray(src.make_pattern(jax.random.PRNGKey(s))) for s in range(4)]
    per_step = np.mean(pats, axis=(0, 2))  # fraction of afferents firing, per step (L,)
    mean = per_step.mean()
    assert 0.045 < mean < 0.065, mean  # 54 Hz at 1 ms
    sem = np.sqrt(mean * (1 - mean) / (4 * src.n_pattern))
    assert np.all(np.abs(per_step - mean) < 5 * sem + 0.25 * mean), per_step


def test_pattern_repeats_exactly_without_noise_and_jitter():
    src = u.HiddenPattern(n_afferents=100, n_pattern=50, noise_hz=0.0, jitter_s=0.0)
    s, on, pat = jax.jit(lambda k: src.spikes(k, 100))(jax.random.PRNGKey(3))
    s, on, pat = np.asarray(s), np.asarray(on), np.asarray(pat)
    assert on.sum() > 10 and pat.sum() > 0
    for k in np.flatnonzero(on):
        np.testing.assert_array_equal(s[k * 50 : (k + 1) * 50, :50], pat)
    # jitter moves spikes by whole steps without creating any
    src_j = u.HiddenPattern(n_afferents=100, n_pattern=50, noise_hz=0.0)
    j = np.asarray(src_j.jitter(jax.random.PRNGKey(4), jnp.asarray(pat)))
    assert 0.9 * pat.sum() < j.sum() <= pat.sum() and not np.array_equal(j, pat)


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


def _selectivity(run, last_windows):
    """Scores over the last windows and the final weights of a run."""
    return u.pattern_scores(run, run.on.shape[0] - last_windows), np.asarray(run.w)


def _early_afferents_are_potentiated(run, w, latency_steps):
    # the afferents at the top fire in the pattern shortly before the neuron does
    pat = np.asarray(run.pattern)
    high = np.flatnonzero(w > 0.9)
    lo = max(0, int(latency_steps) - 20)
    before = pat[lo : int(latency_steps) + 1, high].sum(0) > 0
    return before.mean()


def test_stdp_neuron_becomes_selective_to_the_hidden_pattern():
    # Masquelier, Guyonneau & Thorpe (2008) at full size (2000 afferents, 1000 in the
    # pattern), 60 s instead of 450 s: the neuron first fires everywhere, then (after
    # ~15 s) only in the pattern, early in it. (Seeds 1-6: 44-50 Hz outside the pattern
    # at 5-10 s; over the last 20 s hit rate 1.0 and no false alarm, latency 5-7 ms on
    # seeds 1-5 and 27 ms on seed 6, which was still shortening it.)
    run = jax.jit(lambda k: u.detect_pattern(k, 1200))(jax.random.PRNGKey(1))
    before = u.pattern_scores(run, 100, 200)
    assert float(before.false_alarm_hz) > 20.0  # not selective before learning
    sc, w = _selectivity(run, 400)
    assert float(sc.hit_rate) >= 0.98 and int(sc.n_presentations) > 60
    assert float(sc.false_alarm_hz) < 0.2  # at most 2 spikes outside the pattern
    assert float(sc.latency_s) < 10e-3
    # weights part towards the bounds; the potentiated ones are pattern afferents
    assert np.mean((w < 0.1) | (w > 0.9)) > 0.6
    assert np.all(w[1000:] < 0.9) and np.sum(w[:1000] > 0.9) > 20
    assert _early_afferents_are_potentiated(run, w, float(sc.latency_s) / 1e-3) > 0.9


@pytest.mark.slow
def test_full_paper_run_meets_the_papers_success_criterion():
    # the paper's 450 s run and its success criterion over the last 150 s: hit rate
    # > 98 %, no false alarm, mean latency < 10 ms (seeds 1-10: met by 9, at 3.7-5.8 ms;
    # on seed 7 the neuron fell silent at 35 s; Hathway & Goodman 2018 found > 95 % of
    # the runs successful)
    n_win = 9000
    run = jax.jit(lambda k: u.detect_pattern(k, n_win))(jax.random.PRNGKey(1))
    last = u.pattern_scores(run, n_win - 3000)
    _, count = u.window_latencies(run)
    n_false = int(np.sum(np.where(np.asarray(run.on), 0, np.asarray(count))[n_win - 3000 :]))
    assert float(last.hit_rate) > 0.98 and n_false == 0 and float(last.latency_s) < 10e-3
    w = np.asarray(run.w)
    assert np.all(w[1000:] < 0.9) and np.sum(w[:1000] > 0.9) > 200
    assert np.mean((w < 0.1) | (w > 0.9)) > 0.85


def test_pulsed_synapses_deliver_the_asked_change_in_whole_pulses():
    # stochastic rounding to whole pulses of the device's step (Gokmen & Vlasov 2016):
    # each synapse moves by floor or ceil of the asked number of steps, the mean by the
    # asked change; beyond max_pulses steps the change saturates; the device bounds clip
    levels = 32
    dev = transfer.LinearSynapse(g_min=0.0, g_max=32e-6, dg=1e-6)
    syn = u.PulsedSynapses(dev, 0.0, 32e-6, dw_pulse=1.0 / levels, max_pulses=3)
    m = 20000
    st = syn.init(0.5, m)
    w = syn.weights(st)
    np.testing.assert_allclose(np.asarray(w), 0.5, atol=1e-6)
    dw = jnp.full((m,), 1.3 / levels).at[: m // 2].set(-0.4 / levels)
    st2, n = syn.apply(st, dw, w, jax.random.PRNGKey(0))
    steps = np.round((np.asarray(syn.weights(st2)) - 0.5) * levels)
    up, down = steps[m // 2 :], steps[: m // 2]
    assert set(np.unique(up)) == {1.0, 2.0} and set(np.unique(down)) == {-1.0, 0.0}
    sem = 0.5 / np.sqrt(m / 2)
    assert abs(up.mean() - 1.3) < 4 * sem and abs(down.mean() + 0.4) < 4 * sem
    assert int(n) == int(np.abs(steps).sum())
    st3, _ = syn.apply(st, jnp.full((m,), 10.0 / levels), w, jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(syn.weights(st3)), 0.5 + 3 / levels, atol=1e-5)
    top = syn.init(1.0, 4)
    st4, _ = syn.apply(top, jnp.full((4,), 2.0 / levels), syn.weights(top), jax.random.PRNGKey(2))
    np.testing.assert_allclose(np.asarray(syn.weights(st4)), 1.0, atol=1e-6)


def test_pulsed_synapses_abrupt_reset_has_the_asked_mean():
    # a device whose RESET returns it to the bottom (PCM): a fall of |dw| from w is one
    # RESET with probability |dw| / w, so the mean change is the asked one
    dev = xbar.devices.PCMStatistical()
    syn = u.PulsedSynapses(dev, 0.0, dev.g_max, dw_pulse=0.016, abrupt_reset=True)
    m = 10000
    st = syn.init(0.5, m)
    w = syn.weights(st)
    st2, n = syn.apply(st, jnp.full((m,), -0.1), w, jax.random.PRNGKey(3))
    reset = np.asarray(syn.weights(st2)) < 0.1
    assert abs(reset.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / m) and int(n) == reset.sum()
    delivered = float(jnp.mean(syn.weights(st2) - w))
    assert abs(delivered + 0.1) < 0.01


def test_detect_pattern_on_pulsed_synapses_keeps_the_weights_on_the_device_grid():
    # with a finite-step device the weights stay multiples of its step, inside [0, 1]
    src = u.HiddenPattern(n_afferents=200, n_pattern=100)
    dev = transfer.LinearSynapse(g_min=0.0, g_max=16e-6, dg=1e-6)
    syn = u.PulsedSynapses(dev, 0.0, 16e-6, dw_pulse=1.0 / 16, max_pulses=2)
    neuron = xbar.learning.SRMNeuron(threshold=50.0)
    run = jax.jit(
        lambda k: u.detect_pattern(k, 40, source=src, neuron=neuron, synapses=syn, w0=0.5)
    )(jax.random.PRNGKey(4))
    w = np.asarray(run.w) * 16
    assert float(jnp.sum(run.pulses)) > 100 and int(jnp.sum(run.post)) > 0
    np.testing.assert_allclose(w, np.round(w), atol=1e-4)
    assert w.min() >= 0 and w.max() <= 16 and np.std(w) > 0


@pytest.mark.slow
def test_full_size_competitive_stdp_reaches_80_percent_on_digits():
    # Diehl & Cook (2015) report 82.9 % on MNIST with 100 excitatory neurons; the same
    # circuit (adaptive thresholds, lateral inhibition, STDP alone, neurons labelled by
    # their responses on the training set) on all 1437 training digits of scikit-learn's
    # 8x8 set, tested on the 360 held-out ones, must reach 80 %
    x, y, xt, yt = _data(10_000, 10_000)
    trainer = u.WTATrainer()
    w0 = jax.random.uniform(jax.random.PRNGKey(0), (64, 100), jnp.float32, 0.1, 0.4)
    w, theta, _ = jax.jit(trainer.train)(jax.random.PRNGKey(0), x, w0)
    lab = u.assign_labels(trainer.responses(jax.random.PRNGKey(7), x, w, theta), y, 10)
    pred = u.predict(trainer.responses(jax.random.PRNGKey(8), xt, w, theta), lab, 10)
    acc = float(jnp.mean(pred == yt))
    assert acc >= 0.80, acc
