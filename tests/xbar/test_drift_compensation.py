"""Global drift compensation on signed arrays: differential pairs, signed inputs (issue 14.5).

The old readout (sum of the absolute column sums of an all-ones read) cancels on
differential pairs: ``sum_i (G+ - G-)_ij`` is near zero for weights of both signs. The
readout of ``xbar.devices.compensation`` (mean absolute output of identity reads) does not.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar
from xbar import devices

DAY, MONTH, YEAR = 86400.0, 30 * 86400.0, 365 * 86400.0
PCM = devices.PCMStatistical()
MAP = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
M, N = 96, 48


def _array(key=0):
    kw, kp = jax.random.split(jax.random.PRNGKey(key))
    w = jax.random.uniform(kw, (M, N), minval=-1, maxval=1)
    state = PCM.program(kp, MAP.to_conductance(w))  # programming noise and nu spread
    xb = xbar.Crossbar.create(
        PCM,
        (M, N),
        mapping=MAP,
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
        state=state,
    )
    return xb, w


def _inputs(key=5, b=256):
    return jax.random.uniform(jax.random.PRNGKey(key), (b, M), minval=-1, maxval=1)


def test_all_ones_readout_cancels_on_a_differential_array():
    # why the definition had to change: the column sums of signed weights nearly cancel
    xb, w = _array()
    col = np.abs(np.asarray(jnp.ones(M) @ w))
    assert np.mean(col) < 0.15 * M * np.mean(np.abs(np.asarray(w)))


@pytest.mark.parametrize("t", [DAY, MONTH, YEAR])
def test_crossbar_drift_compensation_restores_the_mean_output(t):
    xb, _ = _array()
    x = _inputs()
    y0 = np.mean(np.abs(np.asarray(xb.mvm(x))))  # at programming time
    raw = np.mean(np.abs(np.asarray(xb.mvm(x, t_s=t))))
    comp = np.mean(np.abs(np.asarray(xb.mvm(x, t_s=t, drift_compensation=True))))
    assert raw / y0 < 0.85  # drift is large (>15 % after a day)
    assert comp / y0 == pytest.approx(1.0, abs=0.01)


def test_the_device_level_definition_is_the_same_and_holds_for_signed_weights():
    xb, _ = _array(1)
    x = _inputs(6)
    w0 = xb.weights()  # G+ - G- in weight units: signed
    for t in (DAY, MONTH, YEAR):
        wt = xb.weights(t)
        alpha = devices.drift_compensation(w0, wt)
        y0 = np.mean(np.abs(np.asarray(x @ w0)))
        assert float(alpha) * np.mean(np.abs(np.asarray(x @ wt))) / y0 == pytest.approx(1, abs=0.01)
        # the crossbar's noiseless calibration reads give the same factor
        y_ref = xb.mvm(jnp.eye(M))
        y_now = xb.mvm(jnp.eye(M), t_s=t)
        np.testing.assert_allclose(
            devices.compensation.compensation_factor(y_ref, y_now), alpha, rtol=1e-10
        )
    # per column: one factor per output column, each the ratio of mean |W| of that column
    pc = devices.drift_compensation(w0, xb.weights(YEAR), per_column=True)
    expect = np.mean(np.abs(np.asarray(w0)), 0) / np.mean(np.abs(np.asarray(xb.weights(YEAR))), 0)
    np.testing.assert_allclose(pc, expect, rtol=1e-10)
    with pytest.raises(ValueError, match="g_ref"):
        devices.drift_compensation(w0, w0[:3])


def test_drift_compensation_with_a_cached_matrix_and_ir_drop():
    # through the effective matrix (wires on): the cache carries its compensation factor
    xb, _ = _array(2)
    xb = xbar.Crossbar.create(
        PCM,
        (M, N),
        mapping=MAP,
        wiring=xbar.Wiring(r_wl=1.0, r_bl=1.0),
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
        state=xb.state,
    )
    x = _inputs(7)
    fresh = xb.mvm(x, t_s=MONTH, drift_compensation=True, ir_drop=xbar.EffectiveMatrix())
    cached = xb.with_effective_matrix(t_s=MONTH, drift_compensation=True)
    np.testing.assert_allclose(cached.mvm(x, drift_compensation=True), fresh, rtol=1e-9)
    y0 = np.mean(np.abs(np.asarray(xb.mvm(x, ir_drop=xbar.EffectiveMatrix()))))
    assert np.mean(np.abs(np.asarray(fresh))) / y0 == pytest.approx(1.0, abs=0.01)
    # without the factor, the cache refuses rather than answering uncompensated
    plain = xb.with_effective_matrix(t_s=MONTH)
    with pytest.raises(ValueError, match="drift_compensation=True"):
        plain.mvm(x, drift_compensation=True)
    np.testing.assert_allclose(
        plain.mvm(x), xb.mvm(x, t_s=MONTH, ir_drop=xbar.EffectiveMatrix()), rtol=1e-9
    )
