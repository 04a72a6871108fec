"""CrossbarLinear: ideal limit, each non-ideality against its definition, jit/vmap/grad."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.networks import (
    CrossbarLinear,
    ExactIRDrop,
    FirstOrderIRDrop,
    GaussianNoise,
    NoIRDrop,
    NoNoise,
)

import xbar

N_IN, N_OUT = 12, 5


def _layer(**kw):
    return CrossbarLinear.init(jax.random.PRNGKey(0), N_IN, N_OUT, **kw)


def _x(b=4, seed=1):
    return jax.random.uniform(jax.random.PRNGKey(seed), (b, N_IN), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize(
    "mapping", [xbar.DifferentialMapping(), xbar.ReferenceMapping(1e-6, 20e-6)]
)
def test_ideal_limit_is_exactly_dense(mapping):
    layer = _layer(mapping=mapping)
    x = _x()
    np.testing.assert_array_equal(
        np.asarray(layer(x, key=jax.random.PRNGKey(2))), np.asarray(x @ layer.weight + layer.bias)
    )


def test_conductance_bounds_and_converters():
    layer = _layer(dac=xbar.DAC(bits=4), adc=xbar.ADC(bits=6, out_bound=2.0), use_bias=False)
    layer = eqx.tree_at(lambda s: s.weight, layer, layer.weight.at[0, 0].set(3.0))
    x = _x() * 1.5
    # reference written from the definitions: DAC levels k/7 on [-1, 1], weights clipped
    # to w_max = 1, ADC step 2*2/(2^6-2) clipped at +-2
    xq = np.round(np.clip(np.asarray(x), -1, 1) * 7) / 7
    w = np.clip(np.asarray(layer.weight), -1, 1)
    lsb = 4.0 / 62
    ref = np.round(np.clip(xq @ w, -2, 2) / lsb) * lsb
    np.testing.assert_allclose(np.asarray(layer(x)), ref, rtol=0, atol=1e-12)
    # straight-through: d(sum y)/dx is the weight row sum inside the ranges
    small = _layer(dac=xbar.DAC(bits=4), use_bias=False)
    g = jax.grad(lambda x: jnp.sum(small(x)))(0.3 * _x(1)[0])
    np.testing.assert_allclose(g, np.asarray(small.weight).sum(1), rtol=1e-12)


def test_ir_drop_models_against_the_exact_solve():
    wiring = xbar.Wiring(r_wl=20.0, r_bl=20.0)
    layer = _layer(wiring=wiring, use_bias=False)
    x = _x()
    g = layer.mapping.to_conductance(layer.weight)
    i_exact = xbar.solve(g, x * 0.2, **wiring.solve_kwargs()).i_out
    y_exact = layer.mapping.combine(i_exact) / (0.2 * layer.mapping.scale)
    y_exact_layer = eqx.tree_at(lambda s: s.ir_drop, layer, ExactIRDrop())(x)
    np.testing.assert_allclose(y_exact_layer, y_exact, rtol=1e-9, atol=1e-12)
    eps = float(xbar.ir_drop_fraction(g, **wiring.solve_kwargs()).max())
    err1 = float(jnp.linalg.norm(layer(x) - y_exact) / jnp.linalg.norm(y_exact))
    err0 = float(jnp.linalg.norm(eqx.tree_at(lambda s: s.ir_drop, layer, NoIRDrop())(x) - y_exact))
    assert err1 <= 0.1 * eps**2 * 10  # outputs of a differential pair: difference amplifies
    assert err0 / float(jnp.linalg.norm(y_exact)) > 5 * err1


def test_noise_statistics():
    # programming noise: one draw per call, std sigma/scale per cell of a pair -> the
    # weight error has variance 2 (rel G)^2 / scale^2 summed over the pair
    rel = 0.05
    layer = _layer(prog_noise=GaussianNoise(rel=rel), use_bias=False)
    keys = jax.random.split(jax.random.PRNGKey(3), 4000)
    w = jax.vmap(layer.hardware_weights)(keys)
    g = layer.mapping.to_conductance(layer.weight)
    s2 = (rel * g) ** 2
    var = (s2[:, 0::2] + s2[:, 1::2]) / layer.mapping.scale**2
    np.testing.assert_allclose(np.var(np.asarray(w), 0), var, rtol=0.12)
    # frozen draw: the same weights for every read
    frozen = layer.program(jax.random.PRNGKey(4))
    x = _x(1)
    np.testing.assert_array_equal(
        frozen(x, key=jax.random.PRNGKey(5)), frozen(x, key=jax.random.PRNGKey(6))
    )
    # read noise at the outputs: Var y_j = sum_i x_i^2 Var w_ij
    rlayer = _layer(read_noise=GaussianNoise(rel=rel), use_bias=False)
    ys = jax.vmap(lambda k: rlayer(x[0], key=k))(keys)
    ref = (np.asarray(x[0]) ** 2) @ var
    np.testing.assert_allclose(np.var(np.asarray(ys), 0), ref, rtol=0.12)
    np.testing.assert_allclose(
        np.mean(np.asarray(ys), 0), x[0] @ rlayer.weight, atol=4 * np.sqrt(ref.max() / 4000)
    )


def test_read_noise_per_call_and_the_merged_output_noise():
    rel, out = 0.05, 0.03
    keys = jax.random.split(jax.random.PRNGKey(13), 4000)
    x = _x(1)[0]
    base = _layer(read_noise=GaussianNoise(rel=rel), use_bias=False)
    g = base.mapping.to_conductance(base.weight)
    s2 = (rel * g) ** 2
    ref = (np.asarray(x) ** 2) @ ((s2[:, 0::2] + s2[:, 1::2]) / base.mapping.scale**2)
    # output noise joins the read noise in one draw: Var y = sum_i x_i^2 Var w_ij + out^2
    both = _layer(read_noise=GaussianNoise(rel=rel), out_noise=out, use_bias=False)
    ys = np.asarray(jax.vmap(lambda k: both(x, key=k))(keys))
    np.testing.assert_allclose(np.var(ys, 0), ref + out**2, rtol=0.12)
    # PerCall: one draw into the weights per realise (or per call), shared by its reads,
    # with the per-read marginal over draws
    pc = _layer(read_noise=GaussianNoise(rel=rel), use_bias=False, noise_draw=xbar.PerCall())
    real = pc.realise(jax.random.PRNGKey(14))
    np.testing.assert_array_equal(
        real(x, key=jax.random.PRNGKey(1)), real(x, key=jax.random.PRNGKey(2))
    )
    assert real.cache[1] is None
    yb = np.asarray(pc(jnp.stack([x, x]), key=jax.random.PRNGKey(3)))
    np.testing.assert_array_equal(yb[0], yb[1])  # one draw for the reads of a call
    yr = np.asarray(jax.vmap(lambda k: pc.realise(k)(x))(keys))
    np.testing.assert_allclose(np.var(yr, 0), ref, rtol=0.12)
    np.testing.assert_allclose(np.mean(yr, 0), x @ pc.weight, atol=4 * np.sqrt(ref.max() / 4000))
    g_pc = jax.grad(lambda l: jnp.sum(l.realise(jax.random.PRNGKey(5))(x) ** 2))(pc)
    assert np.all(np.isfinite(np.asarray(g_pc.weight)))
    with pytest.raises(ValueError, match="noise_draw"):
        _layer(noise_draw="per_call")


def test_jit_vmap_grad_and_finite_differences():
    layer = _layer(
        wiring=xbar.Wiring(r_wl=5.0, r_bl=5.0),
        ir_drop=FirstOrderIRDrop(),
        prog_noise=GaussianNoise(rel=0.02),
        read_noise=GaussianNoise(rel=0.02),
    )
    x = _x()
    f = eqx.filter_jit(lambda m, x, k: m(x, key=k))
    y = f(layer, x, jax.random.PRNGKey(1))
    yv = jax.vmap(lambda xi: f(layer, xi[None], jax.random.PRNGKey(1)))(x)
    assert yv.shape == (4, 1, N_OUT) and y.shape == (4, N_OUT)

    # noise amplitudes are not differentiated (stop_gradient): check the gradient of the
    # deterministic read of one frozen programming draw with IR drop by finite differences
    g_noisy = eqx.filter_grad(lambda m: jnp.sum(m(x, key=jax.random.PRNGKey(7))))(layer)
    assert bool(jnp.all(jnp.isfinite(g_noisy.weight)))
    layer = eqx.tree_at(lambda s: s.read_noise, layer.program(jax.random.PRNGKey(9)), NoNoise())

    def loss(m):
        return jnp.sum(jnp.tanh(m(x)))

    grads = eqx.filter_grad(loss)(layer)
    d = jax.random.normal(jax.random.PRNGKey(8), layer.weight.shape) * 1e-5
    plus = eqx.tree_at(lambda s: s.weight, layer, layer.weight + d)
    minus = eqx.tree_at(lambda s: s.weight, layer, layer.weight - d)
    fd = (loss(plus) - loss(minus)) / 2
    assert float(jnp.sum(grads.weight * d)) == pytest.approx(float(fd), rel=1e-5)


def test_remapped_largest_weight_and_spikes_keep_their_gradient():
    # with remapping the largest weight sits exactly at w_max and spikes exactly at the DAC's
    # full scale: an ideal tile then has the gradient of the dense product, w.r.t. both
    layer = _layer(remap=True, dac=xbar.DAC(bits=8), adc=xbar.ADC(bits=None, clip=False))
    x = (jax.random.uniform(jax.random.PRNGKey(4), (6, N_IN)) < 0.5).astype(jnp.float32)
    c = jax.random.normal(jax.random.PRNGKey(5), (6, N_OUT))
    gw, gx = jax.grad(
        lambda w, x: jnp.sum(c * eqx.tree_at(lambda s: s.weight, layer, w)(x)), argnums=(0, 1)
    )(layer.weight, x)
    np.testing.assert_allclose(gw, x.T @ c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx, c @ layer.weight.T, rtol=1e-5, atol=1e-6)
    # spikes drive the rows without the DAC: the same read and gradients for 0/1 inputs
    np.testing.assert_allclose(layer(x, spikes=True), layer(x), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="spikes=True needs 0/1 inputs"):
        layer(0.5 * x + 0.25, spikes=True)


def test_noisy_adc_draws_its_noise_and_draws_per_read():
    # the ADC's input noise is drawn per read (it was the one noise source a read ignored);
    # draws_per_read says which realised layers need a key per read
    layer = _layer(adc=xbar.NoisyADC(bits=None, clip=False, noise=0.1))
    x = jnp.zeros((4000, N_IN))
    y = layer(x, key=jax.random.PRNGKey(3)) - layer.bias
    assert float(jnp.std(y)) == pytest.approx(0.1, rel=0.03)
    assert float(jnp.max(jnp.abs(layer(x) - layer.bias))) == 0.0  # no key: noiseless
    assert layer.draws_per_read
    noisy = _layer(read_noise=GaussianNoise(rel=0.02))
    assert noisy.draws_per_read and noisy.realise(jax.random.PRNGKey(1)).draws_per_read
    per_call = _layer(read_noise=GaussianNoise(rel=0.02), noise_draw=xbar.PerCall())
    assert not per_call.realise(jax.random.PRNGKey(1)).draws_per_read
    assert not _layer().realise(jax.random.PRNGKey(1)).draws_per_read


def test_bad_input():
    with pytest.raises(ValueError, match="weight must have shape"):
        CrossbarLinear(weight=jnp.ones(3))
    with pytest.raises(ValueError, match="input_scale"):
        CrossbarLinear(weight=jnp.ones((2, 2)), input_scale=0.0)
    with pytest.raises(ValueError, match="ir_drop"):
        CrossbarLinear(weight=jnp.ones((2, 2)), ir_drop="first")


def test_known_faults_read_stuck_conductances_and_block_gradients():
    layer = _layer(use_bias=False)
    p = 2 * N_OUT
    stuck = jnp.zeros((N_IN, p), jnp.int8).at[0, :].set(1).at[1, :].set(2)
    faulty = eqx.tree_at(lambda s: s.stuck, layer, stuck, is_leaf=lambda x: x is None)
    w = faulty.hardware_weights()
    # row 0: both cells of every pair at g_max -> weight 0; row 1: both at g_min -> 0
    np.testing.assert_allclose(w[:2], 0.0, atol=1e-15)
    np.testing.assert_array_equal(w[2:], jnp.clip(layer.weight[2:], -1, 1))
    g = eqx.filter_grad(lambda l: jnp.sum(l(jnp.ones(N_IN))))(faulty)
    np.testing.assert_array_equal(g.weight[:2], 0.0)
    np.testing.assert_array_equal(g.weight[2:], 1.0)
