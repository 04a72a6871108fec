"""Read energy: V^2/R of every element, energy conservation, converter and latency counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar
from xbar import devices

PCM = devices.PCMStatistical()
MAP = xbar.DifferentialMapping(g_min=1e-6, g_max=25e-6)


def _xb(wiring, dac=None):
    w = jax.random.uniform(jax.random.PRNGKey(0), (9, 4), minval=-1, maxval=1)
    return xbar.Crossbar.create(
        PCM,
        (9, 4),
        mapping=MAP,
        wiring=wiring,
        dac=dac or xbar.DAC(bits=None, v_read=0.3),
        state=PCM.program(None, MAP.to_conductance(w)),
    )


def test_read_energy_is_sum_of_v2_over_r_and_equals_supplied_energy():
    r = dict(r_wl=30.0, r_bl=45.0, r_src=15.0, r_sense=7.0)
    xb = _xb(xbar.Wiring(**r))
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 9), minval=-1, maxval=1)
    e = xbar.read_energy(xb, x)
    t = xb.dac.t_read_s
    g = np.asarray(xb.conductances())
    v = np.asarray(x) * 0.3
    sol = xbar.solve(g, v, **r)
    vwl, vbl = np.asarray(sol.v_wl), np.asarray(sol.v_bl)
    # V^2/R of every element from the node voltages (driver node behind r_src solved
    # from the series chain r_src + first word-line segment)
    cells = np.sum(g * (vwl - vbl) ** 2, (-2, -1))
    wl_inner = np.sum((vwl[..., :-1] - vwl[..., 1:]) ** 2, (-2, -1)) / r["r_wl"]
    i_first = (v - vwl[..., 0]) / (r["r_src"] + r["r_wl"])
    wl_first = np.sum(i_first**2 * r["r_wl"], -1)
    src = np.sum(i_first**2 * r["r_src"], -1)
    bl_inner = np.sum((vbl[..., :-1, :] - vbl[..., 1:, :]) ** 2, (-2, -1)) / r["r_bl"]
    i_last = vbl[..., -1, :] / (r["r_bl"] + r["r_sense"])
    bl_last = np.sum(i_last**2 * r["r_bl"], -1)
    sense = np.sum(i_last**2 * r["r_sense"], -1)
    total = t * (cells + wl_inner + wl_first + src + bl_inner + bl_last + sense)
    np.testing.assert_allclose(e.array, total, rtol=1e-9)
    np.testing.assert_allclose(e.cells, t * cells, rtol=1e-9)
    np.testing.assert_allclose(e.driver, t * src, rtol=1e-9)
    np.testing.assert_allclose(e.sense, t * sense, rtol=1e-9)
    # energy conservation: what the drivers deliver, v_in * I_in * t
    supplied = t * np.sum(v * i_first, -1)
    np.testing.assert_allclose(e.supplied, supplied, rtol=1e-9)
    np.testing.assert_allclose(e.array, supplied, rtol=1e-9)


def test_zero_wires_give_cell_energy_only():
    xb = _xb(xbar.Wiring.ideal())
    x = jnp.linspace(-1, 1, 9)
    e = xbar.read_energy(xb, x)
    g = np.asarray(xb.conductances())
    expect = xb.dac.t_read_s * np.sum(g * (np.asarray(x)[:, None] * 0.3) ** 2)
    assert float(e.array) == pytest.approx(expect, rel=1e-12)
    assert float(e.word_lines) == 0.0 and float(e.bit_lines) == 0.0


def test_converter_energy_and_latency_counts():
    dac = xbar.DAC(bits=5, v_read=0.3, encoding=xbar.BitSerialEncoding(), fom_j=2e-15)
    xb = _xb(xbar.Wiring.ideal(), dac)
    xb = xb.__class__(
        **{**xb.__dict__, "adc": xbar.ADC(bits=8, fom_j=1e-14, rate_hz=1e8, cols_per_adc=2)}
    )
    e = xbar.read_energy(xb, jnp.ones((2, 9)) * 0.5)
    assert np.allclose(e.dac, 4 * 9 * 2e-15 * 32)  # 4 bit phases x 9 rows
    assert np.allclose(e.adc, 4 * 4 * 1e-14 * 256)  # 4 phases x 4 logical columns
    assert float(e.latency_s) == pytest.approx(4 * (250e-9 + 2 / 1e8))


def test_pulse_width_energy_scales_with_duty():
    dac = xbar.DAC(bits=4, v_read=0.3, encoding=xbar.PulseWidthEncoding())
    xb = _xb(xbar.Wiring.ideal(), dac)
    g = np.asarray(xb.conductances())
    x = jnp.full((9,), 3 / 7)
    e = xbar.read_energy(xb, x)
    # each row at 0.3 V for 3/7 of t_read: E = (3/7) t sum G v^2
    assert float(e.array) == pytest.approx(3 / 7 * 250e-9 * np.sum(g) * 0.09, rel=1e-12)
