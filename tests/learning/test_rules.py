"""Contract of every learning rule: shapes, jit, vmap, determinism, trace decay, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import rules, stdp

from xbar import devices

M, N, DT = 5, 3, 1e-3

RULES = {
    "pair": stdp.PairSTDP(),
    "pair_nearest": stdp.PairSTDP(nearest=True),
    "triplet": stdp.TripletSTDP(),
    "stochastic": stdp.StochasticSTDP(),
    "reward": stdp.RewardModulatedSTDP(),
    "diehl_cook": stdp.DiehlCookSTDP(),
    "chain_soft": rules.chain(stdp.PairSTDP(), rules.SoftBound(0.0, 1.0), rules.Scale(0.5)),
    "chain_hard": rules.chain(stdp.PairSTDP(), rules.HardBound(0.0, 1.0)),
}


def _step(rule, state, pre, post, key):
    w = jnp.full((M, N), 0.5)
    return rule.update(None, state, pre, post, DT, weights=w, reward=1.0, key=key)


def _spikes(key, t=30):
    k1, k2 = jax.random.split(key)
    pre = (jax.random.uniform(k1, (t, M)) < 0.3).astype(float)
    post = (jax.random.uniform(k2, (t, N)) < 0.3).astype(float)
    return pre, post


def _run(rule, pre_t, post_t, key):
    state = rule.init((M, N))

    def body(st, xs):
        pre, post, k = xs
        dw, st = _step(rule, st, pre, post, k)
        return st, dw

    keys = jax.random.split(key, pre_t.shape[0])
    return jax.lax.scan(body, state, (pre_t, post_t, keys))


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_contract(name):
    rule = RULES[name]
    key = jax.random.PRNGKey(0)
    pre_t, post_t = _spikes(key)
    state, dws = _run(rule, pre_t, post_t, key)
    assert dws.shape == (pre_t.shape[0], M, N)
    assert bool(jnp.all(jnp.isfinite(dws)))
    assert float(jnp.max(jnp.abs(dws))) > 0  # the rule asked for something
    # determinism: same key, same result; jit agrees with eager
    _, dws2 = jax.jit(lambda p, q, k: _run(rule, p, q, k))(pre_t, post_t, key)
    np.testing.assert_allclose(dws2, dws, rtol=1e-12, atol=1e-15)
    # vmap over a batch of independent synapse arrays equals a loop
    batch = jnp.stack([pre_t, pre_t[::-1]]), jnp.stack([post_t, post_t[::-1]])
    keys = jnp.stack([key, key])
    _, dws_b = jax.vmap(lambda p, q, k: _run(rule, p, q, k))(*batch, keys)
    _, dws_r = _run(rule, pre_t[::-1], post_t[::-1], key)
    np.testing.assert_allclose(dws_b[0], dws, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dws_b[1], dws_r, rtol=1e-12, atol=1e-15)
    # bad input: spike vectors that do not fit the array
    with pytest.raises(ValueError, match="shape"):
        _step(rule, rule.init((M, N)), jnp.zeros(M + 1), jnp.zeros(N), key)


def _trace_leaves(rule, state):
    """(trace, tau) pairs of a rule's state."""
    if isinstance(rule, rules.Chain):
        return [p for r, s in zip(rule.rules, state, strict=True) for p in _trace_leaves(r, s)]
    if isinstance(rule, stdp.PairSTDP):
        return [(state.x, rule.tau_plus), (state.y, rule.tau_minus)]
    if isinstance(rule, stdp.StochasticSTDP):
        return [(state.x, rule.tau_plus), (state.y, rule.tau_minus)]
    if isinstance(rule, stdp.DiehlCookSTDP):
        return [(state.x, rule.tau_pre), (state.y, rule.tau_post)]
    if isinstance(rule, stdp.TripletSTDP):
        return [
            (state.r1, rule.tau_plus),
            (state.r2, rule.tau_x),
            (state.o1, rule.tau_minus),
            (state.o2, rule.tau_y),
        ]
    if isinstance(rule, stdp.RewardModulatedSTDP):
        return _trace_leaves(rule.stdp, state.traces) + [(state.eligibility, rule.tau_e)]
    return []


