"""Endurance window closing and Arrhenius/lognormal retention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from xbar.devices import Endurance, Retention
from xbar.devices.endurance import K_B_EV


def test_window_closes_monotonically_and_equals_formula():
    e = Endurance(n_endurance=1e6, exponent=1.5, w_fail=0.2)
    n = jnp.logspace(0, 5.999, 50)
    w = np.asarray(e.window(n))
    np.testing.assert_allclose(w, 1 - 0.8 * (np.asarray(n) / 1e6) ** 1.5, rtol=1e-12)
    assert np.all(np.diff(w) < 0) and w[0] == pytest.approx(1.0, abs=1e-8)
    g_on, g_off = e.apply(100e-6, 1e-6, n)
    np.testing.assert_allclose(g_on, 100e-6 - 99e-6 * 0.8 * (np.asarray(n) / 1e6) ** 1.5, rtol=1e-12)
    np.testing.assert_array_equal(g_off, 1e-6)
    assert np.all(np.diff(np.asarray(e.c2c_sigma(n))) > 0)


def test_failure_after_n_end():
    e = Endurance(n_endurance=1e4, w_fail=0.1)
    n = jnp.array([9999.0, 1e4, 2e4])
    np.testing.assert_array_equal(e.failed(n), [False, True, True])
    assert float(e.window(9999.0)) == pytest.approx(0.1, abs=1e-3)  # at threshold just before
    g_on, g_off = e.apply(100e-6, 1e-6, n)
    np.testing.assert_array_equal(np.asarray(g_on)[1:], 1e-6)  # stuck OFF


def test_retention_fraction_matches_lognormal_cdf_and_monte_carlo():
    r = Retention()
    # Default: median 10 years at 85 C.
    assert float(r.median_time(358.15)) == pytest.approx(10 * 365.25 * 86400, rel=1e-9)
    temp = 400.0
    t = jnp.logspace(3, 9, 13)
    f = np.asarray(r.fraction_failed(t, temp))
    scale = r.tau0 * np.exp(r.ea_ev / (K_B_EV * temp))
    np.testing.assert_allclose(f, stats.lognorm(s=r.sigma, scale=scale).cdf(np.asarray(t)), rtol=1e-9, atol=1e-300)
    n = 20000
    for t_s in (float(scale) / 3, float(scale), float(scale) * 5):
        failed = r.sample_failed(jax.random.PRNGKey(0), (n,), t_s, temp)
        p = float(r.fraction_failed(t_s, temp))
        assert abs(float(jnp.mean(failed)) - p) <= 3 * np.sqrt(p * (1 - p) / n)
    # Hotter fails sooner (Arrhenius).
    assert float(r.median_time(450.0)) < float(r.median_time(400.0))
    times = np.asarray(r.failure_time(jax.random.PRNGKey(1), (4000,), temp))
    assert stats.kstest(times, stats.lognorm(s=r.sigma, scale=float(scale)).cdf).pvalue > 1e-3


def test_jit_vmap_grad():
    e = Endurance()
    n = jnp.array([10.0, 1e3, 1e5])
    np.testing.assert_allclose(jax.jit(e.window)(n), e.window(n), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(e.window)(n), e.window(n), rtol=1e-12)
    r = Retention()
    g = jax.grad(r.fraction_failed)(1e6, 450.0)
    h = 1.0
    fd = (r.fraction_failed(1e6 + h, 450.0) - r.fraction_failed(1e6 - h, 450.0)) / (2 * h)
    assert float(g / fd) == pytest.approx(1.0, rel=1e-5)
    k = jax.random.PRNGKey(2)
    np.testing.assert_array_equal(r.failure_time(k, (5,), 400.0), r.failure_time(k, (5,), 400.0))


@pytest.mark.parametrize(
    "cls, kwargs, name",
    [(Endurance, {"n_endurance": 0.0}, "n_endurance"), (Endurance, {"w_fail": 1.0}, "w_fail"),
     (Endurance, {"sigma0": -0.1}, "sigma0"), (Retention, {"ea_ev": -1.0}, "ea_ev"),
     (Retention, {"sigma": float("nan")}, "sigma")],
)
def test_bad_parameters_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)
