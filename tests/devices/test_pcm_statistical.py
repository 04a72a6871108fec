"""Statistical PCM (Joshi 2020 / aihwkit PCMLikeNoiseModel), drift compensation, and the
PCM training-update statistics (Nandakumar et al., Front. Neurosci. 14, 406 (2020)). References: Joshi et al.,
Nat. Commun. 11, 2473 (2020), Eqs. of the programming, drift and read-noise models; targets V6, V8."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from xbar import devices

G_MAX = 25e-6
N_MC = 1_000_000

# [DER] table of reference 3.1: g_T -> (sigma_prog [uS], mu_nu, sigma_nu, Q_s)
TABLE = {
    1.0: (1.055, 0.049, 0.008, 0.0088),
    0.5: (0.953, 0.049, 0.008, 0.0138),
    0.1: (0.448, 0.0601, 0.0229, 0.0393),
    0.01: (0.283, 0.0958, 0.045, 0.1756),
}
# t_inference -> (sqrt(ln((t + t_r)/(2 t_r))), (t/t0)^-0.049, (t/t0)^-0.1)
TIME_TABLE = {
    1.0: (4.190, 0.998, 0.995),
    3600.0: (4.765, 0.775, 0.595),
    86400.0: (5.087, 0.664, 0.433),
    365 * 86400.0: (5.637, 0.497, 0.240),
}


@pytest.fixture(scope="module")
def model():
    return devices.PCMStatistical()


def _rectified_normal_std(mu, sigma):
    """Standard deviation of max(Y, 0), Y ~ N(mu, sigma^2)."""
    a = mu / sigma
    m1 = mu * norm.cdf(a) + sigma * norm.pdf(a)
    m2 = (mu**2 + sigma**2) * norm.cdf(a) + mu * sigma * norm.pdf(a)
    return np.sqrt(m2 - m1**2)


def _folded_normal_moments(mu, sigma):
    """Mean and standard deviation of |Y|, Y ~ N(mu, sigma^2)."""
    mean = sigma * np.sqrt(2 / np.pi) * np.exp(-(mu**2) / (2 * sigma**2)) + mu * (
        1 - 2 * norm.cdf(-mu / sigma)
    )
    return mean, np.sqrt(mu**2 + sigma**2 - mean**2)


@pytest.mark.parametrize("g_t", list(TABLE))
def test_monte_carlo_reproduces_reference_table(model, g_t):
    sigma_ref, mu_ref, sig_nu_ref, q_ref = TABLE[g_t]
    # published parameters (pre-fold) against the table, 1 %
    mu, sig = model.nu_stats(g_t * G_MAX)
    assert float(mu) == pytest.approx(mu_ref, rel=0.01)
    assert float(sig) == pytest.approx(sig_nu_ref, rel=0.01)
    assert float(model.q_s(g_t * G_MAX)) == pytest.approx(q_ref, rel=0.01)
    # Monte-Carlo with 1e6 devices
    st = model.program(jax.random.key(int(g_t * 1000)), jnp.full((N_MC,), g_t * G_MAX))
    dev = np.asarray(st.g_prog) / 1e-6
    sigma_expected = _rectified_normal_std(g_t * 25.0, sigma_ref)  # clamp at G >= 0
    assert np.std(dev) == pytest.approx(sigma_expected, rel=0.01)
    if g_t >= 0.1:  # no clamping here: plain Gaussian with the table sigma
        assert np.std(dev) == pytest.approx(sigma_ref, rel=0.01)
        assert np.mean(dev) == pytest.approx(g_t * 25.0, abs=4 * sigma_ref / np.sqrt(N_MC))
    nu = np.asarray(st.nu)
    f_mean, f_std = _folded_normal_moments(float(mu), float(sig))
    assert np.mean(nu) == pytest.approx(f_mean, rel=0.01)
    assert np.mean(nu) == pytest.approx(mu_ref, rel=0.01)  # folded mean = mu to 1 % here
    assert np.std(nu) == pytest.approx(f_std, rel=0.01)


@pytest.mark.parametrize("t_inf", list(TIME_TABLE))
def test_drift_factors_and_read_noise_growth(model, t_inf):
    growth, f049, f01 = TIME_TABLE[t_inf]
    s = model.init_state((2,), g_prog=G_MAX, g_target=G_MAX, nu=jnp.array([0.049, 0.1]), t_s=t_inf)
    g = np.asarray(model.conductance(s)) / G_MAX
    assert g[0] == pytest.approx(f049, abs=6e-4)
    assert g[1] == pytest.approx(f01, abs=6e-4)
    assert float(model.noise_growth(t_inf)) == pytest.approx(growth, abs=6e-4)
    # Monte-Carlo read noise: sigma = G_drift Q_s sqrt(ln(...)) (Q_s = 0.0088 at g = 1)
    s1 = model.init_state((N_MC,), g_prog=G_MAX, g_target=G_MAX, nu=0.049)
    reads = np.asarray(model.read(s1, jax.random.key(1), t_s=t_inf))
    g_d = G_MAX * f049
    assert np.std(reads) / g_d == pytest.approx(0.0088 * growth, rel=0.01)
    assert np.mean(reads) / g_d == pytest.approx(1.0, abs=1e-3)


def test_nu_is_kept_per_device(model):
    st = model.program(jax.random.key(0), jnp.full((1000,), 0.1 * G_MAX))
    g1 = model.conductance(model.drift(st, 10.0))
    g2 = model.conductance(model.drift(st, 1e5))
    expected = ((1e5 + model.t0_s) / (10.0 + model.t0_s)) ** (-np.asarray(st.nu))
    np.testing.assert_allclose(g2 / g1, expected, rtol=1e-10)


def test_global_drift_compensation_one_day(model):
    key = jax.random.key(42)
    k_t, k_p, k_r0, k_r1, k_x = jax.random.split(key, 5)
    rows, cols = 256, 128
    g_t = jax.random.uniform(k_t, (rows, cols)) * G_MAX
    st = model.program(k_p, g_t)
    g0 = model.read(st, k_r0, t_s=0.0)
    g_day = model.read(st, k_r1, t_s=86400.0)
    alpha = devices.drift_compensation(g0, g_day)
    x = jax.random.uniform(k_x, (64, rows))  # test inputs differ from the calibration input
    y0 = np.asarray(x @ g0).mean()
    y_raw = np.asarray(x @ g_day).mean()
    y_comp = float(alpha) * y_raw
    assert abs(y_raw / y0 - 1) > 0.1  # drift is large
    assert y_comp / y0 == pytest.approx(1.0, abs=0.01)
    per_col = devices.drift_compensation(g0, g_day, per_column=True)
    assert per_col.shape == (cols,)
    np.testing.assert_allclose(
        per_col, np.asarray(g0).sum(0) / np.asarray(g_day).sum(0), rtol=1e-10
    )


# ---- training-update statistics (V8) --------------------------------------------------------
def test_training_update_mean_curve_v8():
    upd = devices.PCMTrainingUpdate()
    g = np.asarray(upd.pulse_curve(0.0, 60)) / upd.g_max
    for n, ref in ((1, 0.141), (10, 0.462), (20, 0.609), (50, 0.865)):
        assert g[n - 1] == pytest.approx(ref, rel=0.05)
    assert np.all(np.diff(g) >= 0) and g[-1] > 0.9 and g[-1] <= 1.0


def test_training_update_step_statistics():
    upd = devices.PCMTrainingUpdate()
    g = jnp.full((N_MC,), 0.3 * upd.g_max)
    steps = np.asarray(upd.set_pulse(g, jax.random.key(5)) - g)
    w = 0.6
    dw = 0.01 * (1 + 27.235 * np.exp(2.5 * -w))  # ExpStep mean step at w (reference 3.4)
    std = 0.6 * (dw + 0.042 + 0.108 * w)
    scale = upd.g_max / upd.w_max
    assert np.mean(steps) / scale == pytest.approx(dw, rel=0.01)
    assert np.std(steps) / scale == pytest.approx(std, rel=0.01)


def test_apply_pulse_set_and_reset(model):
    st = model.init_state((3,))
    st = model.apply_pulse(st, jnp.array([1.0, -1.0, 0.0]), 100e-9)
    g = np.asarray(st.g_prog) / G_MAX
    assert g[0] == pytest.approx(0.141, rel=0.01)  # one SET pulse from G = 0
    assert g[1] == pytest.approx(0.01 / 2.0, rel=1e-9)  # RESET value of the preset
    assert g[2] == 0.0
    np.testing.assert_array_equal(st.t_s, 0.0)


# ---- JAX standards --------------------------------------------------------------------------
def test_jit_vmap_keys_and_gradient(model):
    g_t = jnp.linspace(0.0, G_MAX, 64)
    k = jax.random.key(9)
    a = model.program(k, g_t)
    b = jax.jit(model.program)(k, g_t)
    np.testing.assert_allclose(a.g_prog, b.g_prog, rtol=1e-12)
    c = model.program(jax.random.key(10), g_t)
    assert not np.allclose(a.g_prog, c.g_prog, rtol=1e-6, atol=0)
    reads = jax.vmap(lambda kk: model.read(a, kk, t_s=100.0))(jax.random.split(k, 4))
    assert reads.shape == (4, 64)
    assert not np.allclose(reads[0], reads[1])

    def f(t):
        return model.conductance(model.drift(a, t)).sum()

    h = 1e-3
    fd = (f(100.0 + h) - f(100.0 - h)) / (2 * h)
    assert float(jax.grad(f)(100.0)) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (devices.PCMStatistical, {"g_max": -1.0}),
        (devices.PCMStatistical, {"t0_s": 0.0}),
        (devices.PCMStatistical, {"t_read_s": float("nan")}),
        (devices.PCMStatistical, {"drift_scale": -1.0}),
        (devices.PCMTrainingUpdate, {"w_min": 3.0}),
        (devices.PCMTrainingUpdate, {"dw_min": 0.0}),
    ],
)
def test_bad_parameters_raise(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)


def test_target_out_of_range_raises(model):
    with pytest.raises(Exception, match="g_target"):
        model.program(jax.random.key(0), jnp.array([2 * G_MAX]))


def test_reset_spread_fixed_per_device_plus_per_reset():
    """aihwkit's reset statistics: w = reset_i + reset_std xi with a per-device reset_i
    (spread reset_dtod, drawn once) and a fresh per-reset part: two resets of the same
    device correlate with cov = reset_dtod^2, their difference has sd sqrt(2) reset_std."""
    upd = devices.PCMTrainingUpdate(reset=0.5)  # away from the clip at w_min = 0
    n = 20_000
    upd_i = devices.sample_parameters(upd, jax.random.PRNGKey(0), (n,), upd.preset_variability())
    g = jnp.zeros(n)
    to_w = np.asarray(upd_i.w_max) / upd.g_max  # per-device w_max (sampled too)
    w1 = np.asarray(upd_i.reset_pulse(g, jax.random.PRNGKey(1))) * to_w
    w2 = np.asarray(upd_i.reset_pulse(g, jax.random.PRNGKey(2))) * to_w
    assert np.mean(w1) == pytest.approx(0.5, abs=4 * 0.022 / np.sqrt(n))
    assert np.std(w1 - w2) == pytest.approx(np.sqrt(2) * upd.reset_std, rel=0.03)
    cov = np.mean((w1 - w1.mean()) * (w2 - w2.mean()))
    assert cov == pytest.approx(upd.reset_dtod**2, rel=0.06)
