"""DAC, ADC, sense amplifier: quantisation error, clipping, straight-through gradients."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar


def test_adc_error_within_half_lsb_in_range_and_clips_outside():
    adc = xbar.ADC(bits=6, out_bound=4.0)
    y = jnp.linspace(-3.99, 3.99, 2001)
    assert np.max(np.abs(adc(y) - y)) <= adc.lsb / 2 + 1e-12
    assert adc.lsb == pytest.approx(8.0 / 62)
    np.testing.assert_allclose(adc(jnp.array([-9.0, 9.0])), [-4.0, 4.0], rtol=1e-12)
    # outputs are integer multiples of the LSB
    codes = adc(y) / adc.lsb
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)


def test_quantiser_gradients_are_straight_through():
    adc = xbar.ADC(bits=4, out_bound=1.0)
    g = jax.vmap(jax.grad(lambda v: adc(v)))(jnp.array([-2.0, -0.33, 0.1, 0.77, 3.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_adc_column_calibration_is_affine():
    adc = xbar.ADC(bits=None, col_gain=jnp.array([1.0, 2.0]), col_offset=jnp.array([0.5, 0.0]))
    np.testing.assert_allclose(adc(jnp.array([1.0, 1.0])), [0.5, 2.0])


def test_dac_levels_and_bit_serial_phases_recombine():
    dac = xbar.DAC(bits=5, encoding="bit_serial")
    x = jax.random.uniform(jax.random.PRNGKey(0), (7, 9), minval=-1.2, maxval=1.2)
    xq = dac.quantize(x)
    assert np.max(np.abs(xq - np.clip(x, -1, 1))) <= 0.5 / 15 + 1e-12
    u, w = dac.phases(x)
    assert u.shape == (4, 7, 9)
    assert set(np.unique(np.abs(np.asarray(u)))) <= {0.0, 1.0}
    np.testing.assert_allclose(jnp.tensordot(w, u, axes=1), xq, atol=1e-12)
    # straight-through: d(sum_k w_k u_k)/dx = 1 inside the range
    g = jax.grad(lambda v: jnp.sum(jnp.tensordot(w, dac.phases(v)[0], axes=1)))(x[0] * 0.5)
    np.testing.assert_allclose(g, 1.0)


def test_sense_amp_noise_statistics():
    sa = xbar.SenseAmp(gain=2.0, offset_a=1e-6, noise_a=1e-7)
    out = sa(jnp.zeros((20000,)), jax.random.PRNGKey(1))
    assert np.mean(out) == pytest.approx(2e-6, rel=0.01)
    assert np.std(out) == pytest.approx(2e-7, rel=0.03)


@pytest.mark.parametrize("kwargs", [dict(bits=1), dict(encoding="thermometer"), dict(v_read=-0.1)])
def test_bad_dac_raises(kwargs):
    with pytest.raises(ValueError):
        xbar.DAC(**kwargs)


def test_bad_adc_raises():
    with pytest.raises(ValueError, match="out_bound"):
        xbar.ADC(out_bound=0.0)
    with pytest.raises(ValueError, match="cols_per_adc"):
        xbar.ADC(cols_per_adc=0)


def test_calibrate_columns_removes_per_column_gain_and_offset():
    # a sense amplifier with a per-column gain and offset spread: the columns read
    # a_j y + b_j; calibration from the zero input and single-row reads undoes it exactly
    # (linear array, ideal converters), and leaves an ideal array unchanged
    from xbar import devices

    pcm = devices.PCMStatistical()
    mp = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
    w = jax.random.uniform(jax.random.PRNGKey(0), (10, 4), minval=-1, maxval=1)
    gain = jnp.array([0.8, 1.0, 1.15, 0.95])
    i_unit = 0.2 * mp.scale
    sense = xbar.SenseAmp(gain=gain, offset_a=jnp.array([0.1, -0.2, 0.0, 0.3]) * i_unit)
    xb = xbar.Crossbar.create(
        pcm,
        (10, 4),
        mapping=mp,
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
        sense=sense,
        state=pcm.program(None, mp.to_conductance(w)),
    )
    x = jax.random.uniform(jax.random.PRNGKey(1), (16, 10), minval=-1, maxval=1)
    assert np.max(np.abs(xb.mvm(x) - x @ w)) > 0.1
    cal = xbar.calibrate_columns(xb, w)
    np.testing.assert_allclose(cal.mvm(x), x @ w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cal.adc.col_gain, 1 / gain, rtol=1e-9)
    # jit, and an ideal array is left alone
    cal_j = eqx.filter_jit(xbar.calibrate_columns)(xb, w)
    np.testing.assert_allclose(cal_j.adc.col_offset, cal.adc.col_offset, rtol=1e-9, atol=1e-12)
    ideal = eqx.tree_at(lambda c: c.sense, xb, xbar.SenseAmp())
    np.testing.assert_allclose(xbar.calibrate_columns(ideal, w).adc.col_gain, 1.0, rtol=1e-9)
    with pytest.raises(ValueError, match="does not respond"):
        xbar.calibrate_columns(xb, w.at[:, 0].multiply(-1.0))  # column 0 reads -w
