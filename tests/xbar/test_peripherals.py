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


def test_full_scale_inputs_pass_the_whole_gradient():
    # a 0/1 spike sits exactly on the DAC's full scale: the straight-through gradient is 1
    # on the closed range (a tie of jnp.clip's max/min would give 1/2), 0 beyond it
    x = jnp.array([-1.5, -1.0, 0.0, 1.0, 1.5])
    for dac in (xbar.DAC(bits=8), xbar.ideal_dac()):
        g = jax.vmap(jax.grad(dac.quantize))(x)
        np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    adc = xbar.ADC(bits=6, out_bound=2.0)
    np.testing.assert_array_equal(jax.vmap(jax.grad(adc))(2.0 * x), [0.0, 1.0, 1.0, 1.0, 0.0])
    m = xbar.DifferentialMapping(0.0, 25e-6, 1.0)
    jac = jax.jacobian(lambda w: m.combine(m.to_conductance(w)))(jnp.array([-1.0, 1.0]))
    np.testing.assert_allclose(np.diag(jac), [25e-6, 25e-6], rtol=1e-6)


def test_adc_column_calibration_is_affine():
    adc = xbar.ADC(bits=None, col_gain=jnp.array([1.0, 2.0]), col_offset=jnp.array([0.5, 0.0]))
    np.testing.assert_allclose(adc(jnp.array([1.0, 1.0])), [0.5, 2.0])


def test_dac_levels_and_bit_serial_phases_recombine():
    dac = xbar.DAC(bits=5, encoding=xbar.BitSerialEncoding())
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


# ---- input encodings: one contract for every member ---------------------------------------
ENCODINGS = [xbar.AmplitudeEncoding(), xbar.PulseWidthEncoding(), xbar.BitSerialEncoding()]
X_ENC = jax.random.uniform(jax.random.PRNGKey(3), (5, 6), minval=-1.2, maxval=1.2)


