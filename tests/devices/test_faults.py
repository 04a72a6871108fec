"""Stuck-at faults: rates vs binomial statistics, apply/freeze, determinism, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.devices import VTEAM, StuckAtFaults


@pytest.mark.parametrize("p_on, p_off", [(0.0904, 0.0175), (0.3, 0.2), (0.0, 0.05)])
def test_observed_rates_within_3_sigma(p_on, p_off):
    n = 400 * 500
    mask = StuckAtFaults(p_on, p_off).draw(jax.random.PRNGKey(0), (400, 500))
    assert mask.dtype == jnp.int8 and mask.shape == (400, 500)
    m = np.asarray(mask)
    for value, p in ((1, p_on), (2, p_off), (0, 1 - p_on - p_off)):
        observed = np.mean(m == value)
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(observed - p) <= 3 * sigma + 1e-12


def test_defaults_are_literature_pair():
    f = StuckAtFaults()
    assert (f.p_on, f.p_off) == (0.0904, 0.0175)


def test_apply_sets_exactly_the_stuck_cells():
    f = StuckAtFaults(0.2, 0.2)
    mask = f.draw(jax.random.PRNGKey(1), (64, 64))
    g = jax.random.uniform(jax.random.PRNGKey(2), (64, 64), minval=2e-6, maxval=90e-6)
    out = np.asarray(f.apply(g, mask, 100e-6, 1e-6))
    m, g = np.asarray(mask), np.asarray(g)
    np.testing.assert_array_equal(out[m == 1], 100e-6)
    np.testing.assert_array_equal(out[m == 2], 1e-6)
    np.testing.assert_array_equal(out[m == 0], g[m == 0])
    # Gradient reaches the healthy cells only.
    grad = jax.grad(lambda x: f.apply(x, mask, 100e-6, 1e-6).sum())(jnp.asarray(g))
    np.testing.assert_array_equal(np.asarray(grad), (m == 0).astype(float))


def test_freeze_keeps_stuck_state_under_pulses():
    f = StuckAtFaults(0.25, 0.25)
    dev = VTEAM()
    mask = f.draw(jax.random.PRNGKey(4), (1000,))
    s = dev.init_state((1000,), w=1.5e-9)
    new = f.freeze(s, dev.apply_pulse(s, 1.0, 1e-7), mask)
    m = np.asarray(mask)
    np.testing.assert_array_equal(np.asarray(new.w)[m != 0], 1.5e-9)
    assert np.all(np.asarray(new.w)[m == 0] > 1.5e-9)


def test_same_key_same_mask_jit_vmap():
    f = StuckAtFaults()
    k = jax.random.PRNGKey(7)
    a = f.draw(k, (100,))
    np.testing.assert_array_equal(a, f.draw(k, (100,)))
    np.testing.assert_array_equal(a, jax.jit(f.draw, static_argnums=1)(k, (100,)))
    keys = jax.random.split(k, 3)
    masks = jax.vmap(lambda kk: f.draw(kk, (10,)))(keys)
    np.testing.assert_array_equal(masks[1], f.draw(keys[1], (10,)))
    assert not np.array_equal(a, f.draw(jax.random.PRNGKey(8), (100,)))


@pytest.mark.parametrize(
    "kwargs, name",
    [({"p_on": -0.1}, "p_on"), ({"p_off": 1.5}, "p_off"), ({"p_on": 0.7, "p_off": 0.6}, "p_on + p_off"),
     ({"p_on": float("nan")}, "p_on")],
)
def test_bad_rates_raise(kwargs, name):
    with pytest.raises(ValueError, match=name.replace("+", r"\+")):
        StuckAtFaults(**kwargs)
