"""Cores and networks: crossbar layers converge to the ideal run as non-idealities are switched
off one by one, tiles sum partial results digitally, a physical core charges the membrane
with the read-pulse charge, and networks run under jit / vmap / grad (smooth spike)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import xbar
from xbar import devices
from xbar import networks as nw

DT = 1e-3
RNG = np.random.default_rng(11)


class SmoothSpike(nw.AbstractSpikeFunction):
    """Logistic stand-in for a spike so that the network is differentiable."""

    def __call__(self, x):
        return jax.nn.sigmoid(4.0 * x)


def _graph(n_in=8, n_out=6):
    w, b = RNG.normal(size=(n_out, n_in)), 0.1 * RNG.normal(size=n_out)
    lif = nir.LIF(
        tau=np.full(n_out, 0.01),
        r=np.full(n_out, 10.0),
        v_leak=np.zeros(n_out),
        v_threshold=np.full(n_out, 0.5),
        v_reset=np.zeros(n_out),
    )
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc": nir.Affine(weight=w, bias=b),
            "lif": lif,
            "output": nir.Output(output_type={"output": np.array([n_out])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )


def test_crossbar_run_converges_to_the_ideal_run():
    """RMS error of the synaptic currents against W x + b falls as wire resistance, read
    noise and quantisation are switched off one by one; with all off the run is the ideal
    run spike for spike."""
    g = _graph()
    x = RNG.random((20, 8, 8))  # analog inputs in [0, 1] (T, B, n_in): the DAC matters
    key, run_key = jax.random.PRNGKey(0), jax.random.PRNGKey(1)
    exact = nw.DeviceProgramming(noise=False)
    full = nw.CrossbarConfig(
        device=devices.PCMStatistical(),
        programming=exact,
        wiring=xbar.Wiring(r_wl=100.0, r_bl=100.0),
        dac=xbar.DAC(bits=6),
        adc=xbar.ADC(bits=8),
    )
    steps = [
        full,
        eqx.tree_at(lambda c: c.wiring, full, xbar.Wiring.ideal()),
        nw.CrossbarConfig(
            device=full.device,
            programming=exact,
            wiring=xbar.Wiring.ideal(),
            dac=full.dac,
            adc=full.adc,
            read_noise=False,
        ),
        full.ideal(),
    ]
    ideal = nw.from_nir(g, dt=DT, crossbar=None)
    ref = ideal.trace(x, nodes=("fc", "output"))
    errors = []
    for cfg in steps:
        net = nw.from_nir(g, dt=DT, crossbar=cfg, key=key)
        # the synaptic layer on the ideal run's inputs (the inputs here are the data)
        tr = net.trace(x, run_key, nodes=("fc", "output"))
        errors.append(float(np.sqrt(np.mean((np.asarray(tr["fc"]) - ref["fc"]) ** 2))))
        last = tr
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[2] > 1e-3  # quantisation alone is visible
    assert errors[3] < 1e-12 * float(np.max(np.abs(ref["fc"])))
    np.testing.assert_array_equal(last["output"], ref["output"])
    assert float(np.sum(ref["output"])) > 20


def test_tiles_add_partial_sums_digitally():
    w = RNG.normal(size=(5, 7))
    x = (RNG.random((4, 7)) < 0.5).astype(float)
    cfg = nw.CrossbarConfig(tile_shape=(3, 2)).ideal()
    syn = nw.CrossbarSynapses.create(w, cfg, jax.random.PRNGKey(0))
    assert syn.tiles.grid == (3, 3)
    y = jax.vmap(syn)(x)
    np.testing.assert_allclose(y, x @ w.T, rtol=1e-12, atol=1e-12)
    # noisy tiles: same key, same read; another key, another read
    noisy_cfg = nw.CrossbarConfig(
        tile_shape=(3, 2), wiring=xbar.Wiring.ideal(), adc=xbar.ideal_adc()
    )
    noisy = nw.CrossbarSynapses.create(w, noisy_cfg, jax.random.PRNGKey(0))
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    np.testing.assert_array_equal(noisy(x[0], k1), noisy(x[0], k1))
    assert not np.array_equal(noisy(x[0], k1), noisy(x[0], k2))
    with pytest.raises(ValueError, match="shape"):
        syn(np.ones(6))


def test_physical_core_integrates_the_read_pulse_charge():
    """An IF core in SI units: one step with input spikes adds Q / C = (W x) i_unit t_read / C
    to each membrane (i_unit = v_read * mapping scale)."""
    c_m = 1e-12
    w = np.array([[1.0, -0.5, 0.25], [0.0, 0.5, 1.0]])
    cfg = nw.CrossbarConfig().ideal()
    neuron = nw.IF.from_circuit(c_m=c_m, v_threshold=100.0)
    core = nw.Core.create(w, neuron, dt=DT, crossbar=cfg, key=jax.random.PRNGKey(0))
    spikes = np.array([1.0, 0.0, 1.0])
    state, out = eqx.filter_jit(nw.Core.step)(core, core.init_state(), spikes)
    i_unit = cfg.dac.v_read * cfg.mapping.scale
    expect = (w @ spikes) * i_unit * cfg.pulse_width_s / c_m
    np.testing.assert_allclose(state.v, expect, rtol=1e-12)
    np.testing.assert_array_equal(out, 0.0)
    # batched with vmap
    other = np.array([0.0, 1.0, 0.0])
    batch = np.stack([spikes, other])
    sb = jax.vmap(core.step, in_axes=(None, 0))(core.init_state(), batch)[0]
    np.testing.assert_allclose(sb.v[0], expect, rtol=1e-12)
    np.testing.assert_allclose(sb.v[1], (w @ other) * i_unit * cfg.pulse_width_s / c_m, rtol=1e-12)
    with pytest.raises(ValueError, match="w_max"):
        nw.Core.create(3 * w, neuron, dt=DT, crossbar=cfg, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="key"):
        nw.Core.create(w, neuron, dt=DT, crossbar=cfg)


def test_network_of_cores_with_delay_routing():
    """Two ideal cores joined through a one-step Delay: core 2 sees core 1's spikes one step
    late (reference loop written here)."""
    w1, w2 = RNG.normal(size=(4, 3)), RNG.normal(size=(2, 4))
    lif = nw.LIF(tau=0.01, r=10.0, v_threshold=0.5)
    c1, c2 = (nw.Core.create(w, lif, dt=DT) for w in (w1, w2))
    net = nw.Network.create(
        {
            "in": nw.Identity((3,)),
            "c1": c1,
            "d": nw.Delay.create(np.full(4, DT), DT),
            "c2": c2,
            "out": nw.Identity((2,)),
        },
        [("in", "c1"), ("c1", "d"), ("d", "c2"), ("c2", "out")],
        input="in",
        output="out",
        dt=DT,
    )
    x = (RNG.random((40, 3)) < 0.5).astype(float)
    v1, v2, z1_prev, ref = np.zeros(4), np.zeros(2), np.zeros(4), []
    for xt in x:
        v1 = v1 + 0.1 * (-v1 + 10.0 * (w1 @ xt))
        z1 = (v1 > 0.5).astype(float)
        v1 = np.where(z1 > 0, 0.0, v1)
        v2 = v2 + 0.1 * (-v2 + 10.0 * (w2 @ z1_prev))
        z2 = (v2 > 0.5).astype(float)
        v2 = np.where(z2 > 0, 0.0, v2)
        z1_prev = z1
        ref.append(z2)
    ref = np.array(ref)
    assert ref.sum() > 3
    np.testing.assert_array_equal(net.run(x), ref)
    # export: a core becomes synapses + neurons
    g = nw.to_nir(net)
    assert {"c1.synapses", "c1.neurons", "c2.synapses"} <= set(g.nodes)
    np.testing.assert_array_equal(nw.from_nir(g).run(x), ref)


def test_network_jit_vmap_grad_with_a_smooth_spike():
    g = _graph(4, 3)
    net = nw.from_nir(g, dt=DT, spike_fn=SmoothSpike())
    x = (RNG.random((15, 5, 4)) < 0.5).astype(float)
    run = eqx.filter_jit(nw.Network.run)
    y = run(net, x)
    assert y.shape == (15, 5, 3)
    np.testing.assert_allclose(y[:, 2], net.run(x[:, 2]), rtol=1e-12)

    def loss(a):
        scaled = eqx.tree_at(lambda n: n.nodes["fc"].weight, net, a * net.nodes["fc"].weight)
        return jnp.sum(scaled.run(x) ** 2)

    grad = jax.grad(loss)(1.0)
    h = 1e-6
    fd = (loss(1.0 + h) - loss(1.0 - h)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    assert abs(grad) > 0


def test_network_errors_name_the_node():
    lif = nw.NeuronLayer(nw.LIF(), DT, (3,))
    nodes = {"in": nw.Identity((2,)), "lif": lif, "out": nw.Identity((3,))}
    with pytest.raises(ValueError, match="'in'.*'lif'.*shape"):
        nw.Network.create(nodes, [("in", "lif"), ("lif", "out")], input="in", output="out", dt=DT)
    with pytest.raises(ValueError, match="unknown node 'nope'"):
        nw.Network.create(nodes, [("in", "nope")], input="in", output="out", dt=DT)
    nodes["in"] = nw.Identity((3,))
    net = nw.Network.create(nodes, [("in", "lif"), ("lif", "out")], input="in", output="out", dt=DT)
    with pytest.raises(ValueError, match="shape"):
        net.run(np.ones((4, 2, 2, 3)))
    with pytest.raises(ValueError, match="dt"):
        nw.NeuronLayer(nw.LIF(), 0.0, (3,))


def _synapse_net(read_noise, w, tile_shape=(256, 256)):
    cfg = nw.CrossbarConfig(
        wiring=xbar.Wiring(r_wl=2.0, r_bl=2.0),
        ir_drop=nw.FirstOrderIRDrop(),
        adc=xbar.ideal_adc(),
        dac=xbar.ideal_dac(),
        read_noise=read_noise,
        tile_shape=tile_shape,
    )
    syn = nw.CrossbarSynapses.create(w, cfg, jax.random.PRNGKey(0))
    nodes = {"in": nw.Identity((w.shape[1],)), "syn": syn, "out": nw.Identity((w.shape[0],))}
    return nw.Network.create(
        nodes, [("in", "syn"), ("syn", "out")], input="in", output="out", dt=DT
    )


def test_per_call_read_noise_is_one_draw_per_run_with_the_per_read_marginal():
    # xbar.PerCall(): one read-noise draw of every tile per run, shared by all steps and
    # samples; another key, another draw; over many runs a read has the distribution of a
    # per-read draw (xbar.PerRead()): same mean, same variance within the sampling error.
    w = RNG.uniform(0.2, 1.0, size=(4, 10))
    x = jnp.ones((3, 2, 10))
    per_call = _synapse_net(xbar.PerCall(), w, tile_shape=(4, 4))  # 3 tile rows, 1 column
    assert per_call.nodes["syn"].tiles.grid == (3, 1)
    y = np.asarray(per_call.run(x, jax.random.PRNGKey(1)))
    np.testing.assert_array_equal(y, np.broadcast_to(y[0, 0], y.shape))
    assert np.all(y[0, 0] != np.asarray(per_call.run(x, jax.random.PRNGKey(2)))[0, 0])
    assert np.all(y[0, 0] != np.asarray(per_call.run(x, None))[0, 0])
    per_read = _synapse_net(True, w, tile_shape=(4, 4))
    y_r = np.asarray(per_read.run(x, jax.random.PRNGKey(1)))
    assert np.all(y_r[0, 0] != y_r[1, 0]) and np.all(y_r[0, 0] != y_r[0, 1])
    n = 3000
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    one = jnp.ones((1, 10))
    a = np.asarray(jax.vmap(lambda k: per_call.run(one, k)[0])(keys))
    b = np.asarray(per_read.run(jnp.ones((1, n, 10)), jax.random.PRNGKey(4))[0])
    se = np.sqrt(a.var(0) / n + b.var(0) / n)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 5 * se)
    np.testing.assert_allclose(a.var(0), b.var(0), rtol=0.2)
    with pytest.raises(ValueError, match="read_noise"):
        nw.CrossbarConfig(read_noise="per_call")


def test_layers_split_evenly_over_the_fewest_tiles():
    # 10 inputs on tiles of at most 4 rows: three tiles of 4 rows each (ceil(10 / 3) = 4)
    # and outputs 7 on at most 3 columns: three tiles of 3 columns; no padding beyond that
    w = RNG.normal(size=(7, 10))
    cfg = nw.CrossbarConfig(tile_shape=(4, 3)).ideal()
    syn = nw.CrossbarSynapses.create(w, cfg, jax.random.PRNGKey(0))
    assert syn.tiles.grid == (3, 3) and syn.tiles.tile_shape == (4, 3)
    syn = nw.CrossbarSynapses.create(
        RNG.normal(size=(5, 784)), nw.CrossbarConfig().ideal(), jax.random.PRNGKey(0)
    )
    assert syn.tiles.grid == (4, 1) and syn.tiles.tile_shape == (196, 5)
    x = (RNG.random(784) < 0.3).astype(float)
    np.testing.assert_allclose(syn(x), syn.weight @ x, rtol=1e-10, atol=1e-12)
