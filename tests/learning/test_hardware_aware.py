"""Hardware-aware training layers: device-derived noise against the device model, the aihwkit
noise formula, the synapse protocol, jit/vmap/grad."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import DenseSynapse, SpikingMLP
from xbar.learning import hardware_aware as H
from xbar.networks import LI, CrossbarLinear, NoIRDrop

import xbar
from xbar import devices

PCM = devices.PCMStatistical()
G = jnp.linspace(2e-6, 25e-6, 6)
N_MC = 8000


def _mc(g, key):
    """Monte Carlo of the device: many devices programmed to each of ``g``."""
    return jnp.broadcast_to(g, (N_MC,) + g.shape), jax.random.split(key, 3)


def test_pcm_noise_sources_against_the_device_model():
    np.testing.assert_allclose(H.PCMProgrammingNoise(PCM).sigma(G), PCM.prog_sigma(G), rtol=1e-12)
    g, (k1, k2, k3) = _mc(G, jax.random.PRNGKey(0))
    # drift-exponent spread after global compensation of the mean drift, at one day
    t = 86400.0
    st = PCM.program(k1, g)
    st = eqx.tree_at(lambda s: s.g_prog, st, g)  # isolate drift: no programming noise
    g_t = PCM.conductance(PCM.drift(st, t))
    comp = g_t / jnp.mean(g_t, 0)  # ideal per-conductance compensation of the mean
    rel = jnp.std(comp, 0)
    np.testing.assert_allclose(H.PCMDriftSpread(PCM, t).sigma(G) / G, rel, rtol=0.15)
    # 1/f read noise at one day: std of many reads of one programmed state
    st = PCM.drift(PCM.program(None, g), t)
    reads = PCM.read(st, k3)
    np.testing.assert_allclose(
        H.PCMReadNoise(PCM, t).sigma(G) * PCM.drift_factor(PCM.nu_stats(G)[0], t),
        jnp.std(reads, 0),
        rtol=0.05,
    )


def test_aihwkit_pcm_read_noise_formula():
    # aihwkit PCM_READ: y_j += w_noise sqrt(sum_i |W_ij| x_i^2) xi for weights in [-1, 1]
    w = jax.random.uniform(jax.random.PRNGKey(1), (10, 4), minval=-1, maxval=1)
    x = jax.random.uniform(jax.random.PRNGKey(2), (10,), minval=-1, maxval=1)
    spec = H.HardwareSpec.aihwkit_hwa(wiring=xbar.Wiring.ideal())
    layer = eqx.tree_at(
        lambda l: (l.dac, l.adc, l.out_noise),
        spec.layer(w),
        (xbar.ideal_dac(), xbar.ideal_adc(), 0.0),
    )
    ys = jax.vmap(lambda k: layer(x, key=k))(jax.random.split(jax.random.PRNGKey(3), N_MC))
    # with the layer-wise remap (W / s on the array, output times s) the variance is
    # s^2 w_noise^2 sum_i |W_ij / s| x_i^2
    s = float(jnp.max(jnp.abs(w)))
    ref = 0.0175**2 * (jnp.abs(w).T @ (x * x)) * s
    np.testing.assert_allclose(jnp.var(ys, 0), ref, rtol=0.05)
    # output noise 0.04 per read, in the units of the remapped weights times s
    layer = eqx.tree_at(lambda l: l.read_noise, spec.layer(w), H.NoNoise())
    layer = eqx.tree_at(lambda l: (l.dac, l.adc), layer, (xbar.ideal_dac(), xbar.ideal_adc()))
    ys = jax.vmap(lambda k: layer(x, key=k))(jax.random.split(jax.random.PRNGKey(4), N_MC))
    np.testing.assert_allclose(jnp.std(ys, 0), 0.04 * s, rtol=0.03)


def test_measured_programming_noise_recovers_a_known_distribution():
    mapping = xbar.DifferentialMapping(0.0, PCM.g_max)
    w = jax.random.uniform(jax.random.PRNGKey(5), (64, 64), minval=-1, maxval=1)
    xb = xbar.Crossbar.create(PCM, (64, 64), mapping=mapping)
    xb = xb.with_state(PCM.program(jax.random.PRNGKey(6), mapping.to_conductance(w)))
    tab = H.measured_programming_noise(xb, w, n_bins=6)
    # the table agrees with Eq. 3.1 at its bin centres (rms over a bin, ~700 cells each)
    np.testing.assert_allclose(tab.sigma(tab.g_grid), PCM.prog_sigma(tab.g_grid), rtol=0.2)
    with pytest.raises(ValueError, match="n_bins"):
        H.measured_programming_noise(xb, w, n_bins=0)


def test_crossbar_synapse_matches_dense_synapse_in_the_ideal_limit():
    key = jax.random.PRNGKey(7)
    spec = H.HardwareSpec(remap=False)
    dense = SpikingMLP.build((6, 5, 3), key=key, readout=LI())
    xnet = SpikingMLP.build((6, 5, 3), key=key, readout=LI(), synapse=spec.synapse_factory())
    # same weights (DenseSynapse stores (n_out, n_in), CrossbarLinear (n_in, n_out))
    syn = tuple(
        H.CrossbarSynapse(spec.layer(d.weight.T, d.bias), i_unit=d.i_unit) for d in dense.synapses
    )
    xnet = eqx.tree_at(lambda m: m.synapses, xnet, syn)
    x = (jax.random.uniform(jax.random.PRNGKey(8), (12, 4, 6)) < 0.3).astype(jnp.float64)
    np.testing.assert_allclose(
        xnet(x, key=key).output, dense(x, key=key).output, rtol=1e-12, atol=1e-15
    )
    assert isinstance(dense.synapses[0], DenseSynapse)


def test_hwa_network_jit_vmap_grad():
    spec = H.HardwareSpec.pcm(t_s=3600.0, wiring=xbar.Wiring(r_wl=5.0, r_bl=5.0))
    net = SpikingMLP.build(
        (8, 6, 3), key=jax.random.PRNGKey(9), readout=LI(), synapse=spec.synapse_factory()
    )
    x = (jax.random.uniform(jax.random.PRNGKey(10), (4, 5, 8)) < 0.4).astype(jnp.float64)

    def loss(m, k):
        return jnp.sum(jnp.max(m(x, key=k).output, axis=0) ** 2)

    _, g = eqx.filter_jit(eqx.filter_value_and_grad(loss))(net, jax.random.PRNGKey(11))
    gw = [s.layer.weight for s in g.synapses]
    assert all(bool(jnp.all(jnp.isfinite(a))) and float(jnp.abs(a).max()) > 0 for a in gw)
    # one layer realised and read under vmap over keys: a different noise draw per key
    syn = net.synapses[0]
    ys = jax.vmap(lambda k: syn.realise(k)(x[0], key=k))(
        jax.random.split(jax.random.PRNGKey(12), 3)
    )
    assert ys.shape == (3, 5, 6) and float(jnp.max(jnp.std(ys, 0))) > 0
    # realise freezes programming noise: a noiseless pass is deterministic
    r = syn.realise(jax.random.PRNGKey(13))
    np.testing.assert_array_equal(r(x[0]), r(x[0]))
    assert isinstance(r.layer, CrossbarLinear) and r.layer.cache is not None


def test_spec_refuses_layers_larger_than_a_tile():
    spec = H.HardwareSpec.aihwkit_hwa()
    with pytest.raises(ValueError, match="max_inputs=512"):
        spec.layer(jnp.zeros((600, 4)))
    assert isinstance(H.HardwareSpec.ideal().ir_drop, NoIRDrop)
