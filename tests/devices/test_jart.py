"""JART VCM v1b: read resistances (reference target V5), polarity of the SET/RESET
loop, passivity, implicit-differentiation gradients vs finite differences, step-size
convergence, variability, jit/vmap and parameter validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.devices.jart import EPS0, JART

from xbar import devices

# Reference section 1.3 [DER] (T = 293 K, no self-heating, eps0 = 8.854e-12).
V5 = [(20.0, -0.2, 1.59e3), (20.0, 0.2, 1.62e3), (0.008, -0.2, 105e3), (0.008, 0.2, 66e3)]


@pytest.mark.parametrize("n, v, r_ref", V5)
def test_read_resistance_matches_reference_v5(n, v, r_ref):
    m = JART(self_heating=False)
    r = float(m.resistance(m.init_state((), n=n), v))
    assert abs(r / r_ref - 1) < 0.05


def test_read_self_heating_is_small():
    # The default (self-heating on) changes the 0.2 V reads by < 1 % from the T0 ones,
    # although the LRS filament warms by ~50 K: the Schottky contact, the only
    # temperature-dependent element, carries a small share of the read voltage.
    hot, cold = JART(), JART(self_heating=False)
    for n in (20.0, 0.008):
        for v in (-0.2, 0.2):
            r_hot = hot.resistance(hot.init_state((), n=n), v)
            r_cold = cold.resistance(cold.init_state((), n=n), v)
            assert abs(float(r_hot / r_cold) - 1) < 0.01
            t = hot.operating_point(hot.init_state((), n=n), jnp.asarray(v))["t"]
            assert 293.0 <= float(t) < 293.0 + 60.0


def test_eps0_is_the_reference_value():
    assert EPS0 == pytest.approx(8.854e-12, rel=1e-3)


def test_circuit_closure_holds():
    # V = V_S + I (R_disc + R_plug + R_ser) (1.8), and the Schottky law at the solution.
    m = JART()
    s = m.init_state((3,), n=jnp.array([0.008, 1.0, 20.0]))
    for v in (-1.2, -0.3, 0.4, 1.1):
        op = m.operating_point(s, jnp.full((3,), v))
        total = op["vs"] + op["v_disc"] + op["v_plug"] + op["v_ser"]
        np.testing.assert_allclose(total, v, rtol=1e-12, atol=1e-14)
        area = jnp.pi * m.r**2
        i_s = m._schottky(op["vs"], s.n, op["t"], area)
        np.testing.assert_allclose(i_s, op["i"], rtol=1e-8)


def test_passive_and_zero_at_zero():
    m = JART()
    n = jnp.array([0.008, 0.05, 0.5, 5.0, 20.0])
    s = m.init_state((31, 5), n=n)
    v_list = jnp.linspace(-1.5, 1.5, 31).at[15].set(0.0)  # exactly 0 in the middle
    v = jnp.broadcast_to(v_list[:, None], (31, 5))
    i = np.asarray(m.current(s, v))
    assert np.all(i * np.asarray(v) >= 0)
    np.testing.assert_array_equal(i[15], 0.0)
    # Higher N, higher current (lower resistance) at every nonzero voltage.
    assert np.all(np.diff(np.abs(i[np.arange(31) != 15]), axis=1) > 0)


def test_gradients_match_finite_differences():
    m = JART()
    s = m.init_state((), n=1.0)

    def i_of_v(v):
        return m.current(s, v)

    for v0 in (-0.5, 0.3, 0.9):
        h = 1e-6
        fd = (i_of_v(v0 + h) - i_of_v(v0 - h)) / (2 * h)
        g = jax.grad(i_of_v)(v0)
        assert abs(float(g / fd) - 1) < 1e-5

    # At N = 0.02 the image-force-lowered barrier is still > 0, so phi_bn0 matters.
    s_low = m.init_state((), n=0.02)

    def i_of_param(phi, v):
        return JART(phi_bn0=phi).current(s_low, v)

    for v0 in (-0.5, 0.3):
        h = 1e-6
        fd = (i_of_param(0.18 + h, v0) - i_of_param(0.18 - h, v0)) / (2 * h)
        g = jax.grad(i_of_param)(0.18, v0)
        assert abs(float(g / fd) - 1) < 1e-5


def test_set_reset_loop_polarity():
    # Triangular sweep 0 -> -1.3 V -> 0 -> +1.5 V -> 0 (1 s): the negative branch SETs
    # (N to N_max, |I| jumps), the positive branch RESETs (N back to N_min).
    m = JART(n_substeps=10)
    n_pts = 200
    t = np.linspace(0.0, 1.0, n_pts, endpoint=False)
    tri = 1.0 - np.abs(1.0 - 4.0 * (t % 0.5))  # two triangles 0 -> 1 -> 0
    v = np.where(t < 0.5, -1.3 * tri, 1.5 * tri)
    s0 = m.init_state(())

    def step(s, vv):
        s = m.apply_pulse(s, vv, 1.0 / n_pts)
        return s, (s.n, m.current(s, vv))

    _, (n, i) = jax.jit(lambda s, v: jax.lax.scan(step, s, v))(s0, jnp.asarray(v))
    n, i = np.asarray(n), np.asarray(i)
    half = n_pts // 2
    assert n[half - 1] > 0.95 * m.n_max  # SET completed on the negative branch
    k_set = np.argmax(n[:half] > 1.0)
    assert v[k_set] < -0.3  # switching at negative voltage, not during a read-level bias
    assert abs(i[k_set]) > 10 * abs(i[k_set - 1]) * abs(v[k_set] / v[k_set - 1])
    assert n[-1] < 1.5 * m.n_min  # RESET on the positive branch
    k_reset = half + np.argmax(n[half:] < 1.0)
    assert v[k_reset] > 0.3
    assert np.all(n[: half // 8] < 2 * m.n_min)  # no switching at small negative bias (> -0.33 V)


def test_step_halving_changes_conductance_below_1_percent():
    # Partial SETs and RESETs (the final N is inside the window), one vectorised call.
    v = jnp.array([-0.8, -1.0, 1.3, 1.6])
    w = jnp.array([3e-5, 1e-8, 1e-5, 3e-8])
    n0 = jnp.array([0.008, 0.008, 20.0, 20.0])
    g = []
    for ns in (100, 200):
        m = JART(n_substeps=ns)
        s = m.apply_pulse(m.init_state((4,), n=n0), v, w)
        g.append(np.asarray(m.conductance(s)))
    assert np.all(np.abs(g[1] / g[0] - 1) < 0.01)


def test_jit_vmap_and_shapes():
    m = JART(n_substeps=20)
    s = m.init_state((4,), n=jnp.array([0.008, 0.1, 1.0, 20.0]))
    v = jnp.array([-0.2, 0.2, -0.3, 0.3])
    i_plain = m.current(s, v)
    i_vmap = jax.vmap(lambda n, vv: m.current(m.init_state((), n=n), vv))(s.n, v)
    np.testing.assert_allclose(i_vmap, i_plain, rtol=1e-12)
    new = m.apply_pulse(s, jnp.full((4,), -1.2), 1e-6)
    new_jv = jax.jit(jax.vmap(lambda n: m.apply_pulse(m.init_state((), n=n), -1.2, 1e-6).n))(s.n)
    np.testing.assert_allclose(new_jv, new.n, rtol=1e-10)


def test_d2d_sample_defaults():
    m = JART(n_substeps=20)
    key = jax.random.PRNGKey(0)
    d = m.sample(key, (2000,))
    for name, spread in devices.JART_D2D_SPREADS.items():
        logs = np.log(np.asarray(getattr(d, name)) / getattr(m, name))
        assert abs(np.std(logs) / spread.sigma - 1) < 0.1
    assert d.sample(key, (2000,)).n_max.shape == (2000,)
    s = d.init_state((2000,))
    np.testing.assert_array_equal(s.n, d.n_min)


def test_c2c_full_switching_and_no_change_without_motion():
    """One full SET: the var factors spread with the per-switching sigma (bounds wide
    open here), the same key gives the same draw; no key, or a read pulse that does not
    move N, leaves them at 1 (issue 14 item 3: the old rule re-drew only when N crossed
    the middle of its window)."""
    wide = {f"c2c_bound_{p}": 5.0 for p in ("n_min", "n_max", "l_disc", "r")}
    m = JART(n_substeps=20, **wide)
    s = m.init_state((1000,))
    k = jax.random.PRNGKey(1)
    a = m.apply_pulse(s, -1.3, 1e-6, k)
    b = m.apply_pulse(s, -1.3, 1e-6, k)
    np.testing.assert_array_equal(a.f_r, b.f_r)  # same key, same draw
    c = m.apply_pulse(s, -1.3, 1e-6)
    np.testing.assert_array_equal(c.f_r, 1.0)
    assert np.all(np.asarray(c.n) > 0.5 * m.n_max)  # a full switching
    # progress s = |ln(N_end / N_start)| / ln(N_max / N_min) = 1 for a full SET
    prog = np.log(np.asarray(a.n) / m.n_min) / np.log(m.n_max / m.n_min)
    for p in ("r", "l_disc", "n_max"):
        sd = np.std(np.log(np.asarray(getattr(a, "f_" + p))))
        expect = getattr(m, "c2c_sigma_" + p) * np.sqrt(np.mean(prog))
        assert sd == pytest.approx(expect, rel=0.1), p
    r = m.apply_pulse(s, 0.2, 1e-6, k)  # N at N_min, a RESET-polarity read: no motion
    np.testing.assert_array_equal(r.f_r, 1.0)


@pytest.mark.parametrize(
    "v, n0, width", [(-0.87, 0.008, 1e-7), (1.5, 20.0, 1e-7)], ids=["SET", "RESET"]
)
def test_gradual_trains_spread_with_distance_switched(v, n0, width):
    """Gradual (analog) trains: eight partial pulses give a cycle-to-cycle spread of the var
    factors with Var(ln f) = sigma^2 * (distance switched / window), the statistics of the
    rule (aihwkit's per-pulse bounded change spread over the switching progress), and a
    spread of the programmed conductance that the deterministic model does not have."""
    wide = {f"c2c_bound_{p}": 5.0 for p in ("n_min", "n_max", "l_disc", "r")}
    m = JART(n_substeps=10, n_grid=16, n_newton=12, **wide)
    s = m.init_state((1000,), n=n0)
    amps = jnp.full((8,), v)
    st, g = m.pulse_train(s, amps, width, jax.random.PRNGKey(2))
    det, g_det = m.pulse_train(m.init_state((1,), n=n0), amps, width)
    window = np.log(m.n_max / m.n_min)
    prog = abs(np.log(float(det.n[0]) / n0)) / window
    assert 0.01 < prog < 0.9  # gradual: part of the window, not a full switching
    # per-device distance switched (the paths are monotone: net = total variation)
    prog_i = np.abs(np.log(np.asarray(st.n) / n0)) / window
    for p in ("r", "l_disc"):
        sd = np.std(np.log(np.asarray(getattr(st, "f_" + p))))
        expect = getattr(m, "c2c_sigma_" + p) * np.sqrt(np.mean(prog_i))
        assert sd == pytest.approx(expect, rel=0.1), p
    g_end = np.asarray(g[-1])
    assert np.std(g_end) > 1e-3 * np.mean(g_end)
    assert np.median(g_end) == pytest.approx(float(g_det[-1, 0]), rel=0.05)


def test_c2c_bounds_hold():
    """The factors stay inside exp(+-bound) over many full cycles (bounded walk)."""
    m = JART(n_substeps=10, n_grid=16, n_newton=12)
    s = m.init_state((500,))
    amps = jnp.tile(jnp.array([-1.3, 1.7]), 5)
    st, _ = m.pulse_train(s, amps, 1e-6, jax.random.PRNGKey(3))
    for p in ("n_min", "n_max", "l_disc", "r"):
        lf = np.log(np.asarray(getattr(st, "f_" + p)))
        bound = getattr(m, "c2c_bound_" + p)
        assert np.all(np.abs(lf) <= bound * (1 + 1e-9)), p
        assert np.std(lf) > 0.2 * min(bound, getattr(m, "c2c_sigma_" + p)), p


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"r": -1e-9}, "r"),
        ({"n_min": 30.0}, "n_min"),
        ({"l_disc": 4e-9}, "l_disc"),
        ({"s_reset": 0.0}, "s_reset"),
        ({"mu_n": float("nan")}, "mu_n"),
        ({"r_tiox": -1.0}, "r_tiox"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        JART(**kwargs)


def test_bad_state_raises():
    with pytest.raises(ValueError, match="n"):
        JART().init_state((2,), n=-1.0)
