"""Read noise: 1/f integrated over a band and random telegraph statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xbar import devices


def test_flicker_sigma_matches_band_integral():
    # sigma^2 / G^2 = integral_{f1}^{f2} Q / f df = Q ln(f2 / f1)
    q, f1, f2 = 3e-4, 10.0, 1e7
    f = np.logspace(np.log10(f1), np.log10(f2), 200_001)
    integral = np.trapezoid(q / f, f)
    sig = devices.flicker_sigma(2e-5, q, f1, f2)
    assert float(sig) == pytest.approx(2e-5 * np.sqrt(integral), rel=1e-6)


def test_read_noise_statistics_and_determinism():
    noise = devices.ReadNoise(q_flicker=1e-4, f_min_hz=1.0, f_max_hz=1e6)
    g = jnp.full((100_000,), 1e-5)
    a = noise.sample(jax.random.key(0), g)
    b = noise.sample(jax.random.key(0), g)
    c = noise.sample(jax.random.key(1), g)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    expected = 1e-5 * np.sqrt(1e-4 * np.log(1e6))
    assert np.mean(a) == pytest.approx(1e-5, abs=4 * expected / np.sqrt(1e5))
    assert np.std(a) == pytest.approx(expected, rel=0.02)


def test_rtn_occupancy_and_amplitude():
    noise = devices.ReadNoise(q_flicker=0.0, rtn_amplitude=0.2, tau_low_s=3e-3, tau_high_s=1e-3)
    g = noise.sample(jax.random.key(2), jnp.ones((100_000,)))
    values = np.unique(np.round(np.asarray(g), 12))
    np.testing.assert_allclose(values, [1.0, 1.2])
    p = np.mean(np.asarray(g) > 1.1)
    assert p == pytest.approx(0.25, abs=4 * np.sqrt(0.25 * 0.75 / 1e5))


def test_telegraph_trace_dwell_times():
    # Occupancy and transition rate of the sampled chain against the continuous-time chain
    dt, tau_lo, tau_hi = 1e-4, 2e-3, 5e-4
    tr = np.asarray(devices.telegraph_trace(jax.random.key(4), (200,), 2000, dt, tau_lo, tau_hi))
    assert tr.mean() == pytest.approx(tau_hi / (tau_lo + tau_hi), rel=0.05)
    # P(low -> high over dt) from the matrix exponential of the 2-state generator
    from scipy.linalg import expm

    a, b = 1 / tau_lo, 1 / tau_hi
    p_up = expm(np.array([[-a, a], [b, -b]]) * dt)[0, 1]
    low = tr[:-1] == 0
    up = np.logical_and(low, tr[1:] == 1).sum() / low.sum()
    assert up == pytest.approx(p_up, rel=0.05)


def test_bad_noise_parameters_raise():
    with pytest.raises(ValueError, match="q_flicker"):
        devices.ReadNoise(q_flicker=-1.0)
    with pytest.raises(ValueError, match="f_max_hz"):
        devices.ReadNoise(f_max_hz=float("nan"))