@pytest.mark.parametrize("name", sorted(RULES))
def test_traces_decay_with_their_time_constants(name):
    rule = RULES[name]
    key = jax.random.PRNGKey(1)
    state = rule.init((M, N))
    ones_m, ones_n = jnp.ones(M), jnp.ones(N)
    _, state = _step(rule, state, ones_m, ones_n, key)
    _, state = _step(rule, state, ones_m, ones_n, key)  # eligibility gets a nonzero value
    before = _trace_leaves(rule, state)
    assert before, "rule has traces"
    n_quiet, dt_quiet = 7, 2.5e-3
    for _ in range(n_quiet):
        _, state = rule.update(
            None,
            state,
            jnp.zeros(M),
            jnp.zeros(N),
            dt_quiet,
            weights=jnp.full((M, N), 0.5),
            reward=0.0,
            key=key,
        )
    after = _trace_leaves(rule, state)
    for (b, tau), (a, _) in zip(before, after, strict=True):
        assert float(jnp.max(jnp.abs(b))) > 0
        np.testing.assert_allclose(a, b * np.exp(-n_quiet * dt_quiet / tau), rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: stdp.PairSTDP(tau_plus=-1.0),
        lambda: stdp.PairSTDP(a_minus=-0.1),
        lambda: stdp.TripletSTDP(tau_y=0.0),
        lambda: stdp.StochasticSTDP(width_s=0.0),
        lambda: stdp.RewardModulatedSTDP(tau_e=-1.0),
        lambda: stdp.DiehlCookSTDP(tau_pre=0.0),
        lambda: rules.SoftBound(1.0, 0.0),
        lambda: rules.HardBound(1.0, 1.0),
        lambda: rules.chain(stdp.PairSTDP(), "scale"),
    ],
)
def test_bad_parameters_raise(make):
    with pytest.raises(ValueError):
        make()


def test_modifiers_need_weights_and_bounds_are_analytic():
    state = stdp.PairSTDP().init((M, N))
    pre = jnp.zeros(M)
    post = jnp.ones(N)
    state = stdp.PairTraces(x=jnp.ones(M), y=jnp.zeros(N))
    with pytest.raises(ValueError, match="weights"):
        rules.chain(stdp.PairSTDP(), rules.SoftBound()).update(None, (state, ()), pre, post, DT)
    w = jnp.linspace(0.0, 1.0, M)[:, None] * jnp.ones((1, N))
    rule = rules.chain(stdp.PairSTDP(a_plus=0.1), rules.SoftBound(0.0, 1.0, mu=0.5))
    dw, _ = rule.update(None, (state, ()), pre, post, DT, weights=w)
    expect = 0.1 * np.exp(-DT / 20e-3) * np.sqrt(1.0 - np.asarray(w))
    np.testing.assert_allclose(dw, expect, rtol=1e-12)
    hard = rules.chain(stdp.PairSTDP(a_plus=0.5), rules.HardBound(0.0, 1.0))
    dw, _ = hard.update(None, (state, ()), pre, post, DT, weights=w)
    np.testing.assert_allclose(w + dw, np.minimum(w + 0.5 * np.exp(-DT / 20e-3), 1.0), rtol=1e-12)


def test_stochastic_rule_needs_key_and_weights():
    rule = stdp.StochasticSTDP(law=devices.LognormalSwitching())
    st = rule.init((M, N))
    with pytest.raises(ValueError, match="key"):
        rule.update(None, st, jnp.zeros(M), jnp.zeros(N), DT, weights=jnp.zeros((M, N)))
    with pytest.raises(ValueError, match="weights"):
        rule.update(None, st, jnp.zeros(M), jnp.zeros(N), DT, key=jax.random.PRNGKey(0))
