"""Adaptive-threshold LIF and the winner-take-all layer: analytic single steps, invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.networks.wta import AdaptiveLIF, WTALayer


def test_adaptive_lif_step_and_threshold_adaptation():
    n = AdaptiveLIF(tau=10e-3, theta_plus=0.2, tau_theta=0.5, t_ref=0.0)
    st = n.init_state((2,))
    dt = 1e-3
    st, z = n.step(st, jnp.array([0.5, 30.0]), dt)
    a = 1 - np.exp(-dt / 10e-3)
    np.testing.assert_allclose(st.v[0], a * 0.5, rtol=1e-12)
    assert z.tolist() == [0.0, 1.0] and float(st.v[1]) == 0.0
    np.testing.assert_allclose(st.theta, [0.0, 0.2], rtol=1e-12)
    st, _ = n.step(st, jnp.zeros(2), dt)
    np.testing.assert_allclose(st.theta[1], 0.2 * np.exp(-dt / 0.5), rtol=1e-12)
    # the raised threshold: an input that fired a fresh neuron does not fire it now
    fresh = n.init_state((1,))
    v_one = a * 11.0  # just above 1 for a fresh neuron
    assert v_one > 1.0
    _, z1 = n.step(fresh, jnp.array([11.0]), dt)
    raised = fresh.__class__(v=fresh.v, refractory=fresh.refractory, theta=jnp.array([0.2]))
    _, z2 = n.step(raised, jnp.array([11.0]), dt)
    assert float(z1[0]) == 1.0 and float(z2[0]) == 0.0
    with pytest.raises(ValueError, match="tau"):
        AdaptiveLIF(tau=0.0)


def test_wta_one_winner_and_lateral_inhibition():
    layer = WTALayer(neuron=AdaptiveLIF(tau=10e-3, t_ref=0.0), w_inh=0.3, hard=True)
    st = layer.init_state(4)
    i = jnp.array([20.0, 25.0, 5.0, 30.0])  # three cross threshold
    st, z = jax.jit(layer.step, static_argnums=2)(st, i, 1e-3)
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0]  # the largest margin wins
    a = 1 - np.exp(-1e-3 / 10e-3)
    expect = np.maximum(a * np.array([20.0, 25.0, 5.0]) - 0.3, -0.3)
    np.testing.assert_allclose(st.v[:3], expect, rtol=1e-12)
    np.testing.assert_allclose(st.theta, [0, 0, 0, layer.neuron.theta_plus], atol=1e-15)
    soft = WTALayer(neuron=AdaptiveLIF(tau=10e-3, t_ref=0.0), w_inh=0.3, hard=False)
    _, z = soft.step(soft.init_state(4), i, 1e-3)
    assert z.tolist() == [1.0, 1.0, 0.0, 1.0]
    # vmap over a batch equals single calls
    batch = jnp.stack([i, i[::-1]])
    sts = jax.vmap(lambda _: layer.init_state(4))(jnp.arange(2))
    _, zb = jax.vmap(lambda s, x: layer.step(s, x, 1e-3))(sts, batch)
    assert zb[1].tolist() == [1.0, 0.0, 0.0, 0.0]
