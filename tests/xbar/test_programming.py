"""Programming: write-verify reaches tolerance, open loop is worse, half-select disturb."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar
from xbar import devices

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


def _reference_write_verify(xb, g_t, s):
    """The documented write-verify step rule, all cells in lock-step (a plain Python loop
    over pulses with numpy bookkeeping; the device must be deterministic). Returns pulses,
    final G, energy and row-serial time."""
    dev, v_read = xb.device, xb.dac.v_read
    tol = s.tol * (xb.mapping.g_max - xb.mapping.g_min)
    pulse = jax.jit(lambda st, v, w: dev.apply_pulse(st, v, w, jax.random.PRNGKey(0)))
    cur = jax.jit(lambda st, v: dev.current(st, v))
    cond = jax.jit(lambda st: dev.conductance(st, v_read))
    stuck = np.zeros(g_t.shape, int) if xb.stuck is None else np.asarray(xb.stuck)
    g_t = np.asarray(g_t)
    st = xb.state
    n_up, n_dn, last, pulses = (np.zeros(g_t.shape, int) for _ in range(4))
    done = np.zeros(g_t.shape, bool)
    g_prev, energy, t = np.full(g_t.shape, np.inf), np.zeros(g_t.shape), 0.0
    for _ in range(s.max_pulses):
        g = np.where(stuck == 1, xb.g_stuck_on, np.asarray(cond(st)))
        energy += np.where(done, 0.0, v_read**2 * np.abs(g) * s.t_verify_s)
        err = g - g_t
        done |= np.abs(err) <= tol
        up, dn = ~done & (err < 0), ~done & (err > 0)
        moved = np.abs(g - g_prev)
        stp = np.where(moved < tol, 1, np.where(moved > np.abs(err), -1, 0))
        n_up = np.where(up & (last > 0), np.maximum(n_up + stp, 0), n_up)
        n_dn = np.where(dn & (last < 0), np.maximum(n_dn + stp, 0), n_dn)
        n_up = np.where(dn & (last > 0), np.maximum(n_up - s.backoff, 0), n_up)
        n_dn = np.where(up & (last < 0), np.maximum(n_dn - s.backoff, 0), n_dn)
        v_up = np.sign(s.v_set0) * np.minimum(np.abs(s.v_set0 + n_up * s.v_set_step), s.v_set_max)
        v_dn = np.sign(s.v_reset0) * np.minimum(
            np.abs(s.v_reset0 + n_dn * s.v_reset_step), s.v_reset_max
        )
        v = np.where(up, v_up, np.where(dn, v_dn, 0.0))
        width = np.where(up, s.width_set_s, s.width_reset_s)
        new = pulse(st, v, width)
        moves = (v != 0) & (stuck == 0)
        new = jax.tree_util.tree_map(lambda a, b, mv=moves: np.where(mv, a, b), new, st)
        energy += np.abs(v * 0.5 * (np.asarray(cur(st, v)) + np.asarray(cur(new, v)))) * width
        step_t = np.where(up, s.width_set_s, 0.0) + np.where(dn, s.width_reset_s, 0.0)
        t += np.sum(np.max(step_t + np.where(up | dn, s.t_verify_s, 0.0), axis=1))
        st, g_prev, last = new, g, np.where(up, 1, np.where(dn, -1, 0))
        pulses += up | dn
        if done.all():
            break
    return pulses, np.asarray(cond(st)), energy, t


@pytest.mark.parametrize("slots", [None, 5])
def test_write_verify_equals_each_cell_programmed_alone(slots, monkeypatch):
    # The vectorised write-verify works on a queue of unfinished cells (with `slots` slots,
    # fewer than the 24 cells: cells are swapped in and out). With a deterministic device
    # (no cycle-to-cycle noise) each cell must end exactly as if programmed on its own.
    if slots is not None:
        monkeypatch.setattr(xbar.write_verify, "_slot_count", lambda n: slots)
    dev = devices.StanfordPKU(r_series=2e3, delta_gap0=0.0)
    xb = xbar.Crossbar.create(
        dev,
        (4, 3),
        key=jax.random.PRNGKey(0),
        variability={"i0": 0.1},
        mapping=xbar.DifferentialMapping(g_min=5e-6, g_max=100e-6),
        gap=jnp.linspace(1.2e-9, 1.7e-9, 24).reshape(4, 6),
        dac=xbar.DAC(v_read=0.1),
    )
    # one stuck-ON cell: never moves, verifies at g_max
    xb = eqx.tree_at(
        lambda c: c.stuck,
        xb,
        jnp.zeros((4, 6), jnp.int8).at[1, 2].set(1),
        is_leaf=lambda v: v is None,
    )
    wv = xbar.WriteVerify(**{**RRAM_WV.__dict__, "max_pulses": 60, "width_reset_s": 20e-9})
    w = W[:4, :3]
    _, rep = xbar.program(xb, w, wv, jax.random.PRNGKey(1))
    pulses, g_end, energy, t_row = _reference_write_verify(xb, xb.mapping.to_conductance(w), wv)
    assert pulses.min() < 10 and pulses.max() == 60 and pulses[1, 2] == 60  # a spread
    np.testing.assert_array_equal(rep.pulses, pulses)
    g_t = xb.mapping.to_conductance(w)
    healthy = np.ones((4, 6), bool)
    healthy[1, 2] = False
    np.testing.assert_allclose(np.asarray(rep.error + g_t)[healthy], g_end[healthy], rtol=1e-9)
    np.testing.assert_allclose(rep.energy_j, energy, rtol=1e-9)
    assert float(rep.time_s) == pytest.approx(t_row, rel=1e-12)


def test_capped_pulse_integrator_keeps_the_pulse_physics():
    # pulse_substeps / pulse_newton: each write-verify pulse (10 ns, the amplitude range
    # of RRAM_WV) changes the conductance as a 2048-sub-step reference integration does,
    # to well within the write-verify tolerance (2 % of the window).
    base = devices.StanfordPKU(r_series=2e3)
    span = 95e-6
    g, v = jnp.meshgrid(
        jnp.linspace(0.2e-9, 1.7e-9, 16),
        jnp.concatenate([jnp.linspace(1.5, 3.5, 9), -jnp.linspace(1.2, 3.5, 10)]),
    )
    st = base.init_state(g.shape, gap=g)
    wv = xbar.WriteVerify(pulse_substeps=16, pulse_newton=4)

    def dg(d):
        return d.conductance(d.apply_pulse(st, v, 10e-9), 0.1) - d.conductance(st, 0.1)

    ref = dg(dataclasses.replace(base, n_substeps=2048, n_newton=30))
    capped = xbar.write_verify._pulse_device(base, wv)
    assert (capped.n_substeps, capped.n_newton) == (16, 4)
    assert np.max(np.abs(ref)) > 0.05 * span  # the grid includes moves > 2.5 tolerances
    assert np.max(np.abs(dg(capped) - ref)) < 0.01 * span
    assert xbar.write_verify._pulse_device(base, xbar.WriteVerify()) is base
    with pytest.raises(ValueError, match="pulse_substeps"):
        xbar.write_verify._pulse_device(devices.PCMStatistical(), wv)
    with pytest.raises(ValueError, match="pulse_newton"):
        xbar.WriteVerify(pulse_newton=0)


def test_capped_integrator_programs_as_well_as_the_default():
    xb = _rram_xbar()
    prog = jax.jit(xbar.program)
    fast = xbar.WriteVerify(**{**RRAM_WV.__dict__, "pulse_substeps": 16, "pulse_newton": 4})
    _, rep = prog(xb, W, fast, jax.random.PRNGKey(2))
    _, ref = prog(xb, W, RRAM_WV, jax.random.PRNGKey(2))
    assert float(rep.success_rate) >= 0.99
    # same number of pulses on average (to 10 %) and the same residual error band
    assert float(jnp.mean(rep.pulses)) == pytest.approx(float(jnp.mean(ref.pulses)), rel=0.1)
    assert np.all(np.abs(rep.rel_error[rep.success]) <= fast.tol)


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


def _segment_power(r_wl, r_bl, r_src, r_sense, c):
    """Power [W] in every wire segment and driver/sense resistance for cell currents ``c``
    (numpy; word-line segment k carries the cells beyond it, bit-line segment i the cells
    above it)."""
    m, p = c.shape
    rw = np.full((m, p), r_wl)
    rw[:, 0] += r_src
    rb = np.full((m, p), r_bl)
    rb[-1, :] += r_sense
    i_wl = np.cumsum(c[:, ::-1], axis=1)[:, ::-1]
    i_bl = np.cumsum(c, axis=0)
    return np.sum(rw * i_wl**2) + np.sum(rb * i_bl**2)


@pytest.mark.parametrize("cell", ["passive", "1T1R"])
def test_apply_pulses_with_ir_drop(cell):
    """Write pulses through resistive lines: with ideal wires identical to the nominal
    voltages; with wires every cell sees less than nominal (selected < V, half-selected <
    V/2, more so far from the drivers), and the reported wire energy equals the sum of
    I^2 R over all segments of the solved operating point."""
    dev = devices.StanfordPKU()
    shape = (8, 5)
    rows = jnp.zeros(8, bool).at[1].set(True)
    cols = jnp.zeros(10, bool).at[7].set(True)
    v_w = 1.8
    rv, cv = xbar.bias_scheme((8, 10), rows, cols, v_w, "V/2")
    mk = dict(mapping=xbar.DifferentialMapping(1e-6, 1e-3), gap=1.0e-9)
    stack = {"passive": xbar.cells.Passive(), "1T1R": xbar.cells.OneTOneR()}[cell]
    ideal = xbar.Crossbar.create(dev, shape, wiring=xbar.Wiring.ideal(), cell=stack, **mk)
    a, ra = xbar.apply_pulses(ideal, rv, cv, 10e-9)
    b, rb = xbar.apply_pulses(ideal, rv, cv, 10e-9, ir_drop=True)
    np.testing.assert_allclose(rb.v_cell, ra.v_cell, atol=1e-12)
    np.testing.assert_allclose(b.state.gap, a.state.gap, rtol=1e-9, atol=1e-20)
    assert float(rb.wire_energy_j) == pytest.approx(0.0, abs=1e-9 * float(jnp.sum(rb.energy_j)))

    w = xbar.Wiring(r_wl=25.0, r_bl=25.0, r_src=50.0, r_sense=50.0)
    xb = xbar.Crossbar.create(dev, shape, wiring=w, cell=stack, **mk)
    new, rep = xbar.apply_pulses(xb, rv, cv, 10e-9, ir_drop=True)
    v = np.asarray(rep.v_cell)
    nominal = np.asarray(ra.v_cell)
    sel = np.zeros((8, 10), bool)
    sel[1, 7] = True
    half = (nominal == v_w / 2) & ~sel
    assert 0.5 * v_w < v[1, 7] < v_w - 1e-3
    assert np.all(v[half] < v_w / 2) and np.all(v[half] > 0)
    # along the selected row, the half-selected cells see less the farther from the driver
    assert np.all(np.diff(v[1, :7]) < 0)
    # the selected cell moves less than with ideal lines (less voltage, same pulse)
    d_ideal = float(a.state.gap[1, 7] - ideal.state.gap[1, 7])
    d_ir = float(new.state.gap[1, 7] - xb.state.gap[1, 7])
    assert abs(d_ir) < abs(d_ideal)
    # wire energy against I^2 R of every segment at the solved operating point
    c = np.asarray(xb.cell_current(xb.state, jnp.asarray(v)))
    e_wire = _segment_power(25.0, 25.0, 50.0, 50.0, c) * 10e-9
    assert float(rep.wire_energy_j) == pytest.approx(e_wire, rel=1e-6)
    with pytest.raises(ValueError, match="row_v"):
        xbar.apply_pulses(xb, rv[:3], cv, 10e-9, ir_drop=True)


# --- averaged verify reads (verify_reads) and the verify guard band (verify_tol) ---


def test_verify_read_average_falls_as_one_over_sqrt_n():
    # The mean of n independent reads of a Gaussian read noise has the same mean and
    # sd / sqrt(n); reference: the device's own analytic moments (read_noise_moments).
    dev = devices.PCM()
    n_cells = 8000
    s = dev.init_state((n_cells,), u_a=4e-9)
    mean, var = dev.read_noise_moments(s, 0.1)
    sd1 = float(jnp.sqrt(var[0]))
    assert sd1 > 0.05 * float(mean[0])  # a noise worth averaging (Joshi 2020 law)
    for n in (1, 4, 16):
        wv = xbar.WriteVerify(verify_noise=True, verify_reads=n)
        g = jax.jit(wv.verify_read)(dev, s, 0.1, jax.random.PRNGKey(n))
        g = np.asarray(g)
        se = sd1 / np.sqrt(n)
        assert abs(g.mean() - float(mean[0])) < 5 * se / np.sqrt(n_cells)
        # the sample sd of 8000 draws is within ~0.8 % (1 sd) of the true one; allow 4 %
        assert g.std() == pytest.approx(se, rel=0.04)
    # vmap over keys: each key gives one averaged read, like the jitted call
    wv = xbar.WriteVerify(verify_noise=True, verify_reads=4)
    keys = jax.random.split(jax.random.PRNGKey(9), 3)
    one = dev.init_state((5,), u_a=4e-9)
    batched = jax.vmap(lambda k: wv.verify_read(dev, one, 0.1, k))(keys)
    np.testing.assert_allclose(batched[1], wv.verify_read(dev, one, 0.1, keys[1]), rtol=1e-12)
    # without verify_noise the read is the noiseless conductance, whatever verify_reads
    quiet = xbar.WriteVerify(verify_reads=8)
    np.testing.assert_array_equal(
        quiet.verify_read(dev, one, 0.1, keys[0]), dev.conductance(one, 0.1)
    )


def test_verify_reads_count_in_energy_and_time():
    # Cells already at their target stop at the first verify: no pulse, and the verify
    # energy is v_read^2 G n t_verify per cell (a noise-free read, so G is exact).
    dev = devices.VTEAM(noise=devices.ReadNoise(q_flicker=0.0))
    xb = xbar.Crossbar.create(dev, (3, 2), mapping=xbar.DifferentialMapping(2e-6, 50e-6), w=1.5e-9)
    g = xb.conductances()
    for n in (1, 5):
        wv = xbar.WriteVerify(verify_noise=True, verify_reads=n, t_verify_s=1e-6)
        _, rep = xbar.program(xb, g, wv, jax.random.PRNGKey(0), conductance_targets=True)
        assert int(jnp.sum(rep.pulses)) == 0
        v = float(xb.dac.v_read)
        np.testing.assert_allclose(rep.energy_j, v**2 * np.asarray(g) * n * 1e-6, rtol=1e-9)


def test_verify_tol_is_a_guard_band():
    # With noiseless verify, a tighter acceptance band ends every cell within it.
    xb = _rram_xbar()
    wv = dataclasses.replace(
        RRAM_WV, verify_tol=0.005, max_pulses=300, pulse_substeps=16, pulse_newton=4
    )
    _, rep = xbar.program(xb, W, wv, jax.random.PRNGKey(4))
    ok = np.asarray(rep.success)
    assert ok.mean() >= 0.95
    assert np.all(np.abs(np.asarray(rep.rel_error)[ok]) <= 0.02)
    inner = np.abs(np.asarray(rep.rel_error)) <= 0.005
    assert inner.mean() >= 0.95


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"verify_reads": 0}, "verify_reads"),
        ({"verify_reads": 2.0}, "verify_reads"),
        ({"verify_tol": 0.0}, "verify_tol"),
        ({"verify_tol": 1.5}, "verify_tol"),
        ({"verify_tol": float("nan")}, "verify_tol"),
    ],
)
def test_bad_verify_reads_and_tol_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        xbar.WriteVerify(**kwargs)
