"""VTEAM: thresholds, analytic rate law, bounds, pinched hysteresis, step size, jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.devices import VTEAM


def test_no_change_below_thresholds():
    m = VTEAM()
    s = m.init_state((5,), w=jnp.linspace(0.2e-9, 2.8e-9, 5))
    for v in (-0.29, -0.1, 0.0, 0.1, 0.29):
        new = m.apply_pulse(s, v, 1e-3)
        np.testing.assert_array_equal(new.w, s.w)


@pytest.mark.parametrize("v", [0.5, 0.8, 1.2])
def test_off_rate_matches_analytic_in_window_free_middle(v):
    # Mid-layer f_off = exp(-exp(-15)) = 1 - 3e-7: dw/dt = k_off (V/v_off - 1)^alpha_off.
    m = VTEAM()
    w0 = 0.5e-9
    rate = m.k_off * (v / m.v_off - 1.0) ** m.alpha_off
    width = 1.0e-9 / rate  # moves 1 nm, stays well inside
    new = m.apply_pulse(m.init_state((), w=w0), v, width)
    assert float(new.w - w0) == pytest.approx(1.0e-9, rel=1e-5)


@pytest.mark.parametrize("v", [-0.5, -1.0])
def test_on_rate_matches_analytic(v):
    m = VTEAM()
    w0 = 2.5e-9
    rate = m.k_on * (v / m.v_on - 1.0) ** m.alpha_on  # negative
    width = 1.0e-9 / abs(rate)
    new = m.apply_pulse(m.init_state((), w=w0), v, width)
    assert float(w0 - new.w) == pytest.approx(1.0e-9, rel=1e-5)


def test_bounds_and_resistance_range():
    for iv in ("linear", "exponential"):
        m = VTEAM(iv=iv)
        s = m.init_state((2,), w=jnp.array([m.w_on, m.w_off]))
        np.testing.assert_allclose(m.resistance(s), [m.r_on, m.r_off], rtol=1e-12)
        hi = m.apply_pulse(s, 2.0, 1e-3)
        lo = m.apply_pulse(s, -2.0, 1e-3)
        assert np.all(np.asarray(hi.w) <= m.w_off) and np.all(np.asarray(hi.w) > 2.9e-9)
        assert np.all(np.asarray(lo.w) >= m.w_on) and np.all(np.asarray(lo.w) < 0.1e-9)
    # Exponential I-V: ln R linear in w.
    m = VTEAM(iv="exponential")
    r_mid = m.resistance(m.init_state((), w=1.5e-9))
    assert float(r_mid) == pytest.approx(np.sqrt(m.r_on * m.r_off), rel=1e-12)


def test_pinched_hysteresis_loop():
    m = VTEAM()
    t = jnp.linspace(0.0, 2e-6, 2001)
    v = 1.0 * jnp.sin(2 * jnp.pi * t / 1e-6)
    _, i = m.sweep(m.init_state((), w=1.5e-9), v, 1e-9)
    i, v = np.asarray(i), np.asarray(v)
    assert np.all(i * v >= 0)  # passive, pinched at the origin
    np.testing.assert_allclose(i[np.abs(v) < 1e-12], 0.0, atol=1e-18)
    # Hysteresis: same voltage, different current on the rising and falling branch.
    k_up, k_down = 1100, 1400  # same v on the rising and falling side of the second positive lobe
    assert abs(v[k_up] - v[k_down]) < 1e-9 and abs(i[k_up] - i[k_down]) > 0.05 * abs(i[k_up])


def test_step_halving_below_1_percent():
    for v, w0 in ((0.6, 2.0e-9), (-0.6, 1.0e-9), (1.0, 2.8e-9)):
        g = []
        for ns in (100, 200):
            m = VTEAM(n_substeps=ns)
            s = m.apply_pulse(m.init_state((), w=w0), v, 1e-6)
            g.append(float(m.conductance(s)))
        assert abs(g[1] / g[0] - 1) < 0.01


def test_jit_vmap_grad_and_c2c():
    m = VTEAM(c2c_sigma=0.2)
    s = m.init_state((3,), w=jnp.array([1e-9, 1.5e-9, 2e-9]))
    a = jax.jit(m.apply_pulse)(s, 0.8, 1e-8)
    b = jax.vmap(lambda w: m.apply_pulse(m.init_state((), w=w), 0.8, 1e-8).w)(s.w)
    np.testing.assert_allclose(a.w, b, rtol=1e-12)
    k = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(
        m.apply_pulse(s, 0.8, 1e-8, k).w, m.apply_pulse(s, 0.8, 1e-8, k).w
    )
    g = jax.grad(lambda v: m.current(s, v).sum())(0.1)
    np.testing.assert_allclose(g, np.sum(1 / np.asarray(m.resistance(s))), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"r_on": -1.0}, "r_on"),
        ({"r_off": 5e3}, "r_on"),
        ({"v_on": 0.1}, "v_on"),
        ({"k_off": -1.0}, "k_off"),
        ({"iv": "cubic"}, "iv"),
        ({"w_c": 0.0}, "w_c"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VTEAM(**kwargs)


# The ngspice-extension parameter set of the class docstring (B. Li, SJTU, 2020).
MEMR2 = dict(
    r_on=1e3,
    r_off=300e3,
    w_on=0.0,
    w_off=3e-9,
    a_off=3e-9,
    k_on=-216.2,
    k_off=0.091,
    alpha_on=4.0,
    alpha_off=4.0,
    v_on=-1.5,
    v_off=0.3,
)


def test_documented_parameter_set_switching_times_and_thresholds():
    # Times computed by hand from the stated numbers, window-free middle of the layer:
    # RESET at +1 V: 1 nm in 1e-9 / (0.091 (1/0.3 - 1)^4) = 0.3706 ns (3 nm: 1.11 ns);
    # SET at -2 V: 1 nm in 1e-9 / (216.2 (2/1.5 - 1)^4) = 0.3746 ns (3 nm: 1.12 ns).
    m = VTEAM(**MEMR2)
    t_off = 1e-9 / (0.091 * (1.0 / 0.3 - 1.0) ** 4)
    t_on = 1e-9 / (216.2 * (2.0 / 1.5 - 1.0) ** 4)
    assert 3 * t_off == pytest.approx(1.11e-9, rel=5e-3)
    assert 3 * t_on == pytest.approx(1.12e-9, rel=5e-3)
    up = m.apply_pulse(m.init_state((), w=0.5e-9), 1.0, t_off)
    assert float(up.w) == pytest.approx(1.5e-9, rel=1e-5)
    down = m.apply_pulse(m.init_state((), w=2.5e-9), -2.0, t_on)
    assert float(down.w) == pytest.approx(1.5e-9, rel=1e-5)
    # no motion between the thresholds (reads, and SET drives weaker than 1.5 V)
    s = m.init_state((3,), w=jnp.array([0.5e-9, 1.5e-9, 2.5e-9]))
    for v in (-1.45, -0.1, 0.1, 0.29):
        np.testing.assert_array_equal(m.apply_pulse(s, v, 1e-3).w, s.w)
    # resistance range of the set (linear I-V)
    ends = m.init_state((2,), w=jnp.array([0.0, 3e-9]))
    np.testing.assert_allclose(m.resistance(ends), [1e3, 300e3], rtol=1e-12)
