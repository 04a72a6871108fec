"""Neuron models: one contract over every model, the analytic LIF rate, mismatch statistics,
reset and precision options, the exact integrator against the closed form."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xbar import devices
from xbar import networks as nw


class SmoothSpike(nw.AbstractSpikeFunction):
    """A smooth stand-in for a spike (logistic of slope 4) so that gradients exist."""

    def __call__(self, x):
        return jax.nn.sigmoid(4.0 * x)


# Dimensionless parameters (tau in s, r in Ohm = V/A): an input of 1 A drives v towards 1 V.
DT = 1e-3
MODELS = {
    "LIF": nw.LIF(tau=0.02, r=1.0, v_threshold=0.5),
    "IF": nw.IF(r=50.0, v_threshold=0.5),
    "LI": nw.LI(tau=0.02, r=1.0),
    "CubaLIF": nw.CubaLIF(tau_syn=0.005, tau_mem=0.02, r=1.0, v_threshold=0.5),
    "CubaLI": nw.CubaLI(tau_syn=0.005, tau_mem=0.02, r=1.0),
    "Integrator": nw.Integrator(r=50.0),
}


def _run(neuron, i_in, dt=DT):
    """Outputs over time for inputs ``i_in`` (T, *shape)."""
    state = neuron.init_state(i_in.shape[1:])

    def body(s, i):
        return neuron.step(s, i, dt)

    return jax.lax.scan(body, state, i_in)[1]


def _inputs(shape=(5,), t=60, key=0):
    return jax.random.uniform(jax.random.PRNGKey(key), (t, *shape), minval=0.0, maxval=2.0)


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_shapes_jit_vmap_determinism(name):
    neuron = MODELS[name]
    i_in = _inputs()
    out = _run(neuron, i_in)
    assert out.shape == i_in.shape and out.dtype == jnp.float64
    state = neuron.init_state((5,))
    assert state.v.shape == (5,) and np.all(np.asarray(state.v) == 0)
    assert (state.i_syn is not None) == neuron.current_based
    assert (state.refractory is not None) == neuron.spiking
    if neuron.spiking:
        assert set(np.unique(np.asarray(out))) <= {0.0, 1.0}
        assert np.asarray(out).sum() > 0  # the drive is above threshold
    # jit gives the same numbers; vmap over a batch equals the loop over samples
    np.testing.assert_array_equal(jax.jit(_run, static_argnums=())(neuron, i_in), out)
    batch = jnp.stack([i_in, 0.5 * i_in, 1.5 * i_in], axis=1)  # (T, 3, 5)
    vm = jax.vmap(lambda x: _run(neuron, x), in_axes=1, out_axes=1)(batch)
    for b in range(3):
        np.testing.assert_array_equal(vm[:, b], _run(neuron, batch[:, b]))
    np.testing.assert_array_equal(_run(neuron, i_in), out)  # deterministic


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_gradient_matches_finite_differences(name):
    neuron = MODELS[name]
    if neuron.spiking:
        neuron = eqx.tree_at(lambda n: n.spike_fn, neuron, SmoothSpike())
    i_in = _inputs(t=30)

    def loss(gain):
        return jnp.sum(_run(neuron, gain * i_in) ** 2)

    g = jax.grad(loss)(1.0)
    h = 1e-6
    fd = (loss(1.0 + h) - loss(1.0 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    assert abs(g) > 0


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_bad_input(name):
    neuron = MODELS[name]
    state = neuron.init_state((5,))
    with pytest.raises(ValueError, match="dt"):
        neuron.step(state, jnp.ones(5), 0.0)
    with pytest.raises(ValueError, match="dt"):
        neuron.step(state, jnp.ones(5), -1e-3)
    with pytest.raises(ValueError, match="shape"):
        neuron.step(state, jnp.ones(4), DT)
    cls = type(neuron)
    for field in ("tau", "tau_mem", "tau_syn"):
        if hasattr(neuron, field):
            with pytest.raises(ValueError, match=field):
                cls(**{field: -1.0})
    if neuron.spiking:
        with pytest.raises(ValueError, match="t_ref"):
            cls(t_ref=-1e-3)
        with pytest.raises(ValueError, match="v_threshold"):
            cls(v_threshold=float("nan"))


@pytest.mark.parametrize("name", ["LI", "CubaLI", "Integrator"])
def test_contract_step_independence(name):
    """Forward Euler converges at first order: halving dt halves the error of the
    membrane at a fixed time (against a run at dt / 64), for a time-varying input."""
    neuron = MODELS[name]
    t_end = 0.027

    def v_at_end(dt):
        n = int(round(t_end / dt))
        t = dt * jnp.arange(n)
        i_in = 0.8 * (1.0 + jnp.sin(2 * jnp.pi * t / 0.02))
        return _run(neuron, i_in[:, None], dt)[-1, 0]

    ref = v_at_end(DT / 64)
    e1, e2 = abs(v_at_end(DT) - ref), abs(v_at_end(DT / 2) - ref)
    assert 1.6 < e1 / e2 < 2.4


def test_spiking_models_converge_in_dt():
    """Spike counts of an LIF over a fixed time converge as dt shrinks."""
    neuron = MODELS["LIF"]
    counts = []
    for dt in (1e-4, 5e-5, 2.5e-5):
        n = int(round(0.5 / dt))
        counts.append(float(_run(neuron, jnp.full((n, 1), 1.2), dt).sum()))
    assert abs(counts[2] - counts[1]) <= abs(counts[1] - counts[0]) + 1


@pytest.mark.parametrize("t_ref", [0.0, 2e-3])
def test_lif_constant_current_fires_at_the_analytic_rate(t_ref):
    """Rate 1 / (t_ref + tau ln((v_inf - v_reset) / (v_inf - v_th))), Gerstner et al. 2014."""
    tau, r, v_th, v_reset, i0 = 0.02, 1.0, 0.5, 0.0, 0.9
    c_m, g_l = tau / r, 1.0 / r
    neuron = nw.LIF.from_circuit(
        c_m=c_m, g_leak=g_l, v_threshold=v_th, v_reset=v_reset, t_ref=t_ref
    )
    np.testing.assert_allclose([neuron.tau, neuron.r], [tau, r], rtol=1e-12)
    dt, t_total = 1e-6, 1.0
    n = int(round(t_total / dt))
    z = np.asarray(_run(neuron, jnp.full((n, 1), i0), dt)[:, 0])
    times = np.nonzero(z)[0] * dt
    v_inf = r * i0
    isi = t_ref + tau * np.log((v_inf - v_reset) / (v_inf - v_th))
    np.testing.assert_allclose(np.mean(np.diff(times)), isi, rtol=1e-3)


def test_mismatch_has_the_requested_statistics():
    n = 20000
    lif = nw.LIF(tau=0.02, v_threshold=0.5)
    spread = {"v_threshold": devices.Spread(0.01, "absolute"), "tau": 0.05}
    s = lif.sample(jax.random.PRNGKey(3), (n,), spread)
    th, tau = np.asarray(s.v_threshold), np.asarray(s.tau)
    assert th.shape == tau.shape == (n,)
    # mean within 4 standard errors, std within 3 % (1 / sqrt(2n) ~ 0.5 %)
    assert abs(th.mean() - 0.5) < 4 * 0.01 / np.sqrt(n)
    np.testing.assert_allclose(th.std(), 0.01, rtol=0.03)
    np.testing.assert_allclose(np.std(np.log(tau / 0.02)), 0.05, rtol=0.03)
    assert abs(np.median(tau) - 0.02) < 0.02 * 4 * 0.05 / np.sqrt(n) * 1.26
    # the sampled neurons run per neuron
    out = _run(s, jnp.full((100, n), 0.9))
    assert out.shape == (100, n)
    with pytest.raises(ValueError, match="unknown parameter"):
        lif.sample(jax.random.PRNGKey(0), (3,), {"nope": 0.1})


def test_reset_by_subtraction_keeps_the_overshoot():
    v_th = 0.5
    for reset, expect in [(nw.ResetToValue(), 0.1), (nw.ResetBySubtraction(), 0.7 - 0.4)]:
        neuron = nw.IF(r=1.0, v_threshold=v_th, v_reset=0.1, reset=reset)
        state, z = neuron.step(neuron.init_state((1,)), jnp.array([700.0]), 1e-3)
        assert float(z[0]) == 1.0
        np.testing.assert_allclose(state.v[0], expect, rtol=1e-12)


def test_threshold_is_strict():
    neuron = nw.IF(r=1.0, v_threshold=0.5)
    state, z = neuron.step(neuron.init_state((2,)), jnp.array([500.0, 500.0 + 1e-6]), 1e-3)
    np.testing.assert_array_equal(z, [0.0, 1.0])


def test_fixed_point_membrane_lies_on_the_grid():
    fp = nw.FixedPoint(bits=4, v_min=-1.0, v_max=1.0)
    neuron = nw.LI(tau=0.02, r=1.0, precision=fp)
    v = np.asarray(_run(neuron, _inputs(t=40)))
    k = (v - fp.v_min) / fp.step
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert np.all((v >= -1) & (v <= 1))
    with pytest.raises(ValueError, match="bits"):
        nw.FixedPoint(bits=0)
    with pytest.raises(ValueError, match="v_min"):
        nw.FixedPoint(bits=4, v_min=1.0, v_max=0.0)


def test_exact_decay_matches_the_closed_form():
    """For a constant input, ExactDecay gives v(t) = r i (1 - exp(-t / tau)) at every step."""
    tau, r, i0, dt = 0.02, 2.0, 0.3, 1e-3
    neuron = nw.LI(tau=tau, r=r, integrator=nw.ExactDecay())
    v = np.asarray(_run(neuron, jnp.full((50, 1), i0), dt)[:, 0])
    t = dt * np.arange(1, 51)
    np.testing.assert_allclose(v, r * i0 * (1 - np.exp(-t / tau)), rtol=1e-12)


def test_refractory_period_holds_the_membrane():
    neuron = nw.IF(r=1000.0, v_threshold=0.5, t_ref=3e-3)
    z = np.asarray(_run(neuron, jnp.full((20, 1), 1.0), 1e-3)[:, 0])
    # fires at step 0 (v = 1 > 0.5), held for 3 steps, then 1 step to fire again
    np.testing.assert_array_equal(np.nonzero(z)[0], np.arange(0, 20, 4))


def test_heaviside_is_strict_and_keeps_dtype():
    h = nw.Heaviside()
    np.testing.assert_array_equal(h(jnp.array([-1.0, 0.0, 1e-300])), [0.0, 0.0, 1.0])
    assert h(jnp.zeros(2, jnp.float32)).dtype == jnp.float32
