"""Metrics: every count against a hand count on a small network; the crossbar energy against
the array layer's own accounting (xbar.read_energy); the energy total as the sum of its parts."""

import jax
import numpy as np
import pytest
from xbar.networks import metrics

import xbar
from xbar import networks as nw

DT = 1e-3
W = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, -1.0]])
X = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])


def _net(synapses):
    lif = nw.LIF(tau=2 * DT, r=1.0, v_threshold=0.9)
    return nw.Network.create(
        {
            "in": nw.Identity((3,)),
            "fc": synapses,
            "lif": nw.NeuronLayer(lif, DT, (2,)),
            "out": nw.Identity((2,)),
        },
        [("in", "fc"), ("fc", "lif"), ("lif", "out")],
        input="in",
        output="out",
        dt=DT,
    )


def test_counts_equal_hand_counts():
    # Hand count (module docstring of the test data):
    # nonzero weights per input column: 2, 0, 2; steps: inputs {0,1} -> 2, {1,2} -> 2,
    # {0,2} -> 4: 8 ACs; dense 6 per step: 18. LIF inputs W x: [1, .5], [2, -1], [3, -.5];
    # with dt/tau = 0.5, v_th = 0.9: neuron 0 v = .5, 1.25 (spike, reset 0), 1.5 (spike, 0);
    # neuron 1 v = .25, -.375, -.4375: 2 spikes of 6 values, sparsity 2/3. Stored membranes
    # n0 (.5, 0, 0), n1 (.25, -.375, -.4375): updates 2 + 2 + 1 = 5, neuron ops 5 x 4.
    net = _net(nw.IdealSynapses(W))
    np.testing.assert_array_equal(net.run(X), [[0, 0], [1, 0], [1, 0]])
    m = metrics.measure(net, X)
    assert m.effective_acs == 8 and m.effective_macs == 0
    assert m.dense_ops == 18
    assert m.activation_sparsity == pytest.approx(2 / 3, rel=1e-12)
    assert m.membrane_updates == 5 and m.neuron_ops == 20
    assert m.connection_sparsity == pytest.approx(2 / 6, rel=1e-12)
    assert m.routed_events == 6  # the input spikes entering the crossbar layer
    # footprint: W 6 x 8 bytes; LIF tau, r, v_leak, v_threshold, v_reset, t_ref 6 x 8 bytes;
    # LIF state v and refractory 2 x 2 x 8 bytes
    assert m.footprint_bytes == 48 + 48 + 32
    assert m.first_spike_steps == 2 and m.first_spike_s == pytest.approx(2 * DT)
    assert m.inference_time_s == pytest.approx(3 * DT)
    assert m.crossbar_energy_j == 0.0  # ideal synapses
    e = metrics.EnergyModel()
    assert m.energy_j == pytest.approx(5 * e.e_update_j + 2 * e.e_spike_j + 6 * e.e_route_j)
    loihi = m.digital["Loihi (Davies et al., IEEE Micro 38(1), 2018)"]
    assert loihi == pytest.approx(8 * 27.1e-12 + 5 * 81e-12)
    # a batch of the same sample twice gives the same per-sample counts
    m2 = metrics.measure(net, np.stack([X, X], axis=1))
    assert m2.effective_acs == 8 and m2.membrane_updates == 5
    assert "effective synaptic ops" in m.summary()


def test_analog_inputs_count_as_macs():
    net = _net(nw.IdealSynapses(W))
    x = np.array([[0.5, 0.0, 2.0], [1.0, 0.0, 0.0]])  # step 0 analog: 2 + 2; step 1 spikes: 2
    m = metrics.measure(net, x)
    assert m.effective_macs == 4 and m.effective_acs == 2


def test_conv_counts_every_output_position():
    # 1 input channel 3x3, kernel 2x2 with one zero weight, no padding: 4 output positions;
    # dense = 4 positions x 4 weights; an input with only the centre pixel on touches every
    # window once, at a nonzero weight in 3 of the 4 windows (the zero is kernel (0, 0),
    # which covers the centre in the bottom-right window).
    w = np.array([[[[0.0, 1.0], [1.0, 1.0]]]])
    conv = nw.ConvSynapses.create(w, (3, 3))
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0
    net = nw.Network.create(
        {"in": nw.Identity((1, 3, 3)), "conv": conv, "out": nw.Identity((1, 2, 2))},
        [("in", "conv"), ("conv", "out")],
        input="in",
        output="out",
        dt=DT,
    )
    m = metrics.measure(net, x)
    assert m.dense_ops == 16
    assert m.effective_acs == 3


def test_crossbar_energy_balances_against_read_energy():
    cfg = nw.CrossbarConfig(wiring=xbar.Wiring.ideal(), read_noise=False)
    syn = nw.CrossbarSynapses.create(W, cfg, jax.random.PRNGKey(0))
    net = _net(syn)
    m = metrics.measure(net, X)
    # every step has input events: three reads of the single tile, by the array layer
    tile = jax.tree_util.tree_map(lambda a: a[0, 0] if hasattr(a, "ndim") else a, syn.tiles.tiles)
    e = xbar.read_energy(tile, X / syn.input_scale)
    np.testing.assert_allclose(m.crossbar_energy_j, float(np.sum(e.total)), rtol=1e-12)
    np.testing.assert_allclose(e.array, e.supplied, rtol=1e-9)  # the layer's own balance
    assert m.crossbar_energy_j > 0
    parts = m.crossbar_energy_j + m.neuron_energy_j + m.routing_energy_j
    np.testing.assert_allclose(m.energy_j, parts, rtol=1e-12)
    np.testing.assert_allclose(m.synops_per_joule, 8 / m.energy_j, rtol=1e-12)
    assert m.step_latency_s == pytest.approx(float(e.latency_s))
    # a step without input events costs no read
    m0 = metrics.measure(net, np.vstack([X, np.zeros((2, 3))]))
    np.testing.assert_allclose(m0.crossbar_energy_j, m.crossbar_energy_j, rtol=1e-12)


def test_energy_model_validates():
    with pytest.raises(ValueError, match="e_route_j"):
        metrics.EnergyModel(e_route_j=-1.0)
