"""Transfer: asked-for change -> pulses -> delivered change, against an ideal linear synapse,
pulse statistics, half-select disturb from the device model and the energy formula."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import stdp, transfer

import xbar
from xbar import devices

DG = 0.25e-6
MAP = xbar.ReferenceMapping(g_min=0.0, g_max=25e-6)
DW = DG / MAP.scale  # weight change of one pulse (0.02)


def _xb(m=16, n=12, device=None, mapping=MAP):
    device = transfer.LinearSynapse(dg=DG) if device is None else device
    return xbar.Crossbar.create(device, (m, n), mapping=mapping, wiring=xbar.Wiring.ideal())


def _scheme(**kw):
    kw.setdefault("dw_pulse", DW)
    kw.setdefault("v_set", 1.0)
    kw.setdefault("v_reset", -1.0)
    return transfer.Coincidence(**kw)


def test_whole_pulses_are_delivered_exactly_on_ideal_synapses():
    xb = _xb()
    k = jax.random.PRNGKey(0)
    asked = DW * 2.0 * jax.random.randint(k, xb.shape, -1, 2).astype(float)
    new, rep = transfer.deliver(xb, asked, _scheme(n_slots=2), k)
    np.testing.assert_allclose(rep.delivered, asked, atol=1e-12)
    np.testing.assert_array_equal(rep.pulses[:, :-1], 2 * np.abs(np.asarray(asked) / DW / 2))
    assert int(rep.pulses[:, -1].sum()) == 0  # the reference column is never programmed
    np.testing.assert_allclose(new.weights() - xb.weights(), asked, atol=1e-12)


def test_fractional_changes_are_unbiased_stochastic_rounding():
    xb = _xb(64, 64)
    asked = jnp.full(xb.shape, 0.3 * DW)
    _, rep = transfer.deliver(xb, asked, _scheme(), jax.random.PRNGKey(1))
    frac = float(jnp.mean(rep.delivered)) / DW
    sigma = np.sqrt(0.3 * 0.7 / asked.size)
    assert abs(frac - 0.3) < 4 * sigma
    assert set(np.unique(np.round(np.asarray(rep.delivered) / DW, 9))) <= {0.0, 1.0}


def test_factored_stdp_change_matches_dense_and_delivers_in_expectation():
    m, n = 40, 30
    key = jax.random.PRNGKey(2)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    pre = (jax.random.uniform(k1, (m,)) < 0.3).astype(float)
    post = (jax.random.uniform(k2, (n,)) < 0.3).astype(float)
    traces = stdp.PairTraces(x=jax.random.uniform(k3, (m,)), y=jax.random.uniform(k4, (n,)))
    rules = [
        (stdp.PairSTDP(a_plus=0.02, a_minus=0.015), traces),
        (stdp.DiehlCookSTDP(eta_post=0.02, eta_pre=0.01), traces),
    ]
    trip = stdp.TripletSTDP(a2_plus=5e-3, a3_plus=6e-3, a2_minus=7e-3, a3_minus=2e-3)
    t_tr = stdp.TripletTraces(r1=traces.x, r2=traces.x**2, o1=traces.y, o2=traces.y**2)
    rules.append((trip, t_tr))
    for rule, st in rules:
        dense, _ = rule.update(None, st, pre, post, 1e-3)
        rows, cols = rule.factors(st, pre, post, 1e-3)
        np.testing.assert_allclose(rows.T @ cols, dense, rtol=1e-12, atol=1e-15)
    rule, st = rules[0]
    dense, _ = rule.update(None, st, pre, post, 1e-3)
    factors = rule.factors(st, pre, post, 1e-3)
    # many independent deliveries: the mean delivered change is the asked one
    xb = _xb(m, n)
    keys = jax.random.split(jax.random.PRNGKey(5), 200)
    deliv = jax.vmap(
        lambda k: transfer.deliver(xb, dense, _scheme(n_slots=2), k, factors=factors)[1].delivered
    )(keys)
    mean = jnp.mean(deliv, axis=0)
    assert float(jnp.abs(jnp.sum(mean) - jnp.sum(dense))) < 4 * DW * np.sqrt(dense.size / 200)
    np.testing.assert_allclose(np.corrcoef(np.ravel(mean), np.ravel(dense))[0, 1], 1.0, atol=0.02)


def test_half_select_disturb_comes_from_the_device():
    # threshold below V/2: half-selected cells move as well (V/2 scheme), by the device rule
    xb = _xb(4, 3, device=transfer.LinearSynapse(dg=DG, v_th=0.4))
    asked = jnp.zeros(xb.shape).at[1, 2].set(DW)
    _, rep = transfer.deliver(xb, asked, _scheme(), jax.random.PRNGKey(0))
    expect = np.zeros(xb.shape)
    expect[:, 2] = DW  # column 2 driven: its cells see V/2 >= v_th
    # row 1 driven: its cells and its reference cell all move by dg, so the logical
    # weights of row 1 (cell minus reference) do not change
    expect[1, :] = 0.0
    np.testing.assert_allclose(rep.delivered, expect, atol=1e-12)
    # above the half-select voltage nothing else moves
    _, rep = transfer.deliver(_xb(4, 3), asked, _scheme(), jax.random.PRNGKey(0))
    np.testing.assert_allclose(rep.delivered, np.asarray(asked), atol=1e-12)


def test_energy_is_the_trapezoid_over_selected_and_half_selected_cells():
    xb = _xb(3, 2)
    asked = jnp.zeros(xb.shape).at[0, 1].set(DW)
    w = 20e-9
    _, rep = transfer.deliver(xb, asked, _scheme(width_set_s=w), jax.random.PRNGKey(0))
    g0 = transfer.LinearSynapse().g_ini
    v = 1.0
    # selected: |V| w (I0 + I1) / 2; half-selected (2 others in row 0, 2 others in column 1,
    # the reference column's cell of row 0 included): (V/2)^2 g0 w each
    e_sel = v * w * (g0 * v + (g0 + DG) * v) / 2
    e_half = (v / 2) ** 2 * g0 * w * (2 + 2)
    np.testing.assert_allclose(float(rep.total_energy_j), e_sel + e_half, rtol=1e-12)
    np.testing.assert_allclose(float(rep.time_s), w, rtol=1e-12)
    assert int(rep.phases) == 1 and int(rep.updated) == 1


def test_jit_vmap_and_bad_input():
    xb = _xb(8, 5)
    asked = jnp.full(xb.shape, 0.5 * DW)
    f = jax.jit(lambda a, k: transfer.deliver(xb, a, _scheme(), k)[1].delivered)
    k = jax.random.PRNGKey(9)
    np.testing.assert_allclose(f(asked, k), transfer.deliver(xb, asked, _scheme(), k)[1].delivered)
    keys = jax.random.split(k, 3)
    out = jax.vmap(lambda kk: f(asked, kk))(keys)
    np.testing.assert_allclose(out[1], f(asked, keys[1]))
    with pytest.raises(ValueError, match="shape"):
        transfer.deliver(xb, jnp.zeros((8, 4)), _scheme(), k)
    with pytest.raises(ValueError, match="Coincidence"):
        transfer.deliver(xb, asked, xbar.WriteVerify(), k)
    with pytest.raises(ValueError, match="factors"):
        transfer.deliver(xb, asked, _scheme(), k, factors=(jnp.zeros((2, 8)), jnp.zeros((2, 4))))
    for bad in (dict(dw_pulse=0.0), dict(n_slots=0), dict(width_set_s=-1e-9)):
        with pytest.raises(ValueError):
            _scheme(**bad)
    with pytest.raises(ValueError):
        transfer.LinearSynapse(dg=0.0)


def test_stanford_pku_delivers_signed_state_dependent_changes():
    dev = devices.StanfordPKU(n_substeps=16)
    mapping = xbar.DifferentialMapping(g_min=0.0, g_max=50e-6)
    gaps = jnp.array([1.3e-9, 1.5e-9])[:, None] * jnp.ones((1, 6))
    xb = xbar.Crossbar.create(dev, (2, 3), mapping=mapping, wiring=xbar.Wiring.ideal(), gap=gaps)
    scheme = transfer.Coincidence(
        dw_pulse=0.02,
        v_set=1.45,
        v_reset=-1.3,
        width_set_s=5e-9,
        width_reset_s=20e-9,
        device_noise=False,
    )
    asked = jnp.tile(jnp.array([0.02, -0.02, 0.0]), (2, 1))
    _, rep = transfer.deliver(xb, asked, scheme, jax.random.PRNGKey(0))
    d = np.asarray(rep.delivered)
    assert np.all(d[:, 0] > 0) and np.all(d[:, 1] < 0)
    np.testing.assert_allclose(d[:, 2], 0.0, atol=1e-15)  # V/2 is below the gap threshold
    # the same request moves a device at a smaller gap further (state dependence), and
    # SET and RESET steps differ (asymmetry)
    assert d[0, 0] > 1.5 * d[1, 0] and abs(d[0, 0] + d[0, 1]) > 0.1 * d[0, 0]


def _random_factors(key, m, n):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    rows = jnp.stack(
        [(jax.random.uniform(k1, (m,)) < 0.3) * 1.0, (jax.random.uniform(k2, (m,)) < 0.1) * 1.0]
    )
    cols = jnp.stack(
        [
            (jax.random.uniform(k3, (n,)) < 0.3) * 0.02,
            (jax.random.uniform(k4, (n,)) < 0.4) * -0.02,
        ]
    )
    return rows, cols


@pytest.mark.parametrize("name", ["linear", "pku-spread-faults", "pcm-differential"])
def test_driven_lines_path_equals_apply_pulses_on_every_cell(name):
    # Under V/2 only cells on a driven line see a voltage: evaluating the device on those
    # lines (in chunks) must give what xbar.apply_pulses gives on the whole array.
    m, n = 24, 19
    k = jax.random.PRNGKey(4)
    kw = {}
    if name == "linear":
        dev, sch = transfer.LinearSynapse(dg=DG), dict(dw_pulse=DW, v_set=1.0, v_reset=-1.0)
    elif name == "pku-spread-faults":
        dev = devices.StanfordPKU(n_substeps=2)
        sch = dict(dw_pulse=0.02, v_set=1.45, v_reset=-1.3, width_set_s=5e-9, device_noise=False)
        kw = dict(
            gap=1.4e-9,
            variability={"vel0": 0.2},
            faults=devices.StuckAtFaults(p_on=0.05, p_off=0.05),
            key=jax.random.PRNGKey(1),
        )
    else:
        dev = devices.PCMStatistical()
        sch = dict(dw_pulse=0.02, v_set=1.0, v_reset=-1.0, device_noise=False, set_only=True)
        kw = dict(mapping=xbar.DifferentialMapping(g_min=0.0, g_max=25e-6))
    kw.setdefault("mapping", MAP)
    xb = xbar.Crossbar.create(dev, (m, n), wiring=xbar.Wiring.ideal(), **kw)
    rows, cols = _random_factors(k, m, n)
    asked = rows.T @ cols
    out = {}
    for lines_only in (True, False):
        s = transfer.Coincidence(**sch, lines_only=lines_only, line_chunk=3)
        new, rep = jax.jit(
            lambda x, kk, s=s: transfer.deliver(x, asked, s, kk, factors=(rows, cols))
        )(xb, k)
        out[lines_only] = (new.weights(), rep)
    (w1, r1), (w0, r0) = out[True], out[False]
    assert int(r1.pulses.sum()) > 10 and float(jnp.max(jnp.abs(w1 - xb.weights()))) > 0
    np.testing.assert_allclose(w1, w0, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(r1.pulses, r0.pulses)
    np.testing.assert_allclose(r1.energy_j, r0.energy_j, rtol=1e-9, atol=1e-30)
    assert int(r1.phases) == int(r0.phases)


def test_driven_lines_path_with_noise_draws_like_the_whole_array():
    # cycle-to-cycle noise on the driven-lines path: each cell its own draw, the same
    # distribution as on the whole array (PCMStatistical: no write threshold, so selected
    # and half-selected cells step alike)
    m, n = 64, 48
    dev = devices.PCMStatistical()
    xb = xbar.Crossbar.create(dev, (m, n), mapping=MAP, wiring=xbar.Wiring.ideal())
    r_on = np.arange(m) % 4 == 0
    c_on = np.r_[np.arange(n) % 3 == 0, False]
    rows = jnp.asarray(r_on, float)[None]
    cols = 0.02 * jnp.asarray(c_on[:-1], float)[None]
    asked = rows.T @ cols
    stats = {}
    for lines_only in (True, False):
        s = transfer.Coincidence(dw_pulse=0.02, v_set=1.0, lines_only=lines_only, line_chunk=5)
        g = jax.vmap(
            lambda kk, s=s: transfer.deliver(xb, asked, s, kk, factors=(rows, cols))[0].state.g_prog
        )(jax.random.split(jax.random.PRNGKey(2), 4))
        g = np.asarray(g)
        sel = g[:, r_on][:, :, c_on]
        half = np.concatenate([g[:, r_on][:, :, ~c_on].ravel(), g[:, ~r_on][:, :, c_on].ravel()])
        assert np.all(g[:, ~r_on][:, :, ~c_on] == 0.0)  # unbiased cells untouched
        stats[lines_only] = (sel.mean(), sel.std(), half.mean(), half.std())
        pos = sel[sel > 0]  # (a clamp at 0 repeats the value 0)
        assert pos.size > 0.5 * sel.size and len(np.unique(pos)) == pos.size  # own draws
    for a, b in zip(stats[True], stats[False], strict=True):
        assert abs(a - b) < 0.1 * abs(b)


def _pku_pair_array(m, n, gap_plus):
    dev = devices.StanfordPKU(n_substeps=16, gap_min=1.1e-9, gap_ini=1.4e-9)
    gaps = jnp.stack([jnp.full((m, n), gap_plus), jnp.full((m, n), 1.7e-9)], -1)
    return xbar.Crossbar.create(
        dev,
        (m, n),
        mapping=xbar.DifferentialMapping(g_min=0.0, g_max=50e-6),
        wiring=xbar.Wiring.ideal(),
        gap=gaps.reshape(m, 2 * n),
    )


PKU_SCHEME = dict(
    v_set=1.45, v_reset=-1.3, width_set_s=5e-9, width_reset_s=20e-9, n_slots=2, device_noise=False
)


def test_stanford_pku_half_selected_cells_do_not_move():
    # V/2 biasing: a half-selected cell sees 0.725 V (SET) or 0.65 V (RESET); the gap only
    # moves when the field gamma |V| / t_ox exceeds F_min, i.e. above
    # V_th = F_min t_ox / (gamma0 - beta (g / 1 nm)^3), lowest at the smallest gap (1.13 V
    # for this 1.1 nm window; Jiang et al. 2016): a half-selected cell's change is zero
    # (below 1e-6 of a selected one's), a selected one's is not
    dev = _pku_pair_array(1, 1, 1.4e-9).device
    v_th_min = dev.f_min * dev.tox / (dev.gamma0 - dev.beta * (dev.gap_min / 1e-9) ** 3)
    assert PKU_SCHEME["v_set"] / 2 < v_th_min and -PKU_SCHEME["v_reset"] / 2 < v_th_min
    for gap in (1.2e-9, 1.4e-9, 1.55e-9):
        xb = _pku_pair_array(6, 4, gap)
        scheme = transfer.Coincidence(dw_pulse=0.02, **PKU_SCHEME)
        for a in (0.04, -0.04):  # two full pulses on cell (2, 1), nothing asked elsewhere
            asked = jnp.zeros(xb.shape).at[2, 1].set(a)
            _, rep = transfer.deliver(xb, asked, scheme, jax.random.PRNGKey(0))
            d = np.asarray(rep.delivered)
            assert np.sign(d[2, 1]) == np.sign(a) and abs(d[2, 1]) > 1e-3
            others = np.abs(np.delete(d.ravel(), 2 * 4 + 1))
            assert others.max() < 1e-6 * abs(d[2, 1])


def test_calibrated_fall_step_balances_stanford_pku_set_reset_asymmetry():
    # Stanford-PKU moves its gap by different amounts for a SET (+1.45 V, 5 ns) and a RESET
    # (-1.3 V, 20 ns) pulse: with one nominal step for both, a fall is delivered short by
    # the ratio of the two steps (each polarity has the right sign but its own gain, and
    # competitive STDP, whose rises and falls nearly cancel, can then see the net delivered
    # change take the opposite sign of the net asked one). Counting the pulses of a fall
    # with the device's RESET step (calibrate) delivers both polarities as asked at the
    # calibration state (unbiased pulse counts; all cells at the same gap, so each pulse
    # moves a cell by the calibrated step up to the change of the step after one pulse)
    xb = _pku_pair_array(24, 16, 1.4e-9)
    cal = transfer.calibrate(xb, transfer.Coincidence(dw_pulse=0.02, **PKU_SCHEME))
    rise, fall = float(cal.dw_pulse), float(cal.dw_fall)
    assert 0.005 < fall < 0.8 * rise < 0.05  # the RESET step is the smaller one here
    k = jax.random.PRNGKey(3)
    sign = jnp.where(jax.random.uniform(k, xb.shape) < 0.5, 1.0, -1.0)
    n_cells = xb.shape[0] * xb.shape[1] / 2

    def ratios(scheme, dw_rise, dw_fall):
        asked = jnp.where(sign > 0, dw_rise, -dw_fall)  # one pulse expected per cell
        _, rep = transfer.deliver(xb, asked, scheme, jax.random.PRNGKey(4))
        d = np.asarray(rep.delivered)
        up, down = np.asarray(sign) > 0, np.asarray(sign) < 0
        return d[up].sum() / float(asked[up].sum()), d[down].sum() / float(asked[down].sum())

    # stochastic rounding of one expected pulse in two slots: 0, 1 or 2 pulses, sd 0.71
    tol = 4 * 0.71 / np.sqrt(n_cells) + 0.1
    r_up, r_down = ratios(cal, rise, fall)
    assert abs(r_up - 1) < tol and abs(r_down - 1) < tol, (r_up, r_down)
    single = transfer.Coincidence(dw_pulse=rise, **PKU_SCHEME)
    r_up, r_down = ratios(single, rise, rise)
    assert abs(r_up - 1) < tol and abs(r_down - fall / rise) < tol, (r_up, r_down)
    # traceable; a pulse below the switching threshold moves nothing and is refused
    jcal = eqx.filter_jit(transfer.calibrate)(xb, transfer.Coincidence(dw_pulse=0.02, **PKU_SCHEME))
    np.testing.assert_allclose([jcal.dw_pulse, jcal.dw_fall], [rise, fall], rtol=1e-5)
    weak = transfer.Coincidence(dw_pulse=0.02, **{**PKU_SCHEME, "v_reset": -0.6})
    with pytest.raises(RuntimeError, match="fall pulse"):
        transfer.calibrate(xb, weak)
    with pytest.raises(ValueError, match="dw_fall"):
        transfer.Coincidence(dw_pulse=0.02, dw_fall=0.0)


def test_learning_stats_split_rises_and_falls():
    # asked +2 and -3, delivered +3 and -1.5: the net ratio (1.5 / -1) has the wrong sign,
    # the per-polarity ratios are 1.5 and 0.5
    from xbar.learning.unsupervised import LearningStats

    st = LearningStats.zeros(jnp.float32).add(
        jnp.array([[2.0, -3.0, 0.0]]), jnp.array([[3.0, -1.5, 0.25]]), None
    )
    assert float(st.delivered_sum / st.asked_sum) < 0
    np.testing.assert_allclose([st.ratio_rise, st.ratio_fall], [1.5, 0.5])
    np.testing.assert_allclose([st.asked_sum, st.delivered_sum], [-1.0, 1.75])
