"""Stochastic switching: analytic probabilities, Monte-Carlo, KS tests, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from xbar.devices import LognormalSwitching, PoissonSwitching


def test_lognormal_probability_formula_and_monotonic():
    m = LognormalSwitching(t0=1e-3, v0=0.2, sigma=0.8)
    v = np.linspace(0.2, 2.0, 10)[:, None]
    w = np.logspace(-9, -3, 13)[None, :]
    p = np.asarray(m.probability(jnp.asarray(v), jnp.asarray(w)))
    t_mean = 1e-3 * np.exp(-v / 0.2)
    np.testing.assert_allclose(p, stats.norm.cdf((np.log(w) - np.log(t_mean)) / 0.8), rtol=1e-10, atol=1e-300)
    assert np.all(np.diff(p, axis=0) >= 0) and np.all(np.diff(p, axis=1) >= 0)
    # Polarity-symmetric in |V|.
    np.testing.assert_allclose(m.probability(-jnp.asarray(v), jnp.asarray(w)), p, rtol=1e-12)


def test_poisson_probability_formula_and_monotonic():
    m = PoissonSwitching(tau0=1e-3, v0=0.2)
    v = np.linspace(0.2, 2.0, 10)[:, None]
    w = np.logspace(-9, -3, 13)[None, :]
    p = np.asarray(m.probability(jnp.asarray(v), jnp.asarray(w)))
    np.testing.assert_allclose(p, 1 - np.exp(-w / (1e-3 * np.exp(-v / 0.2))), rtol=1e-10)
    assert np.all(np.diff(p, axis=0) >= 0) and np.all(np.diff(p, axis=1) >= 0)


@pytest.mark.parametrize("model", [LognormalSwitching(), PoissonSwitching()])
def test_monte_carlo_sample_matches_probability(model):
    n = 20000
    for case, (v, w) in enumerate(((1.0, 1e-7), (0.9, 3e-8), (1.2, 1e-8))):
        p = float(model.probability(v, w))
        key = jax.random.fold_in(jax.random.PRNGKey(0), case)  # independent draws per case
        hits = model.sample(key, jnp.full((n,), v), w)
        assert hits.dtype == jnp.bool_
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(float(jnp.mean(hits)) - p) <= 3 * sigma + 1e-12


def test_switching_times_follow_requested_distributions():
    ln = LognormalSwitching()
    t = np.asarray(ln.switching_time(jax.random.PRNGKey(0), 0.8, (5000,)))
    scale = float(ln.median_time(0.8))
    assert stats.kstest(t, stats.lognorm(s=ln.sigma, scale=scale).cdf).pvalue > 1e-3
    po = PoissonSwitching()
    t = np.asarray(po.switching_time(jax.random.PRNGKey(1), 0.8, (5000,)))
    assert stats.kstest(t, stats.expon(scale=float(po.mean_time(0.8))).cdf).pvalue > 1e-3
    # Consistency: the probability is the CDF of the switching time.
    for m, key in ((ln, 2), (po, 3)):
        t = np.asarray(m.switching_time(jax.random.PRNGKey(key), 1.0, (20000,)))
        w = 1e-7
        p = float(m.probability(1.0, w))
        assert abs(np.mean(t <= w) - p) <= 3 * np.sqrt(p * (1 - p) / t.size)


@pytest.mark.parametrize("model", [LognormalSwitching(), PoissonSwitching()])
def test_probability_gradient_matches_finite_differences(model):
    for v, w in ((0.9, 1e-7), (1.1, 3e-8)):
        gv, gw = jax.grad(model.probability, argnums=(0, 1))(v, w)
        h = 1e-6
        fd_v = (model.probability(v + h, w) - model.probability(v - h, w)) / (2 * h)
        fd_w = (model.probability(v, w * (1 + h)) - model.probability(v, w * (1 - h))) / (2 * h * w)
        assert float(gv / fd_v) == pytest.approx(1.0, rel=1e-6)
        assert float(gw / fd_w) == pytest.approx(1.0, rel=1e-6)


def test_jit_vmap_determinism():
    m = LognormalSwitching()
    k = jax.random.PRNGKey(9)
    v = jnp.linspace(0.8, 1.2, 8)
    a = m.sample(k, v, 1e-7)
    np.testing.assert_array_equal(a, jax.jit(m.sample)(k, v, 1e-7))
    p = jax.vmap(m.probability, in_axes=(0, None))(v, 1e-7)
    np.testing.assert_allclose(p, m.probability(v, 1e-7), rtol=1e-12)
    np.testing.assert_array_equal(m.switching_time(k, 1.0, (4,)), m.switching_time(k, 1.0, (4,)))


@pytest.mark.parametrize(
    "cls, kwargs, name",
    [(LognormalSwitching, {"t0": -1.0}, "t0"), (LognormalSwitching, {"sigma": 0.0}, "sigma"),
     (PoissonSwitching, {"tau0": 0.0}, "tau0"), (PoissonSwitching, {"v0": float("nan")}, "v0")],
)
def test_bad_parameters_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)