def _dacs(enc):
    bits = (3, 5, 8) if enc.needs_bits else (3, 5, 8, None)
    return [xbar.DAC(bits=b, v_read=0.25, t_read_s=100e-9, encoding=enc) for b in bits]


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: type(e).__name__)
def test_encoding_contract(enc):
    for dac in _dacs(enc):
        xq = np.asarray(dac.quantize(X_ENC))
        if dac.bits is not None:  # the levels k / L, L = 2**(bits-1) - 1
            L = 2 ** (dac.bits - 1) - 1
            np.testing.assert_allclose(xq * L, np.round(np.clip(X_ENC, -1, 1) * L), atol=1e-9)
        # logical phases reconstruct the quantised input
        u, w = dac.phases(X_ENC)
        k = dac.n_phases
        assert u.shape == (k,) + X_ENC.shape and w.shape == (k,)
        np.testing.assert_allclose(np.tensordot(w, u, axes=1), xq, atol=1e-12)
        # physical drive: the charge balance sum_s w_s v_s dt_s = q v_read t_read, the
        # slots last n_phases * t_read, drives never beyond v_read
        v, dt, ws = dac.schedule(X_ENC)
        assert v.shape[1:] == X_ENC.shape and dt.shape == ws.shape == v.shape[:1]
        charge = np.tensordot(np.asarray(ws * dt), np.asarray(v), axes=1)
        # (an ideal DAC's pulse width is resolved in 255 time slots: within half a slot)
        coarse = dac.bits is None and isinstance(enc, xbar.PulseWidthEncoding)
        tol = 0.25 * 100e-9 / 510 if coarse else 1e-24
        np.testing.assert_allclose(
            charge, xq * 0.25 * 100e-9, rtol=0 if coarse else 1e-12, atol=tol
        )
        assert float(jnp.sum(dt)) == pytest.approx(k * 100e-9, rel=1e-12)
        assert np.all(np.abs(np.asarray(v)) <= 0.25 * (1 + 1e-12))
        if not isinstance(enc, xbar.AmplitudeEncoding):  # the cells only see 0 or +-v_read
            assert set(np.unique(np.abs(np.asarray(v))).round(12)) <= {0.0, 0.25}
        if enc.phases_are_drives:  # the phases are the drives
            np.testing.assert_allclose(np.asarray(v), np.asarray(u) * 0.25, atol=1e-15)
        # jit and vmap equal the eager call
        uj, wj = jax.jit(dac.phases)(X_ENC)
        np.testing.assert_array_equal(uj, u)
        np.testing.assert_array_equal(wj, w)
        vj, dtj, _ = jax.jit(dac.schedule)(X_ENC)
        np.testing.assert_array_equal(vj, v)
        np.testing.assert_array_equal(dtj, dt)
        uv, _ = jax.vmap(dac.phases)(X_ENC)
        np.testing.assert_array_equal(jnp.moveaxis(uv, 0, 1), u)
        vv, _, _ = jax.vmap(dac.schedule)(X_ENC)
        np.testing.assert_array_equal(jnp.moveaxis(vv, 0, 1), v)

        # straight-through gradient of the recombined input: 1 inside the range
        def recombined(x, dac=dac, w=w):
            return jnp.sum(jnp.tensordot(w, dac.phases(x)[0], axes=1))

        g = jax.grad(recombined)(X_ENC * 0.5)
        np.testing.assert_allclose(g, 1.0)


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: type(e).__name__)
def test_encoding_read_energy_and_latency_accounting(enc):
    # no wires, linear cells: E = sum_s dt_s sum_ij G_ij v_si^2; converters per phase
    pcm = xbar.devices.PCMStatistical()
    mp = xbar.DifferentialMapping(g_min=1e-6, g_max=25e-6)
    w = jax.random.uniform(jax.random.PRNGKey(0), (6, 3), minval=-1, maxval=1)
    dac = xbar.DAC(bits=4, v_read=0.25, encoding=enc, fom_j=2e-15)
    adc = xbar.ADC(bits=6, fom_j=1e-14, rate_hz=1e8, cols_per_adc=2)
    xb = xbar.Crossbar.create(
        pcm,
        (6, 3),
        mapping=mp,
        wiring=xbar.Wiring.ideal(),
        dac=dac,
        adc=adc,
        state=pcm.program(None, mp.to_conductance(w)),
    )
    x = X_ENC[:2]
    e = xbar.read_energy(xb, x)
    g = np.asarray(xb.conductances())  # (6, 6): differential pairs
    q = np.asarray(dac.quantize(x))
    # every encoding delivers sum_ij G_ij v_i^2 t over its slots; only the profile differs
    if isinstance(enc, xbar.AmplitudeEncoding):
        expect = 250e-9 * np.sum(g * (q[:, :, None] * 0.25) ** 2, (-2, -1))
    else:  # rows at 0 or +-v_read for a fraction |q| of t_read (bit-serial: per bit phase)
        if isinstance(enc, xbar.PulseWidthEncoding):
            frac = np.abs(q)
        else:
            mag = np.round(np.abs(q) * 7).astype(int)
            frac = sum((mag >> b) & 1 for b in range(3)).astype(float)
        expect = 250e-9 * np.sum(g * (frac[:, :, None] * 0.25**2), (-2, -1))
    np.testing.assert_allclose(e.array, expect, rtol=1e-12)
    k = dac.n_phases
    assert k == (3 if isinstance(enc, xbar.BitSerialEncoding) else 1)
    m, n = xb.shape
    np.testing.assert_allclose(e.dac, k * m * 2e-15 * 2**4)
    np.testing.assert_allclose(e.adc, k * n * 1e-14 * 2**6)
    assert float(e.latency_s) == pytest.approx(k * (250e-9 + min(2, n) / 1e8))


@pytest.mark.parametrize(
    "old, new",
    [
        ("amplitude", "AmplitudeEncoding"),
        ("pulse_width", "PulseWidthEncoding"),
        ("bit_serial", "BitSerialEncoding"),
    ],
)
def test_old_encoding_strings_name_the_new_classes(old, new):
    for cls in (xbar.DAC, xbar.NoisyDAC):
        with pytest.raises(ValueError, match=f"xbar.{new}"):
            cls(encoding=old)
    with pytest.raises(ValueError, match="BitSerialEncoding.*bits"):
        xbar.DAC(bits=None, encoding=xbar.BitSerialEncoding())
    with pytest.raises(ValueError, match="encoding"):
        xbar.DAC(encoding=3)
