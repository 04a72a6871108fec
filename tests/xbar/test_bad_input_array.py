"""Bad input across the public API of the array layer (issue 15): every call in the table
either returns a finite, correct result or raises ``ValueError`` naming the parameter.

NaN, inf, wrong sign, wrong shape, empty arrays, integer dtypes, lists and both key types,
for Crossbar, TiledCrossbar, program, apply_pulses, bias_scheme, the peripherals, the
mappings, the energy functions, calibration and the presets.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar
from xbar import devices

NAN, INF = float("nan"), float("inf")
PCM = devices.PCMStatistical()
MAP = xbar.DifferentialMapping(g_min=0.0, g_max=20e-6)
M, N = 4, 3
W = jnp.array([[0.5, -0.2, 0.0], [0.1, 0.9, -1.0], [0.0, 0.3, 0.4], [-0.6, 0.0, 0.2]])
WV = xbar.WriteVerify(tol=0.02, max_pulses=50, v_set0=1.0, v_set_step=0.0, v_reset0=-1.0)


def _xb(wiring=None):
    return xbar.Crossbar.create(
        PCM,
        (M, N),
        mapping=MAP,
        wiring=xbar.Wiring.ideal() if wiring is None else wiring,
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
        state=PCM.program(None, MAP.to_conductance(W)),
    )


XB = _xb()
X = jnp.linspace(-1.0, 1.0, M)
ROWS, COLS = jnp.arange(M) == 1, jnp.arange(2 * N) == 2
RV, CV = xbar.bias_scheme((M, 2 * N), ROWS, COLS, 1.0)

# (id, call, parameter named in the ValueError)
RAISES = [
    # Crossbar.create
    ("create device class", lambda: xbar.Crossbar.create(devices.PCMStatistical, (2, 2)), "device"),
    ("create not a device", lambda: xbar.Crossbar.create("pcm", (2, 2)), "device"),
    ("create zero shape", lambda: xbar.Crossbar.create(PCM, (0, 2)), "shape"),
    ("create negative shape", lambda: xbar.Crossbar.create(PCM, (-1, 2)), "shape"),
    ("create float shape", lambda: xbar.Crossbar.create(PCM, (2.5, 2)), "shape"),
    ("create 1-D shape", lambda: xbar.Crossbar.create(PCM, (2,)), "shape"),
    (
        "create state of wrong shape",
        lambda: xbar.Crossbar.create(PCM, (2, 2), state=PCM.init_state((3, 3))),
        "state",
    ),
    (
        "create mapping class",
        lambda: xbar.Crossbar.create(PCM, (2, 2), mapping=xbar.DifferentialMapping),
        "mapping",
    ),
    ("create cell string", lambda: xbar.Crossbar.create(PCM, (2, 2), cell="1T1R"), "cell"),
    ("create adc class", lambda: xbar.Crossbar.create(PCM, (2, 2), adc=xbar.ADC), "adc"),
    (
        "create variability without key",
        lambda: xbar.Crossbar.create(PCM, (2, 2), variability={"g_max": 0.1}),
        "key",
    ),
    ("wiring NaN", lambda: xbar.Wiring(r_wl=NAN), "r_wl"),
    ("wiring negative", lambda: xbar.Wiring(r_bl=-1.0), "r_bl"),
    ("wiring inf", lambda: xbar.Wiring(r_src=INF), "r_src"),
    # mvm
    ("mvm wrong length", lambda: XB.mvm(jnp.ones(M + 1)), "x"),
    ("mvm empty", lambda: XB.mvm(jnp.ones((0,))), "x"),
    ("mvm scalar", lambda: XB.mvm(1.0), "x"),
    ("mvm NaN", lambda: XB.mvm(X.at[0].set(NAN)), "x"),
    ("mvm inf", lambda: XB.mvm(X.at[1].set(INF)), "x"),
    ("mvm t_s negative", lambda: XB.mvm(X, t_s=-1e9), "t_s"),
    ("mvm t_s NaN", lambda: XB.mvm(X, t_s=NAN), "t_s"),
    ("mvm t_s inf", lambda: XB.mvm(X, t_s=INF), "t_s"),
    ("mvm bad key", lambda: XB.mvm(X, 3), "key"),
    ("mvm key array", lambda: XB.mvm(X, jax.random.split(jax.random.key(0), 2)), "key"),
    ("mvm ir_drop", lambda: XB.mvm(X, ir_drop="exact"), "ir_drop"),
    ("mvm read_noise", lambda: XB.mvm(X, read_noise="pink"), "read_noise"),
    ("mvm weights shape", lambda: XB.mvm(X, weights=W[:2]), "weights"),
    ("mvm weights NaN", lambda: XB.mvm(X, weights=W.at[0, 0].set(NAN)), "weights"),
    ("conductances t_s negative", lambda: XB.conductances(-1.0), "t_s"),
    ("with_effective_matrix t_s NaN", lambda: XB.with_effective_matrix(t_s=NAN), "t_s"),
    ("with_cached_matrix shape", lambda: XB.with_cached_matrix(jnp.zeros((M, N))), "g_eff"),
    # TiledCrossbar
    (
        "tiled zero shape",
        lambda: xbar.TiledCrossbar.create(PCM, (0, 3), (2, 2), key=jax.random.key(0)),
        "shape",
    ),
    (
        "tiled negative shape",
        lambda: xbar.TiledCrossbar.create(PCM, (4, -3), (2, 2), key=jax.random.key(0)),
        "shape",
    ),
    (
        "tiled zero tile",
        lambda: xbar.TiledCrossbar.create(PCM, (4, 3), (0, 2), key=jax.random.key(0)),
        "tile_shape",
    ),
    ("tiled no key", lambda: xbar.TiledCrossbar.create(PCM, (4, 3), (2, 2), key=None), "key"),
    # program
    (
        "program targets NaN",
        lambda: xbar.program(XB, W.at[0, 0].set(NAN), WV, jax.random.key(0)),
        "targets",
    ),
    (
        "program targets inf",
        lambda: xbar.program(XB, W.at[0, 0].set(INF), WV, jax.random.key(0)),
        "targets",
    ),
    (
        "program targets above range",
        lambda: xbar.program(XB, W * 3, WV, jax.random.key(0)),
        "targets",
    ),
    ("program targets shape", lambda: xbar.program(XB, W[:, :2], WV, jax.random.key(0)), "targets"),
    (
        "program targets empty",
        lambda: xbar.program(XB, jnp.zeros((0, N)), WV, jax.random.key(0)),
        "targets",
    ),
    (
        "program conductance targets negative",
        lambda: xbar.program(
            XB, -jnp.ones((M, 2 * N)) * 1e-6, WV, jax.random.key(0), conductance_targets=True
        ),
        "conductance targets",
    ),
    (
        "program scheme class",
        lambda: xbar.program(XB, W, xbar.WriteVerify, jax.random.key(0)),
        "scheme",
    ),
    ("program no key", lambda: xbar.program(XB, W, WV, None), "key"),
    # WriteVerify / OpenLoop
    ("wv v_set0 NaN", lambda: xbar.WriteVerify(v_set0=NAN), "v_set0"),
    ("wv v_set0 above max", lambda: xbar.WriteVerify(v_set0=2.5, v_set_max=2.0), "v_set0"),
    ("wv v_reset0 zero", lambda: xbar.WriteVerify(v_reset0=0.0), "v_reset0"),
    ("wv backoff negative", lambda: xbar.WriteVerify(backoff=-1), "backoff"),
    ("wv tol zero", lambda: xbar.WriteVerify(tol=0.0), "tol"),
    ("wv tol NaN", lambda: xbar.WriteVerify(tol=NAN), "tol"),
    ("wv tol above 1", lambda: xbar.WriteVerify(tol=2.0), "tol"),
    ("wv max_pulses zero", lambda: xbar.WriteVerify(max_pulses=0), "max_pulses"),
    ("wv width negative", lambda: xbar.WriteVerify(width_set_s=-1e-9), "width_set_s"),
    ("wv step inf", lambda: xbar.WriteVerify(v_set_step=INF), "v_set_step"),
    ("ol v_grid empty", lambda: xbar.OpenLoop(v_grid=jnp.zeros((0,))), "v_grid"),
    ("ol v_grid NaN", lambda: xbar.OpenLoop(v_grid=jnp.array([1.0, NAN])), "v_grid"),
    ("ol width zero", lambda: xbar.OpenLoop(v_grid=jnp.ones(2), width_s=0.0), "width_s"),
    # apply_pulses / bias_scheme
    ("pulses width negative", lambda: xbar.apply_pulses(XB, RV, CV, -1e-9), "width_s"),
    ("pulses width NaN", lambda: xbar.apply_pulses(XB, RV, CV, NAN), "width_s"),
    ("pulses width inf", lambda: xbar.apply_pulses(XB, RV, CV, INF), "width_s"),
    ("pulses row_v NaN", lambda: xbar.apply_pulses(XB, RV.at[0].set(NAN), CV, 1e-8), "row_v"),
    ("pulses col_v shape", lambda: xbar.apply_pulses(XB, RV, CV[:2], 1e-8), "col_v"),
    ("pulses bad key", lambda: xbar.apply_pulses(XB, RV, CV, 1e-8, "key"), "key"),
    ("bias zero shape", lambda: xbar.bias_scheme((0, 3), ROWS, COLS, 1.0), "shape"),
    ("bias v_write NaN", lambda: xbar.bias_scheme((M, 2 * N), ROWS, COLS, NAN), "v_write"),
    ("bias scheme", lambda: xbar.bias_scheme((M, 2 * N), ROWS, COLS, 1.0, "V/4"), "scheme"),
    ("bias mask shape", lambda: xbar.bias_scheme((M, 2 * N), ROWS[:2], COLS, 1.0), "rows"),
    # peripherals
    ("dac bits", lambda: xbar.DAC(bits=1), "bits"),
    ("dac v_read NaN", lambda: xbar.DAC(v_read=NAN), "v_read"),
    ("dac v_read negative", lambda: xbar.DAC(v_read=-0.2), "v_read"),
    ("noisy dac noise negative", lambda: xbar.NoisyDAC(noise_v=-1.0), "noise_v"),
    ("adc gain NaN", lambda: xbar.ADC(col_gain=NAN), "col_gain"),
    ("adc gain inf", lambda: xbar.ADC(col_gain=INF), "col_gain"),
    ("adc offset inf", lambda: xbar.ADC(col_offset=jnp.array([0.0, INF])), "col_offset"),
    ("adc offset NaN", lambda: xbar.ADC(col_offset=NAN), "col_offset"),
    ("adc out_bound negative", lambda: xbar.ADC(out_bound=-1.0), "out_bound"),
    ("noisy adc noise NaN", lambda: xbar.NoisyADC(noise=NAN), "noise"),
    ("sense gain NaN", lambda: xbar.SenseAmp(gain=NAN), "gain"),
    ("sense offset inf", lambda: xbar.SenseAmp(offset_a=INF), "offset_a"),
    ("sense noise negative", lambda: xbar.SenseAmp(noise_a=-1e-9), "noise_a"),
    # mappings
    ("mapping window", lambda: xbar.DifferentialMapping(g_min=2e-5, g_max=1e-5), "g_min"),
    ("mapping g_max NaN", lambda: xbar.ReferenceMapping(g_max=NAN), "g_max"),
    ("mapping w_max zero", lambda: xbar.ReferenceMapping(w_max=0.0), "w_max"),
    # energy, calibration, presets, compensation
    ("energy x length", lambda: xbar.read_energy(XB, jnp.ones(M + 2)), "x"),
    ("energy x NaN", lambda: xbar.read_energy(XB, X.at[0].set(NAN)), "x"),
    ("energy t_s negative", lambda: xbar.read_energy(XB, X, t_s=-5.0), "t_s"),
    ("calibrate weights shape", lambda: xbar.calibrate_columns(XB, W[:2]), "weights"),
    ("calibrate x shape", lambda: xbar.calibrate_columns(XB, W, jnp.ones((1, M))), "x"),
    ("preset shape", lambda: xbar.presets.pcm_statistical().crossbar((0, 2)), "shape"),
    (
        "compensation shapes",
        lambda: devices.drift_compensation(jnp.ones((3, 2)), jnp.ones((2, 2))),
        "g_ref",
    ),
]


@pytest.mark.parametrize("call, name", [c[1:] for c in RAISES], ids=[c[0] for c in RAISES])
def test_bad_input_raises_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_traced_bad_values_raise_under_jit_with_the_same_message():
    with pytest.raises(Exception, match="x must be finite"):
        eqx.filter_jit(lambda x: XB.mvm(x))(X.at[0].set(NAN))
    with pytest.raises(Exception, match="t_s"):
        eqx.filter_jit(lambda t: XB.mvm(X, t_s=t))(jnp.asarray(-1e9))
    with pytest.raises(Exception, match="targets"):
        eqx.filter_jit(lambda w: xbar.program(XB, w, WV, jax.random.key(0)))(W * 3)


# ---- inputs that are fine: lists, integers, both key kinds give the correct result -------------
def test_lists_and_integers_give_the_float_result():
    ref = np.asarray(X) @ np.asarray(W)
    np.testing.assert_allclose(XB.mvm(list(np.asarray(X))), ref, rtol=1e-12, atol=1e-15)
    xi = jnp.array([1, 0, -1, 1])  # integer dtype
    np.testing.assert_allclose(XB.mvm(xi), np.asarray(xi, float) @ np.asarray(W), rtol=1e-12)
    np.testing.assert_allclose(XB.mvm(X, t_s=0), XB.mvm(X, t_s=0.0))  # integer time
    rv, cv = xbar.bias_scheme((M, 2 * N), [False, True, False, False], list(np.asarray(COLS)), 1)
    np.testing.assert_allclose(rv, RV)
    _, rep = xbar.program(XB, np.asarray(W).tolist(), WV, jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(rep.error)))
    _, rep0 = xbar.program(XB, jnp.zeros((M, N), jnp.int32), WV, jax.random.key(0))
    assert bool(jnp.all(rep0.success))  # all targets at g_min: the fresh array is there
    e = xbar.read_energy(XB, list(np.asarray(X)))
    assert np.isfinite(float(e.total)) and float(e.total) > 0


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key], ids=["legacy", "typed"])
def test_both_key_kinds_everywhere(make_key):
    k = make_key(3)
    y1, y2 = XB.mvm(X, k, t_s=60.0), XB.mvm(X, k, t_s=60.0)
    np.testing.assert_array_equal(y1, y2)
    assert np.all(np.isfinite(np.asarray(y1))) and np.any(y1 != XB.mvm(X, t_s=60.0))
    tc = xbar.TiledCrossbar.create(
        PCM,
        (5, 4),
        (2, 3),
        key=k,
        mapping=MAP,
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
    )
    w = jax.random.uniform(jax.random.PRNGKey(1), (5, 4), minval=-1, maxval=1)
    x = jnp.linspace(-1, 1, 5)
    np.testing.assert_allclose(tc.mvm(x, weights=w), x @ w, rtol=1e-10, atol=1e-12)
    tc = tc.map_tiles(
        lambda t, wt: t.with_state(PCM.program(None, MAP.to_conductance(wt))), tc.split(w)
    )
    yt = tc.mvm(x, k, t_s=60.0)
    np.testing.assert_array_equal(yt, tc.mvm(x, k, t_s=60.0))
    assert yt.shape == (4,) and np.all(np.isfinite(np.asarray(yt)))
    assert np.max(np.abs(np.asarray(yt - tc.mvm(x, t_s=60.0)))) > 0  # noise was drawn
    _, rep = xbar.program(XB, W, WV, k)
    assert np.all(np.isfinite(np.asarray(rep.error)))
    _, prep = xbar.apply_pulses(XB, RV, CV, 1e-8, k)
    assert np.all(np.isfinite(np.asarray(prep.energy_j)))
    assert np.isfinite(float(xbar.read_energy(XB, X, key=k).total))
    cal = xbar.calibrate_columns(XB, W, key=k, t_s=60.0)
    assert np.all(np.isfinite(np.asarray(cal.adc.col_gain)))


def test_cached_matrix_honours_or_refuses_other_settings():
    xb = _xb(xbar.Wiring(r_wl=3.0, r_bl=3.0))
    x = jnp.tile(X, (2, 1))
    cached = xb.with_effective_matrix(t_s=3600.0)
    np.testing.assert_allclose(
        cached.mvm(x), xb.mvm(x, t_s=3600.0, ir_drop=xbar.EffectiveMatrix()), rtol=1e-9
    )
    np.testing.assert_allclose(cached.mvm(x, t_s=3600.0), cached.mvm(x), rtol=1e-12)
    with pytest.raises(ValueError, match="t_s=3600"):
        cached.mvm(x, t_s=1e8)
    with pytest.raises(ValueError, match="drift_compensation"):
        cached.mvm(x, drift_compensation=True)
    with_gdc = xb.with_effective_matrix(t_s=3600.0, drift_compensation=True)
    np.testing.assert_allclose(
        with_gdc.mvm(x, drift_compensation=True),
        xb.mvm(x, t_s=3600.0, ir_drop=xbar.EffectiveMatrix(), drift_compensation=True),
        rtol=1e-9,
    )
    # a cache of programming time refuses a read at a later time
    with pytest.raises(ValueError, match="programming time"):
        xb.with_effective_matrix().mvm(x, t_s=10.0)
