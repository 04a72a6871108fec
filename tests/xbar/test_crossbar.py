"""Crossbar reads: ideal limit, each non-ideality alone, gradients, jit/vmap, tiling."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar
from xbar import devices

M, N = 12, 5
MAP = xbar.DifferentialMapping(g_min=1e-6, g_max=25e-6)
PCM = devices.PCMStatistical()


def _weights(key=0, shape=(M, N)):
    return jax.random.uniform(jax.random.PRNGKey(key), shape, minval=-1, maxval=1)


def _inputs(key=1, b=4, m=M):
    return jax.random.uniform(jax.random.PRNGKey(key), (b, m), minval=-1, maxval=1)


def _ideal_xbar(dev, v_read, **kw):
    """An ``M x N`` crossbar of ``dev`` with ideal wires and converters (read at ``v_read``)."""
    return xbar.Crossbar.create(
        dev,
        (M, N),
        mapping=MAP,
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(v_read),
        adc=xbar.ideal_adc(),
        **kw,
    )


def _pcm_xbar(w, mapping=MAP, wiring=None, dac=None, adc=None, **kw):
    """A crossbar of statistical PCM programmed noise-free exactly to ``w``."""
    g = mapping.to_conductance(w)
    state = PCM.program(None, g)
    return xbar.Crossbar.create(
        PCM,
        w.shape,
        mapping=mapping,
        wiring=xbar.Wiring.ideal() if wiring is None else wiring,
        dac=xbar.ideal_dac() if dac is None else dac,
        adc=xbar.ideal_adc() if adc is None else adc,
        state=state,
        **kw,
    )


@pytest.mark.parametrize("mapping", [MAP, xbar.ReferenceMapping(g_min=1e-6, g_max=25e-6)])
def test_ideal_read_is_the_signed_matrix_product(mapping):
    w, x = _weights(), _inputs()
    xb = _pcm_xbar(w, mapping)
    np.testing.assert_allclose(xb.mvm(x), x @ w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xb.weights(), w, rtol=1e-10, atol=1e-12)


def test_adc_alone_errs_by_at_most_half_an_lsb():
    w, x = _weights(), _inputs(b=64)
    adc = xbar.ADC(bits=7, out_bound=8.0)
    y = _pcm_xbar(w, adc=adc).mvm(x)
    ref = x @ w
    assert np.all(np.abs(ref) < 8.0)
    assert np.max(np.abs(y - ref)) <= adc.lsb / 2 + 1e-12
    assert np.max(np.abs(y - ref)) > adc.lsb / 10  # it does quantise


def test_dac_alone_equals_product_of_quantised_inputs():
    w, x = _weights(), _inputs()
    for enc in (xbar.AmplitudeEncoding(), xbar.PulseWidthEncoding(), xbar.BitSerialEncoding()):
        dac = xbar.DAC(bits=4, encoding=enc)
        y = _pcm_xbar(w, dac=dac).mvm(x)
        xq = np.round(np.asarray(x) * 7) / 7
        np.testing.assert_allclose(y, xq @ w, rtol=1e-10, atol=1e-12)


def test_ir_drop_equals_the_circuit_solve():
    w, x = _weights(), _inputs()
    wiring = xbar.Wiring(r_wl=50.0, r_bl=80.0, r_src=20.0, r_sense=10.0)
    xb = _pcm_xbar(w, wiring=wiring)
    g = MAP.to_conductance(w)
    v = x * xb.dac.v_read
    sol = xbar.solve(g, v, r_wl=50.0, r_bl=80.0, r_src=20.0, r_sense=10.0)
    ref = MAP.combine(sol.i_out) / xb.i_unit
    for mode in (xbar.LinearSolve(), xbar.EffectiveMatrix(), xbar.NonlinearSolve()):
        np.testing.assert_allclose(xb.mvm(x, ir_drop=mode), ref, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(xb.with_effective_matrix().mvm(x), ref, rtol=1e-8, atol=1e-12)
    # with non-negative inputs IR drop only lowers the physical column currents
    vp = jnp.abs(v)
    sol_p = xbar.solve(g, vp, r_wl=50.0, r_bl=80.0, r_src=20.0, r_sense=10.0)
    assert np.all(sol_p.i_out <= vp @ g) and np.all(sol_p.i_out > 0)
    assert np.max(np.abs(ref - x @ w)) > 1e-4


def test_stuck_cells_change_exactly_the_faulty_columns():
    w, x = _weights(), _inputs()
    clean = _pcm_xbar(w)
    mask = jnp.zeros((M, 2 * N), jnp.int8).at[3, 2].set(1).at[7, 7].set(2)  # cols 1 and 3
    faulty = eqx.tree_at(lambda c: c.stuck, clean, mask, is_leaf=lambda v: v is None)
    d = np.abs(np.asarray(faulty.mvm(x) - clean.mvm(x)))
    assert np.all(d[:, [0, 2, 4]] == 0.0)
    assert np.all(d[:, [1, 3]] > 0.0)
    # the stuck-ON device reads g_max: column 1 changes by x_3 (g_max - G+) / scale
    g = MAP.to_conductance(w)
    expect = np.asarray(x[:, 3]) * float(MAP.g_max - g[3, 2]) / MAP.scale
    np.testing.assert_allclose(faulty.mvm(x)[:, 1] - clean.mvm(x)[:, 1], expect, rtol=1e-9)


def test_faults_drawn_at_the_requested_rate():
    xb = xbar.Crossbar.create(
        PCM, (100, 100), key=jax.random.PRNGKey(0), faults=devices.StuckAtFaults(0.1, 0.05)
    )
    assert np.mean(xb.stuck == 1) == pytest.approx(0.1, abs=0.01)
    assert np.mean(xb.stuck == 2) == pytest.approx(0.05, abs=0.008)


def test_read_noise_is_unbiased_and_grows_with_time():
    w = _weights()
    x = jnp.ones((1, M))
    state = PCM.program(None, MAP.to_conductance(w))
    xb = _pcm_xbar(w)
    xb = eqx.tree_at(lambda c: c.state, xb, state)
    keys = jax.random.split(jax.random.PRNGKey(3), 400)
    ys = jax.vmap(lambda k: xb.mvm(x, k))(keys)[:, 0]
    ref = (x @ w)[0]
    sem = np.std(ys, 0) / np.sqrt(len(keys))
    assert np.all(np.abs(np.mean(ys, 0) - ref) < 5 * sem + 1e-12)
    # later reads: drift lowers conductance; noise (relative) grows as sqrt(ln t)
    ys_late = jax.vmap(lambda k: xb.mvm(x, k, t_s=86400.0))(keys)[:, 0]
    ideal_late = xb.mvm(x, t_s=86400.0)[0]
    assert np.all(np.std(ys_late - ideal_late, 0) > 0)
    g_day = PCM.conductance(PCM.drift(state, 86400.0))
    np.testing.assert_allclose(ideal_late, (x @ MAP.from_conductance(g_day))[0], rtol=1e-9)


def test_global_drift_compensation_restores_the_scale():
    w = jnp.abs(_weights())  # all positive: drift shrinks every output
    x = _inputs(b=16)
    xb = _pcm_xbar(w)
    t = 86400.0 * 30
    err_raw = np.mean(np.abs(xb.mvm(x, t_s=t) - x @ w))
    err_gdc = np.mean(np.abs(xb.mvm(x, t_s=t, drift_compensation=True) - x @ w))
    assert err_gdc < 0.3 * err_raw


def test_gradients_match_finite_differences():
    w, x = _weights(), _inputs()
    wiring = xbar.Wiring(r_wl=40.0, r_bl=40.0)
    xb = _pcm_xbar(w, wiring=wiring, cell=xbar.cells.OneTOneR(r_access=2e3))

    def loss(wt, mode):
        return jnp.sum(jnp.sin(xb.mvm(x, weights=wt, ir_drop=mode)))

    dw = jax.random.normal(jax.random.PRNGKey(5), w.shape) * 0.3  # directions inside window
    w0 = w * 0.5
    for mode in (xbar.EffectiveMatrix(),):
        g = jax.grad(loss)(w0, mode)
        h = 1e-5
        fd = (loss(w0 + h * dw, mode) - loss(w0 - h * dw, mode)) / (2 * h)
        assert float(jnp.sum(g * dw)) == pytest.approx(float(fd), rel=1e-6)


def test_jit_and_vmap_over_instances():
    x = _inputs()
    dev = devices.StanfordPKU(r_series=2e3)

    def make(k):
        return _ideal_xbar(dev, 0.1, key=k, variability={"i0": 0.1}, gap=1.2e-9)

    @jax.jit
    def one(k):
        return make(k).mvm(x)

    ys = jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0), 8))
    assert ys.shape == (8, 4, N)
    # lognormal spread of I0 makes instances differ; each equals its own x @ G directly
    assert np.std(ys[:, 0, 0]) > 0
    k = jax.random.split(jax.random.PRNGKey(0), 8)[2]
    xb = make(k)
    g = xb.device.current(xb.state, 0.1) / 0.1
    np.testing.assert_allclose(ys[2], x @ MAP.from_conductance(g), rtol=1e-9)


def test_nonlinear_cells_without_wires_sum_device_currents():
    dev = devices.StanfordPKU()
    gap = jax.random.uniform(jax.random.PRNGKey(2), (M, 2 * N), minval=1.0e-9, maxval=1.7e-9)
    xb = _ideal_xbar(dev, 0.5, gap=gap)
    x = _inputs()
    state = xb.state
    i = jnp.sum(dev.current(state, (x * 0.5)[:, :, None]), axis=1)
    ref = MAP.combine(i) / xb.i_unit
    np.testing.assert_allclose(xb.mvm(x, ir_drop=xbar.NonlinearSolve()), ref, rtol=1e-9)
    # sinh I-V: the linear (chord at v_read) read overestimates nothing at |x| = 1 only
    assert np.max(np.abs(xb.mvm(x, ir_drop=xbar.NoWires()) - ref)) > 1e-6


def test_tiled_crossbar_adds_partial_sums():
    w, x = _weights(shape=(10, 7)), _inputs(m=10)
    tc = xbar.TiledCrossbar.create(
        PCM,
        (10, 7),
        (4, 3),
        key=jax.random.PRNGKey(0),
        mapping=MAP,
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
    )
    assert tc.grid == (3, 3)
    np.testing.assert_allclose(tc.mvm(x, weights=w), x @ w, rtol=1e-10, atol=1e-12)
    # program each tile's devices (noise-free statistical PCM) and read them
    tc = tc.map_tiles(
        lambda t, wt: eqx.tree_at(lambda c: c.state, t, PCM.program(None, MAP.to_conductance(wt))),
        tc.split(w),
    )
    np.testing.assert_allclose(tc.mvm(x), x @ w, rtol=1e-10, atol=1e-12)
    # with an ADC per tile, each partial sum is quantised: error <= R * lsb / 2
    adc = xbar.ADC(bits=6, out_bound=4.0)
    tq = eqx.tree_at(
        lambda t: t.tiles.adc, tc, jax.vmap(jax.vmap(lambda _: adc))(jnp.zeros((3, 3)))
    )
    assert np.max(np.abs(tq.mvm(x) - x @ w)) <= 3 * adc.lsb / 2 + 1e-12


def test_create_validates():
    with pytest.raises(ValueError, match="key"):
        xbar.Crossbar.create(PCM, (2, 2), variability={"g_max": 0.1})
    with pytest.raises(ValueError, match="cell"):
        xbar.Crossbar.create(PCM, (2, 2), cell="2T2R")
    with pytest.raises(ValueError, match="r_wl"):
        xbar.Wiring(r_wl=-1.0)
    with pytest.raises(ValueError, match="ir_drop"):
        _pcm_xbar(_weights()).mvm(_inputs(), ir_drop="magic")


# ---- read noise: drawn at the outputs from per-cell moments vs. drawn per cell ------------

DAY = 86400.0


# All weights positive: with a differential pair every G- device is an "off" device at
# g_min = 0.2 uS (0.8 % of g_max), where Q_s saturates at 0.2 and one day after programming
# sigma_read / G ~ 1: the read is clamped at 0 with probability ~ 16 %.
OFF = xbar.DifferentialMapping(g_min=0.2e-6, g_max=25e-6)


def _noisy_pcm_xbar(mapping, wiring=None):
    """Statistical PCM programmed (noise-free) to positive weights."""
    w = jax.random.uniform(jax.random.PRNGKey(4), (M, N), minval=0.2, maxval=1.0)
    return _pcm_xbar(w, mapping, wiring=wiring)


def _reads(xb, x, key, b, **kw):
    """``b`` independent reads of the same input (one call: each batch row is a read)."""
    return np.asarray(xb.mvm(jnp.tile(x, (b, 1)), key, **kw))


@pytest.mark.parametrize(
    "mapping, wiring",
    [
        (OFF, None),
        (OFF, xbar.Wiring(r_wl=40.0, r_bl=60.0)),
        (xbar.ReferenceMapping(g_min=0.2e-6, g_max=25e-6), None),
    ],
)
def test_output_read_noise_matches_monte_carlo_of_per_cell_noise(mapping, wiring):
    # The fast path draws B x N normals with the moments of the column sums; the reference
    # draws every cell of every read with device.read_noise. Same mean (incl. the bias of
    # the clamp at G = 0), same variance, same covariance between columns (the shared
    # reference column), within the sampling error of 20000 reads.
    xb = _noisy_pcm_xbar(mapping, wiring)
    x = jnp.linspace(0.3, 1.0, M)
    b = 20000
    kw = dict(t_s=DAY, ir_drop=xbar.NoWires() if wiring is None else xbar.EffectiveMatrix())
    y_fast = _reads(xb, x, jax.random.PRNGKey(11), b, **kw)
    y_mc = _reads(xb, x, jax.random.PRNGKey(12), b, read_noise=xbar.PerRead(per_cell=True), **kw)
    y0 = np.asarray(xb.mvm(x, **kw))  # noiseless
    se = np.sqrt(np.var(y_fast, 0) / b + np.var(y_mc, 0) / b)
    assert np.all(np.abs(y_fast.mean(0) - y_mc.mean(0)) < 5 * se)
    if mapping is OFF:  # the clamp at 0 raises the mean of the G- devices: columns read low
        # (summed over the columns, the shift is > 8 standard errors of the mean)
        for y in (y_mc, y_fast):
            tot = y.sum(1)
            assert np.mean(tot) - y0.sum() < -6 * np.std(tot) / np.sqrt(b)
    # covariance matrix of the columns (relative error of a variance ~ sqrt(2 / b) = 1 %)
    c_fast, c_mc = np.cov(y_fast.T), np.cov(y_mc.T)
    np.testing.assert_allclose(np.diag(c_fast), np.diag(c_mc), rtol=0.06)
    scale = np.sqrt(np.outer(np.diag(c_mc), np.diag(c_mc)))
    off = ~np.eye(N, dtype=bool)
    assert np.all(np.abs(c_fast - c_mc)[off] < 6 * scale[off] / np.sqrt(b))
    corr = (c_mc / scale)[off]
    if isinstance(mapping, xbar.ReferenceMapping):
        assert np.all(corr > 20 / np.sqrt(b))  # the reference cells' noise is common
    else:
        assert np.all(np.abs(corr) < 5 / np.sqrt(b))  # independent cells, independent columns


def test_read_noise_is_independent_per_read_unless_snapshot():
    xb = _noisy_pcm_xbar(OFF)
    x = jnp.ones((3, M))
    k = jax.random.PRNGKey(5)
    for mode in (xbar.PerRead(), xbar.PerRead(per_cell=True)):
        y = np.asarray(xb.mvm(x, k, read_noise=mode))
        assert np.all(y[0] != y[1]) and np.all(y[1] != y[2])
        np.testing.assert_array_equal(y, np.asarray(xb.mvm(x, k, read_noise=mode)))  # same key
        assert np.all(y != np.asarray(xb.mvm(x, jax.random.PRNGKey(6), read_noise=mode)))
    y = np.asarray(xb.mvm(x, k, read_noise=xbar.PerCall()))
    np.testing.assert_array_equal(y[0], y[1])  # one draw of the array for the whole call
    # bit-serial phases are separate reads too: the phases of one input see different noise,
    # so the result differs from the amplitude read of the quantised input
    bs = eqx.tree_at(lambda c: c.dac, xb, xbar.DAC(bits=4, encoding=xbar.BitSerialEncoding()))
    assert np.all(np.asarray(bs.mvm(x, k))[0] != np.asarray(bs.mvm(x, k))[1])


def test_frozen_read_noise_is_one_per_call_draw_kept_across_calls():
    # with_read_noise_frozen(k) keeps the draw that a PerCall read with the same noise key
    # takes; reads then draw no device noise; over many draws each read has the marginal
    # distribution of a per-read draw (mean and variance within the sampling error).
    wiring = xbar.Wiring(r_wl=40.0, r_bl=60.0)
    xb = _noisy_pcm_xbar(OFF, wiring).with_effective_matrix(DAY)
    x = jnp.linspace(0.3, 1.0, M)
    k = jax.random.PRNGKey(21)
    frozen = xb.with_read_noise_frozen(jax.random.split(k, 4)[0])
    np.testing.assert_allclose(
        frozen.mvm(x), xb.mvm(jnp.stack([x, x]), k, read_noise=xbar.PerCall())[1], rtol=1e-12
    )
    np.testing.assert_array_equal(frozen.mvm(x), frozen.mvm(x, jax.random.PRNGKey(3)))
    assert np.all(np.asarray(frozen.mvm(x)) != np.asarray(xb.mvm(x)))
    b = 4000
    keys = jax.random.split(jax.random.PRNGKey(22), b)
    y_frozen = np.asarray(jax.vmap(lambda kk: xb.with_read_noise_frozen(kk).mvm(x))(keys))
    y_read = _reads(xb, x, jax.random.PRNGKey(23), b)
    se = np.sqrt(np.var(y_frozen, 0) / b + np.var(y_read, 0) / b)
    assert np.all(np.abs(y_frozen.mean(0) - y_read.mean(0)) < 5 * se)
    np.testing.assert_allclose(np.var(y_frozen, 0), np.var(y_read, 0), rtol=0.15)
    # programming again (a new state) or a new cache drops the frozen draw
    assert not frozen.with_state(frozen.state).noise_frozen
    assert not frozen.with_effective_matrix(DAY).noise_frozen
    with pytest.raises(ValueError, match="frozen read-noise"):
        frozen.mvm(x, ir_drop=xbar.LinearSolve())
    with pytest.raises(ValueError, match="key"):
        xb.with_read_noise_frozen(None)


def test_sense_amplifier_noise_joins_the_output_read_noise():
    # The moment path draws read noise and the sense amplifier's noise in one normal of the
    # summed variance; the per-cell path draws them separately: same variance per column.
    sense = xbar.SenseAmp(noise_a=0.3e-6)
    xb = eqx.tree_at(lambda c: c.sense, _noisy_pcm_xbar(OFF), sense)
    x = jnp.linspace(0.3, 1.0, M)
    b = 20000
    y_fast = _reads(xb, x, jax.random.PRNGKey(31), b, t_s=DAY)
    y_mc = _reads(xb, x, jax.random.PRNGKey(32), b, t_s=DAY, read_noise=xbar.PerRead(per_cell=True))
    y_quiet = _reads(_noisy_pcm_xbar(OFF), x, jax.random.PRNGKey(33), b, t_s=DAY)
    np.testing.assert_allclose(np.var(y_fast, 0), np.var(y_mc, 0), rtol=0.06)
    extra = (0.3e-6 / xb.i_unit) ** 2  # the sense noise in normalised output units
    np.testing.assert_allclose(np.var(y_fast, 0) - np.var(y_quiet, 0), extra, rtol=0.25)


def test_read_noise_moments_match_the_device_sampler():
    n_draws = 200_000
    keys = jax.random.split(jax.random.PRNGKey(9), n_draws)
    # statistical PCM: from deep in the clamp (0.1 uS) to the top of the window, one day old
    g = jnp.array([0.1e-6, 0.5e-6, 2e-6, 10e-6, 25e-6])
    st = PCM.drift(PCM.program(None, g), DAY)
    # Stanford-PKU with the default 1/f read noise (Gaussian)
    rram = devices.StanfordPKU()
    st_r = rram.init_state((3,), gap=jnp.array([0.3e-9, 1.0e-9, 1.6e-9]))
    for dev, state in ((PCM, st), (rram, st_r)):
        mean, var = dev.read_noise_moments(state, 0.1)
        draws = np.asarray(jax.vmap(lambda k, d=dev, s=state: d.read_noise(s, k, 0.1))(keys))
        sd = np.sqrt(var)
        assert np.all(np.abs(draws.mean(0) - mean) < 5 * sd / np.sqrt(n_draws))
        np.testing.assert_allclose(draws.var(0), var, rtol=0.02)
    mean, var = PCM.read_noise_moments(st, 0.1)
    assert float(mean[0]) > 1.05 * float(PCM.conductance(st)[0])  # the clamp biases upward
    # random telegraph noise is not Gaussian: no moments, reads draw it per cell
    rtn = devices.StanfordPKU(noise=devices.ReadNoise(rtn_amplitude=0.3))
    assert rtn.read_noise_moments(st_r, 0.1) is None
    xb = _ideal_xbar(rtn, 0.1, gap=1.0e-9)
    x, k = _inputs(), jax.random.PRNGKey(2)
    np.testing.assert_array_equal(
        xb.mvm(x, k), xb.mvm(x, k, read_noise=xbar.PerRead(per_cell=True))
    )


def test_cached_matrix_carries_the_read_noise_of_its_time():
    wiring = xbar.Wiring(r_wl=40.0, r_bl=60.0)
    xb = _noisy_pcm_xbar(OFF, wiring)
    x, k = _inputs(), jax.random.PRNGKey(3)
    cached = xb.with_effective_matrix(t_s=DAY)
    assert cached.read_stats is not None
    ref = xb.mvm(x, k, t_s=DAY, ir_drop=xbar.EffectiveMatrix())
    np.testing.assert_allclose(cached.mvm(x, k), ref, rtol=1e-9)
    np.testing.assert_allclose(
        cached.mvm(x, k, read_noise=xbar.PerRead(per_cell=True)),
        xb.mvm(
            x, k, t_s=DAY, ir_drop=xbar.EffectiveMatrix(), read_noise=xbar.PerRead(per_cell=True)
        ),
        rtol=1e-9,
    )
    # programming drops the cache
    assert xb.with_state(xb.state).read_stats is None
    with pytest.raises(ValueError, match="g_eff"):
        xb.with_cached_matrix(jnp.zeros((M, N)))


def test_noisy_read_jit_vmap_and_gradient():
    xb = _noisy_pcm_xbar(OFF)
    x = _inputs().at[0].set(0.0)  # a zero input: no noise, gradient must stay finite
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    ys = eqx.filter_jit(jax.vmap(lambda k: xb.mvm(x, k)))(keys)
    assert ys.shape == (3, 4, N)
    np.testing.assert_array_equal(ys[:, 0], 0.0)
    np.testing.assert_allclose(ys[1], xb.mvm(x, keys[1]), rtol=1e-12)
    g = jax.grad(lambda x: jnp.sum(xb.mvm(x, keys[0]) ** 2))(x)
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="read_noise"):
        xb.mvm(x, keys[0], read_noise="white")
