"""Bad-input contract over the public API of ``xbar.devices`` (issue 15).

Every public model method and constructor, given NaN, inf, a wrong sign, a wrong shape,
an empty array, integers, lists and both key types (``jax.random.key`` and
``jax.random.PRNGKey``), gives either a finite, correct result or a ``ValueError``
naming the parameter -- eagerly, and under ``jit`` the same message (``eqx.error_if``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xbar import devices

NAN, INF = float("nan"), float("inf")


def _fast(cls):
    """Each model with its cheapest integration settings (the checks are the same)."""
    kw = {
        devices.StanfordPKU: {"n_substeps": 8, "n_noise_steps": 4},
        devices.JART: {"n_substeps": 2, "n_grid": 8, "n_newton": 6},
        devices.VTEAM: {"n_substeps": 4},
        devices.PCM: {},
        devices.PCMStatistical: {},
    }[cls]
    return cls(**kw)


MODELS = [devices.StanfordPKU, devices.JART, devices.VTEAM, devices.PCM, devices.PCMStatistical]
IDS = [m.__name__ for m in MODELS]
PULSE_V = {
    devices.StanfordPKU: -1.2,
    devices.JART: -1.0,
    devices.VTEAM: -1.8,  # SET from the default HRS
    devices.PCM: 1.2,
    devices.PCMStatistical: 1.0,
}


@eqx.filter_jit
def _jit_pulse(m, s, v, w):
    return m.apply_pulse(s, v, w)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


# ---- pulses -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS, ids=IDS)
@pytest.mark.parametrize(
    "v, width, name",
    [
        (NAN, 1e-8, "v"),
        (INF, 1e-8, "v"),
        (1.0, -1e-9, "width_s"),
        (1.0, NAN, "width_s"),
        (1.0, INF, "width_s"),
    ],
)
def test_apply_pulse_rejects_bad_pulses(cls, v, width, name):
    m = _fast(cls)
    s = m.init_state((3,))
    with pytest.raises(ValueError, match=name):
        m.apply_pulse(s, v, width)
    # under jit the same message from eqx.error_if (one compilation per model)
    with pytest.raises(Exception, match=name):
        jax.block_until_ready(_jit_pulse(m, s, jnp.asarray(v), jnp.asarray(width)))


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_apply_pulse_accepts_lists_ints_empty_and_both_key_types(cls):
    m = _fast(cls)
    s = m.init_state((2,))
    v = PULSE_V[cls]
    a = m.apply_pulse(s, [v, v], [10e-9, 10e-9])  # lists
    b = m.apply_pulse(s, jnp.asarray([v, v]), 10e-9)
    np.testing.assert_allclose(jax.tree.leaves(a)[0], jax.tree.leaves(b)[0], rtol=1e-12)
    z = m.apply_pulse(s, 0, 0)  # integers, zero width: nothing happens
    for x, y in zip(jax.tree.leaves(z), jax.tree.leaves(s), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-30)
    e = m.apply_pulse(m.init_state((0,)), v, 1e-8)  # empty arrays
    assert all(x.shape == (0,) for x in jax.tree.leaves(e))
    for key in (jax.random.PRNGKey(3), jax.random.key(3)):
        out = m.apply_pulse(s, v, 10e-9, key)
        assert _finite(out)
    np.testing.assert_array_equal(
        jax.tree.leaves(m.apply_pulse(s, v, 10e-9, jax.random.key(3)))[0],
        jax.tree.leaves(m.apply_pulse(s, v, 10e-9, jax.random.key(3)))[0],
    )


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_apply_pulse_rejects_shapes_that_do_not_broadcast(cls):
    m = _fast(cls)
    with pytest.raises(ValueError):
        m.apply_pulse(m.init_state((3,)), jnp.ones(4), 1e-8)


# ---- reads, drift, state ------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS, ids=IDS)
@pytest.mark.parametrize("v_read", [0.0, NAN, INF])
def test_conductance_rejects_bad_read_voltage(cls, v_read):
    m = _fast(cls)
    with pytest.raises(ValueError, match="v_read"):
        m.conductance(m.init_state((2,)), v_read)


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_current_rejects_nan_voltage_and_accepts_lists(cls):
    m = _fast(cls)
    s = m.init_state((2,))
    with pytest.raises(ValueError, match="v"):
        m.current(s, NAN)
    i = m.current(s, [0.1, 0.1])
    assert _finite(i) and np.all(np.asarray(i) >= 0)
    np.testing.assert_allclose(i, m.current(s, jnp.array([0.1, 0.1])), rtol=1e-12)


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
@pytest.mark.parametrize("t_s", [-1.0, NAN, INF])
def test_drift_rejects_bad_times(cls, t_s):
    m = _fast(cls)
    with pytest.raises(ValueError, match="t_s"):
        m.drift(m.init_state((2,)), t_s)
    with pytest.raises(Exception, match="t_s"):
        jax.block_until_ready(jax.jit(m.drift)(m.init_state((2,)), jnp.asarray(t_s)))


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_init_state_rejects_bad_shapes_and_values(cls):
    m = _fast(cls)
    with pytest.raises(ValueError, match="shape"):
        m.init_state((-1, 2))
    with pytest.raises(ValueError, match="unknown"):
        m.init_state((2,), nonsense=1.0)
    name = next(iter(m.state_defaults()))
    with pytest.raises(ValueError, match=name):
        m.init_state((2,), **{name: NAN})
    with pytest.raises(ValueError, match=name):
        m.init_state((2,), **{name: jnp.ones(3)})
    assert m.init_state(4).__getattribute__(name).shape == (4,)  # an int is a 1-D shape


@pytest.mark.parametrize("cls", MODELS, ids=IDS)
def test_read_noise_both_key_types(cls):
    m = _fast(cls)
    s = m.init_state((8,))
    a = m.read_noise(s, jax.random.key(1))
    b = m.read_noise(s, jax.random.PRNGKey(1))
    assert _finite(a) and _finite(b)
    np.testing.assert_array_equal(a, m.read_noise(s, jax.random.key(1)))


# ---- constructors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, kwargs, name",
    [
        (devices.JART, {"v_read": -1.0}, "v_read"),
        (devices.PCM, {"t_melt_k": INF}, "t_melt_k"),
        (devices.PCM, {"v_read": NAN}, "v_read"),
        (devices.StanfordPKU, {"v_read": 0.0}, "v_read"),
        (devices.VTEAM, {"k_off": NAN}, "k_off"),
        (devices.PCMStatistical, {"g_max": -1.0}, "g_max"),
        (devices.JART, {"c2c_bound_r": -0.1}, "c2c_bound_r"),
    ],
)
def test_constructors_reject_bad_parameters(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


# ---- PCMStatistical -------------------------------------------------------------------------
def test_pcm_statistical_program_and_read():
    m = devices.PCMStatistical()
    with pytest.raises(ValueError, match="g_target"):
        m.program(jax.random.key(0), jnp.array([1e-6, NAN]))
    with pytest.raises(ValueError, match="g_target"):
        m.program(None, 2 * m.g_max)
    with pytest.raises(Exception, match="g_target"):
        jax.block_until_ready(jax.jit(lambda g: m.program(None, g).g_prog)(jnp.array([NAN])))
    st = m.program(jax.random.PRNGKey(0), [1e-6, 5e-6])  # a list
    with pytest.raises(ValueError, match="t_s"):
        m.read(st, jax.random.key(1), t_s=-1.0)
    assert _finite(m.read(st, jax.random.key(1), t_s=[10.0, 20.0]))


# ---- the rest of the public API ------------------------------------------------------------
def test_switching_laws_and_noise_helpers():
    for law in (devices.LognormalSwitching(), devices.PoissonSwitching()):
        with pytest.raises(ValueError, match="width_s"):
            law.probability(1.0, -1e-9)
        with pytest.raises(ValueError, match="v"):
            law.probability(NAN, 1e-7)
        p = law.probability([0.8, 1.0], 1e-7)
        assert np.all((np.asarray(p) >= 0) & (np.asarray(p) <= 1))
        for key in (jax.random.key(0), jax.random.PRNGKey(0)):
            assert law.sample(key, 1.0, 1e-7).dtype == jnp.bool_
    with pytest.raises(ValueError, match="n_steps"):
        devices.telegraph_trace(jax.random.key(0), (2,), -1, 1e-3, 1e-3, 1e-3)
    with pytest.raises(ValueError, match="dt_s"):
        devices.telegraph_trace(jax.random.key(0), (2,), 4, 0.0, 1e-3, 1e-3)
    with pytest.raises(ValueError, match="q_flicker"):
        devices.ReadNoise(q_flicker=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        devices.Spread(NAN)
    with pytest.raises(ValueError, match="nonsense"):
        devices.StanfordPKU().sample(jax.random.key(0), (2,), {"nonsense": 0.1})
    with pytest.raises(ValueError, match="shape"):
        devices.StanfordPKU().sample(jax.random.key(0), (-2,), {"g0": 0.1})
