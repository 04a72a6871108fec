"""Programming: write-verify reaches tolerance, open loop is worse, half-select disturb."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import devices
import xbar

M, N = 12, 8
W = jax.random.uniform(jax.random.PRNGKey(1), (M, N), minval=-1, maxval=1)


def _rram_xbar():
    # Stanford-PKU with a 2 kOhm series resistor (1T1R access) and a reduced
    # cycle-to-cycle noise amplitude (delta_gap0 = 5e-3 m/s, within the source's range)
    dev = devices.StanfordPKU(r_series=2e3, delta_gap0=5e-3)
    return xbar.Crossbar.create(
        dev,
        (M, N),
        key=jax.random.PRNGKey(0),
        variability={"i0": 0.05, "f_min": 0.02},
        mapping=xbar.DifferentialMapping(g_min=5e-6, g_max=100e-6),
        gap=1.7e-9,
        dac=xbar.DAC(v_read=0.1),
    )


RRAM_WV = xbar.WriteVerify(
    tol=0.02,
    max_pulses=200,
    v_set0=1.5,
    v_set_step=0.05,
    v_set_max=3.5,
    v_reset0=-1.2,
    v_reset_step=-0.05,
    v_reset_max=3.5,
    width_set_s=10e-9,
    width_reset_s=10e-9,
)


def test_write_verify_on_rram_reaches_tolerance_and_beats_open_loop():
    xb = _rram_xbar()
    prog = jax.jit(xbar.program)
    xb_wv, rep = prog(xb, W, RRAM_WV, jax.random.PRNGKey(2))
    assert float(rep.success_rate) >= 0.99
    assert int(jnp.max(rep.pulses)) <= RRAM_WV.max_pulses
    # report: residual error of successful cells inside the band; energy positive
    assert np.all(np.abs(rep.rel_error[rep.success]) <= 0.02)
    assert float(rep.total_energy_j) > 0 and float(rep.time_s) > 0
    # the array reads back the weights within the tolerance of both devices of a pair
    ok = np.asarray(rep.success[:, 0::2] & rep.success[:, 1::2])
    assert np.all(np.abs(np.asarray(xb_wv.weights() - W))[ok] <= 2 * 0.02 * 100 / 95 + 1e-9)
    ol = xbar.OpenLoop(v_grid=jnp.linspace(1.5, 5.0, 200), width_s=100e-9, start={"gap": 1.7e-9})
    _, rep_ol = prog(xb, W, ol, jax.random.PRNGKey(2))
    assert float(rep_ol.success_rate) < float(rep.success_rate) - 0.1
    assert float(jnp.std(rep_ol.rel_error)) > 2 * float(jnp.std(rep.rel_error))


def test_write_verify_on_statistical_pcm_and_open_loop_is_worse():
    pcm = devices.PCMStatistical()
    mapping = xbar.DifferentialMapping(g_min=0.0, g_max=20e-6)
    xb = xbar.Crossbar.create(pcm, (M, N), mapping=mapping)
    wv = xbar.WriteVerify(
        tol=0.02, max_pulses=200, v_set0=1.0, v_set_step=0.0, v_reset0=-1.0, v_reset_step=0.0
    )
    prog = jax.jit(xbar.program)
    _, rep = prog(xb, W, wv, jax.random.PRNGKey(3))
    assert float(rep.success_rate) >= 0.99
    ol = xbar.OpenLoop(v_grid=jnp.array([1.0]), max_pulses=100, start={"g_prog": 0.0})
    _, rep_ol = prog(xb, W, ol, jax.random.PRNGKey(3))
    assert float(rep_ol.success_rate) < 0.5
    assert float(jnp.mean(jnp.abs(rep_ol.rel_error))) > 3 * float(jnp.mean(jnp.abs(rep.rel_error)))


def test_bias_schemes_limit_unselected_cell_voltages():
    rows = jnp.zeros(6, bool).at[2].set(True)
    cols = jnp.zeros(5, bool).at[3].set(True)
    for scheme, bound in (("V/2", 0.5), ("V/3", 1 / 3)):
        rv, cv = xbar.bias_scheme((6, 5), rows, cols, 3.0, scheme)
        v = rv[:, None] - cv[None, :]
        assert float(v[2, 3]) == pytest.approx(3.0)
        others = np.asarray(v).copy()
        others[2, 3] = 0.0
        assert np.max(np.abs(others)) <= bound * 3.0 + 1e-12
    rv, cv = xbar.bias_scheme((6, 5), rows, cols, 3.0, "V/2")
    v = np.asarray(rv[:, None] - cv[None, :])
    assert np.all(v[np.ix_([0, 1, 3, 4, 5], [0, 1, 2, 4])] == 0.0)


def test_half_select_disturb_follows_the_switching_threshold():
    dev = devices.StanfordPKU()  # threshold at g = 1.7 nm: F_min t_ox / gamma = 1.39 V
    xb = xbar.Crossbar.create(dev, (6, 3), mapping=xbar.DifferentialMapping(1e-6, 1e-3), gap=1.7e-9)
    rows = jnp.zeros(6, bool).at[2].set(True)
    cols = jnp.zeros(6, bool).at[3].set(True)
    v_th = float(dev.threshold_voltage(1.7e-9, +1))
    half = np.zeros((6, 6), bool)
    half[2, :] = True
    half[:, 3] = True
    half[2, 3] = False
    for v_w, disturbed in ((2.0 * v_th * 0.8, False), (2.0 * v_th * 1.3, True)):
        rv, cv = xbar.bias_scheme((6, 6), rows, cols, v_w, "V/2")
        new, rep = xbar.apply_pulses(xb, rv, cv, 100e-9)
        dgap = np.abs(np.asarray(new.state.gap - xb.state.gap))
        assert dgap[2, 3] > 1e-10  # the selected cell switches
        assert np.max(np.abs(np.asarray(rep.v_cell))[half]) == pytest.approx(v_w / 2)
        assert np.all(dgap[~half & (np.arange(6)[:, None] != 2)] == 0.0)  # 0 V cells
        if disturbed:
            assert np.min(dgap[half]) > 1e-12  # measurable disturb above threshold
        else:
            assert np.max(dgap[half]) < 1e-15  # none below threshold
        assert float(np.sum(rep.energy_j)) > 0
