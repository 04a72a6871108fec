"""Transfer and lifetime evaluation: the programmed network against the ideal one, drift
compensation against the drift law, faults, and a light version of the accuracy study."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import RateEncoding, SpikingMLP, load_digits
from xbar.learning import evaluate as E
from xbar.learning import hardware_aware as H
from xbar.networks import LI, CrossbarConfig, DeviceProgramming

import xbar
from xbar import devices

PCM = devices.PCMStatistical()


def _net(sizes=(6, 5, 3), seed=0):
    spec = H.HardwareSpec.ideal()
    return SpikingMLP.build(
        sizes, key=jax.random.PRNGKey(seed), readout=LI(), synapse=spec.synapse_factory()
    )


def _ideal_config(**kw):
    base = dict(
        device=PCM,
        mapping=xbar.DifferentialMapping(0.0, PCM.g_max),
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(),
        adc=xbar.ideal_adc(),
        programming=DeviceProgramming(noise=False),
    )
    base.update(kw)
    return CrossbarConfig(**base)


def test_ideal_hardware_reproduces_the_trained_network():
    net = _net()
    x = (jax.random.uniform(jax.random.PRNGKey(1), (8, 4, 6)) < 0.4).astype(jnp.float64)
    prog = E.program_network(net, _ideal_config(), jax.random.PRNGKey(2))
    # at programming time (no drift) and without read noise (key None) the crossbars read
    # the weights exactly up to rounding
    dep = E.deployed(net, prog, 0.0, drift_compensation=False)
    np.testing.assert_allclose(dep(x).output, net(x).output, rtol=1e-9, atol=1e-12)
    # every layer holds W / s with s = max|W| / w_max
    for (xb, s), syn in zip(prog, net.synapses, strict=True):
        np.testing.assert_allclose(xb.weights() * s, syn.layer.weight, rtol=1e-9, atol=1e-15)


def test_drift_compensation_undoes_a_uniform_drift():
    # noiseless programming: nu = mu_nu(G) per cell; with all weights of one magnitude every
    # cell drifts by ((t + t0)/t0)^(-mu), which the global factor must undo exactly
    net = _net()
    w = net.synapses[0].layer.weight
    w1 = jnp.where(w >= 0, 0.5, -0.5)
    net = eqx.tree_at(lambda m: m.synapses[0].layer.weight, net, w1)
    prog = E.program_network(net, _ideal_config(), jax.random.PRNGKey(3))
    t = 86400.0
    dep = E.deployed(net, prog, t, drift_compensation=True)
    mu = PCM.nu_stats(jnp.asarray(PCM.g_max))[0]  # |w| = w_max after the remap
    expected = ((t + PCM.t0_s) / PCM.t0_s) ** mu
    np.testing.assert_allclose(dep.synapses[0].alpha, expected, rtol=1e-9)
    dep_nc = E.deployed(net, prog, t, drift_compensation=False)
    x = jnp.ones((6,))
    np.testing.assert_allclose(
        dep.synapses[0](x), dep_nc.synapses[0](x) * expected, rtol=1e-9, atol=1e-15
    )


def test_faults_are_drawn_and_read_at_their_stuck_conductances():
    net = _net((20, 16, 3))
    faults = E._fault_model(0.1)
    prog = E.program_network(net, _ideal_config(), jax.random.PRNGKey(4), faults=faults)
    xb, _ = prog[0]
    assert xb.stuck is not None
    on, off = devices.StuckAtFaults.stuck_fraction(xb.stuck)
    assert 0.03 < float(on + off) < 0.2
    g = xb.conductances()
    np.testing.assert_array_equal(g[xb.stuck == 1], PCM.g_max)
    np.testing.assert_array_equal(g[xb.stuck == 2], 0.0)
    with pytest.raises(ValueError, match="CrossbarSynapse"):
        E.program_network(
            SpikingMLP.build((3, 2), key=jax.random.PRNGKey(0)),
            _ideal_config(),
            jax.random.PRNGKey(0),
        )


@pytest.fixture(scope="module")
def digits_net():
    train, test = load_digits(seed=0)
    key = jax.random.PRNGKey(0)
    net = E.train_network(
        H.HardwareSpec.ideal(), train, key, sizes=(64, 32, 10), epochs=4, num_steps=12
    )
    return net, train, test, RateEncoding(num_steps=12)


def test_light_accuracy_study(digits_net):
    # the benchmark's study at small scale with loose bounds: a 64-32-10 network trained
    # for a few epochs, programmed on statistical PCM crossbars (write-verify statistics,
    # wires, 8-bit converters), read after a day with drift compensation
    net, train, test, enc = digits_net
    acc_ideal = E.accuracy(net, test, jax.random.PRNGKey(0), encoding=enc)
    assert acc_ideal >= 0.85
    rows = E.lifetime(
        net,
        test,
        E.pcm_config(),
        jax.random.PRNGKey(1),
        times_s=(86400.0,),
        n_instances=2,
        drift_compensation=(True,),
        encoding=enc,
    )
    assert len(rows) == 1 and rows[0]["drift_compensation"] and len(rows[0]["accuracies"]) == 2
    assert rows[0]["mean"] >= 0.8
    assert rows[0]["mean"] <= acc_ideal + 0.05


def test_fault_tolerance_curve(digits_net):
    # stuck cells hurt; retraining around the known faults wins part of it back
    net, train, test, enc = digits_net
    cfg = E.pcm_config(wiring=xbar.Wiring.ideal())
    rows = E.fault_tolerance(
        net,
        train,
        test,
        cfg,
        H.HardwareSpec.ideal(),
        jax.random.PRNGKey(2),
        fractions=(0.0, 0.1),
        n_instances=1,
        retrain_epochs=1,
        encoding=enc,
    )
    acc = {(r["fraction"], r["retrained"]): r["mean"] for r in rows}
    assert acc[(0.0, False)] == acc[(0.0, True)]
    assert acc[(0.1, False)] < acc[(0.0, False)] - 0.02
    assert acc[(0.1, True)] >= acc[(0.1, False)] - 0.01
