"""STDP rules against their analytic formulas (ideal synapses: the asked-for change is the
change), and the stochastic rule's switching frequency against its probability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import rules, stdp

from xbar import devices

DT = 1e-4  # [s]


def _trains(times_pre, times_post, t_total=0.3):
    n = int(round(t_total / DT))
    pre = np.zeros((n, 1))
    post = np.zeros((n, 1))
    for t in times_pre:
        pre[int(round(t / DT)), 0] = 1
    for t in times_post:
        post[int(round(t / DT)), 0] = 1
    return jnp.asarray(pre), jnp.asarray(post)


def _pair_analytic(rule, tp, tq, nearest=False):
    """Sum over spike pairs of the pair window (all-to-all) or nearest pairs only."""
    total = 0.0
    for q in tq:  # post spikes: potentiation from earlier pre spikes
        earlier = [p for p in tp if p < q - 1e-12]
        if nearest:
            earlier = earlier[-1:]
        total += sum(rule.a_plus * np.exp(-(q - p) / rule.tau_plus) for p in earlier)
    for p in tp:  # pre spikes: depression from earlier post spikes
        earlier = [q for q in tq if q < p - 1e-12]
        if nearest:
            earlier = earlier[-1:]
        total -= sum(rule.a_minus * np.exp(-(p - q) / rule.tau_minus) for q in earlier)
    return total


@pytest.mark.parametrize("nearest", [False, True])
@pytest.mark.parametrize(
    "tp, tq",
    [
        ([0.010], [0.025]),  # pre before post: potentiation
        ([0.040], [0.012]),  # post before pre: depression
        ([0.010, 0.030, 0.032], [0.020, 0.050]),  # several pairs
    ],
)
def test_pair_stdp_equals_the_window(nearest, tp, tq):
    rule = stdp.PairSTDP(
        a_plus=0.01, a_minus=0.012, tau_plus=17e-3, tau_minus=34e-3, nearest=nearest
    )
    pre, post = _trains(tp, tq)
    dw, _ = rules.run_rule(rule, pre, post, DT)
    np.testing.assert_allclose(float(dw[0, 0]), _pair_analytic(rule, tp, tq, nearest), rtol=1e-9)


def test_pair_window_sign_and_decay():
    rule = stdp.PairSTDP()
    lags = np.array([-40e-3, -10e-3, -2e-3, 2e-3, 10e-3, 40e-3])
    out = []
    for lag in lags:
        pre, post = _trains([0.1], [0.1 + lag])
        out.append(float(rules.run_rule(rule, pre, post, DT)[0][0, 0]))
    out = np.array(out)
    assert np.all(out[lags > 0] > 0) and np.all(out[lags < 0] < 0)
    assert out[3] > out[4] > out[5] and out[2] < out[1] < out[0]


def _triplet_analytic(r, tp, tq):
    """Pfister & Gerstner (2006) Eqs. 2-3 with all-to-all traces, evaluated from the spike
    times directly."""

    def trace(times, t, tau):
        return sum(np.exp(-(t - s) / tau) for s in times if s < t - 1e-12)

    total = 0.0
    for q in tq:
        total += trace(tp, q, r.tau_plus) * (r.a2_plus + r.a3_plus * trace(tq, q, r.tau_y))
    for p in tp:
        total -= trace(tq, p, r.tau_minus) * (r.a2_minus + r.a3_minus * trace(tp, p, r.tau_x))
    return total


@pytest.mark.parametrize(
    "tp, tq",
    [
        ([0.010], [0.020, 0.030]),  # pre-post-post triplet
        ([0.020, 0.035], [0.030]),  # pre-post-pre triplet
        ([0.010, 0.030], [0.015, 0.035, 0.060]),
    ],
)
def test_triplet_stdp_equals_the_formula(tp, tq):
    rule = stdp.TripletSTDP(a2_plus=4.6e-3, a3_plus=9.1e-3, a2_minus=3e-3, a3_minus=7.5e-9)
    pre, post = _trains(tp, tq)
    dw, _ = rules.run_rule(rule, pre, post, DT)
    np.testing.assert_allclose(float(dw[0, 0]), _triplet_analytic(rule, tp, tq), rtol=1e-9)


def test_triplet_rate_dependence_pairs_alone_cannot_give():
    # post-post-pre... the triplet term makes post-pre-post potentiate more than pre-post
    rule = stdp.TripletSTDP()
    pre, post = _trains([0.05], [0.06])
    single = float(rules.run_rule(rule, pre, post, DT)[0][0, 0])
    pre, post = _trains([0.05], [0.04, 0.06])
    triple = float(rules.run_rule(rule, pre, post, DT)[0][0, 0])
    expected_gain = rule.a3_plus * np.exp(-0.02 / rule.tau_y) * np.exp(-0.01 / rule.tau_plus)
    depress = rule.a2_minus * np.exp(-0.01 / rule.tau_minus)
    np.testing.assert_allclose(triple - single, expected_gain - depress, rtol=1e-9)


def test_reward_modulated_is_reward_times_eligibility():
    inner = stdp.PairSTDP(a_plus=0.02, tau_plus=10e-3)
    rule = stdp.RewardModulatedSTDP(stdp=inner, tau_e=0.2, lr=0.5)
    pre, post = _trains([0.010], [0.015], t_total=0.1)
    n = pre.shape[0]
    k = 500  # one reward pulse 50 ms after the pair
    reward = jnp.zeros(n).at[k].set(1.0)
    dw, _ = rules.run_rule(rule, pre, post, DT, reward_t=reward)
    e = 0.02 * np.exp(-5e-3 / 10e-3) * np.exp(-(k * DT - 0.015) / 0.2)
    np.testing.assert_allclose(float(dw[0, 0]), 0.5 * e, rtol=1e-9)
    dw0, _ = rules.run_rule(rule, pre, post, DT, reward_t=jnp.zeros(n))
    assert float(jnp.abs(dw0).max()) == 0.0


def test_diehl_cook_post_triggered_with_target():
    rule = stdp.DiehlCookSTDP(eta_post=0.01, eta_pre=0.0, x_target=0.3)
    pre = jnp.zeros((200, 2)).at[50, 0].set(1.0)  # input 0 fired 15 ms before, input 1 never
    post = jnp.zeros((200, 1)).at[200 - 50, 0].set(1.0)
    dw, _ = rules.run_rule(rule, pre, post, DT)
    lag = (150 - 50) * DT
    np.testing.assert_allclose(dw[:, 0], [0.01 * (np.exp(-lag / 20e-3) - 0.3), -0.003], rtol=1e-9)


@pytest.mark.parametrize("law", [devices.PoissonSwitching(), devices.LognormalSwitching()])
def test_stochastic_switching_frequency_matches_probability(law):
    rule = stdp.StochasticSTDP(law=law, v_set=1.0, v_reset=-1.05, width_s=120e-9)
    m, n, trials = 100, 100, 2  # 2 x 10^4 synapse trials for each polarity
    lag = 8e-3
    state = stdp.PairTraces(x=jnp.ones(m), y=jnp.ones(n))
    w = jnp.zeros((m, n))
    p_set = float(law.probability(1.0, 120e-9 * np.exp(-lag / rule.tau_plus)))
    p_reset = float(law.probability(-1.05, 120e-9 * np.exp(-lag / rule.tau_minus)))
    assert 0.1 < p_set < 0.9 and 0.1 < p_reset < 0.9
    keys = jax.random.split(jax.random.PRNGKey(3), trials)
    up = jax.vmap(
        lambda k: rule.update(None, state, jnp.zeros(m), jnp.ones(n), lag, weights=w, key=k)[0]
    )(keys)
    down = jax.vmap(
        lambda k: rule.update(
            None, state, jnp.ones(m), jnp.zeros(n), lag, weights=jnp.ones((m, n)), key=k
        )[0]
    )(keys)
    n_trials = trials * m * n
    for freq, p in ((float(jnp.mean(up == 1.0)), p_set), (float(jnp.mean(down == -1.0)), p_reset)):
        sigma = np.sqrt(p * (1 - p) / n_trials)
        assert abs(freq - p) < 4 * sigma


def _reduced_analytic(r, tp, tq):
    """Reduced nearest-spike STDP from the spike times: every post spike pairs with the
    latest pre spike if no post spike lies between them; every pre spike pairs with the
    latest post spike if it is the first pre spike after it."""
    total = 0.0
    for k, q in enumerate(tq):
        prev_q = tq[k - 1] if k else -np.inf
        between = [p for p in tp if prev_q < p < q - 1e-12]
        if between:
            total += r.a_plus * np.exp(-(q - between[-1]) / r.tau_plus)
    for k, p in enumerate(tp):
        prev_p = tp[k - 1] if k else -np.inf
        between = [q for q in tq if prev_p < q < p - 1e-12]
        if between:
            total -= r.a_minus * np.exp(-(p - between[-1]) / r.tau_minus)
    return total


@pytest.mark.parametrize(
    "tp, tq",
    [
        ([0.010], [0.025]),
        ([0.040], [0.012]),
        ([0.010, 0.030, 0.032], [0.020, 0.050]),
        ([0.010, 0.015], [0.020, 0.030, 0.031]),  # two posts after one pre: one pairing
        ([0.030, 0.035, 0.050, 0.090], [0.020, 0.060, 0.061]),
    ],
)
def test_reduced_nearest_stdp_pairs_only_alternating_neighbours(tp, tq):
    # Masquelier, Guyonneau & Thorpe (2008) parameters; pairs as in Morrison et al. (2008)
    r = stdp.ReducedNearestSTDP()
    assert r.a_plus == 2.0**-5 and r.a_minus == pytest.approx(0.85 * 2.0**-5)
    pre, post = _trains(tp, tq)
    dw, _ = rules.run_rule(r, pre, post, DT)
    np.testing.assert_allclose(float(dw[0, 0]), _reduced_analytic(r, tp, tq), rtol=1e-9)


def test_reduced_rule_differs_from_plain_nearest_and_handles_same_step_spikes():
    # one pre, then two posts: the plain nearest-spike rule potentiates twice, the
    # reduced one once (Hathway & Goodman 2018: this keeps the neuron from going silent)
    pre, post = _trains([0.010], [0.020, 0.030])
    plain = stdp.PairSTDP(a_plus=2.0**-5, tau_plus=16.8e-3, nearest=True)
    red = stdp.ReducedNearestSTDP()
    a = float(rules.run_rule(plain, pre, post, DT)[0][0, 0])
    b = float(rules.run_rule(red, pre, post, DT)[0][0, 0])
    np.testing.assert_allclose(b, 2.0**-5 * np.exp(-10 / 16.8), rtol=1e-9)
    np.testing.assert_allclose(a, b + 2.0**-5 * np.exp(-20 / 16.8), rtol=1e-9)
    # a pre and a post spike in one step: no interaction by default; with
    # p_pre_after = 1 the pre counts as right after the post (depressed by a_minus) and
    # pairs with the next post; with 0 it counts as right before (potentiated by a_plus)
    pre, post = _trains([0.010, 0.020], [0.020, 0.030])
    none = float(rules.run_rule(red, pre, post, DT)[0][0, 0])
    np.testing.assert_allclose(none, 2.0**-5 * np.exp(-10 / 16.8), rtol=1e-9)
    after = stdp.ReducedNearestSTDP(p_pre_after=1.0)
    dw = float(rules.run_rule(after, pre, post, DT)[0][0, 0])
    np.testing.assert_allclose(dw, 2.0**-5 * (2 * np.exp(-10 / 16.8) - 0.85), rtol=1e-6)
    before = stdp.ReducedNearestSTDP(p_pre_after=0.0)
    dw = float(rules.run_rule(before, pre, post, DT)[0][0, 0])
    # 10 ms: the first pre is not paired (a post follows it only after the second pre);
    # 20 ms: the pre pairs with... nothing pending (last = +1), the post with it at dt = 0
    np.testing.assert_allclose(dw, 2.0**-5, rtol=1e-6)
    # p = 0.5: over many synapses the mean of the two orders
    m = 20000
    half = stdp.ReducedNearestSTDP(p_pre_after=0.5)
    pre_m, post_m = jnp.tile(pre, (1, m)), post
    dw, _ = rules.run_rule(half, pre_m, post_m, DT, key=jax.random.PRNGKey(0))
    mean = 0.5 * (2.0**-5 * (2 * np.exp(-10 / 16.8) - 0.85) + 2.0**-5)
    sd = 0.5 * abs(2.0**-5 * (2 * np.exp(-10 / 16.8) - 0.85) - 2.0**-5)
    assert abs(float(jnp.mean(dw)) - mean) < 4 * sd / np.sqrt(m)
    with pytest.raises(ValueError, match="key"):
        rules.run_rule(half, pre, post, DT)
