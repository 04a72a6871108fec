"""Surrogate-gradient BPTT: gradients against a hand-derived backward pass and against finite
differences of a smoothed network; losses against NumPy; the unit current against the
neuron equations; fit on digits and on a temporal task; early stopping."""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from xbar.learning import (
    Accuracy,
    ActivityRegulariser,
    DenseSynapse,
    EarlyStopping,
    FastSigmoid,
    FirstSpikeCrossEntropy,
    LastStep,
    MaxOverTime,
    MeanOverTime,
    MembraneCrossEntropy,
    RateEncoding,
    Regularised,
    SpikeCountCrossEntropy,
    SpikeRate,
    SpikingMLP,
    Trace,
    first_spike_times,
    fit,
    load_digits,
    score,
    spike_patterns,
    train_step,
    unit_current,
)
from xbar.networks import IF, LI, LIF, AbstractSpikeFunction, CubaLIF


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_bptt_matches_a_hand_derived_backward_pass():
    """One LIF layer, 8 steps, fast-sigmoid surrogate: jax.grad of the count cross-entropy
    against the adjoint recursion written out in NumPy (reset path through the surrogate)."""
    k, n_in, n_out, T = 5.0, 3, 2, 8
    lif = LIF(spike_fn=FastSigmoid(slope=k))
    dt = 1e-3
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 3.0, (n_out, n_in))
    b = np.array([0.1, -0.2])
    s = (rng.uniform(size=(T, n_in)) < 0.5).astype(float)
    y = 1
    iu = unit_current(lif, dt)
    model = SpikingMLP((DenseSynapse(w, b, i_unit=iu),), (lif,), dt)
    loss = SpikeCountCrossEntropy()
    g = jax.jit(jax.grad(lambda m: loss(m(jnp.asarray(s)), jnp.asarray(y))))(model)

    a, r, th, vr = dt / lif.tau, lif.r, lif.v_threshold, lif.v_reset
    vs = abs(th - vr)
    v, vp, xs, zs = np.zeros(n_out), [], [], []
    for t in range(T):
        vp.append((1 - a) * v + a * r * iu * (w @ s[t] + b))
        xs.append((vp[-1] - th) / vs)
        zs.append((xs[-1] > 0).astype(float))
        v = (1 - zs[-1]) * vp[-1] + zs[-1] * vr
    counts = np.sum(zs, axis=0)
    assert 0 < counts.sum() < T * n_out  # some spikes, not saturated: the reset path matters
    gz = np.exp(_log_softmax(counts)) - np.eye(n_out)[y]
    lam, gw, gb = np.zeros(n_out), np.zeros_like(w), np.zeros_like(b)
    for t in reversed(range(T)):
        dz = 1.0 / (k * np.abs(xs[t]) + 1.0) ** 2 / vs
        dvp = (gz + lam * (vr - vp[t])) * dz + lam * (1 - zs[t])
        gw += np.outer(dvp * a * r * iu, s[t])
        gb += dvp * a * r * iu
        lam = dvp * (1 - a)
    np.testing.assert_allclose(g.synapses[0].weight, gw, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g.synapses[0].bias, gb, rtol=1e-10, atol=1e-14)


class _SigmoidSpike(AbstractSpikeFunction):
    """A smooth stand-in for the step (test only): the network becomes differentiable in
    the ordinary sense, so finite differences check the whole backward pass."""

    slope: float = 4.0

    def __call__(self, x):
        return jax.nn.sigmoid(self.slope * x)


@pytest.mark.parametrize(
    "readout, loss",
    [
        ("lif", SpikeCountCrossEntropy(scale=0.5)),
        ("li", MembraneCrossEntropy(MaxOverTime(), v_unit=0.2)),
        ("li", MembraneCrossEntropy(LastStep())),
        ("lif", FirstSpikeCrossEntropy(tau=2e-3)),
        (
            "lif",
            Regularised(
                SpikeCountCrossEntropy(),
                ActivityRegulariser(upper=0.5, strength_upper=0.3, lower=2.0, strength_lower=0.1),
            ),
        ),
    ],
    ids=["count", "max-membrane", "last-membrane", "first-spike", "regularised"],
)
def test_gradient_of_a_smoothed_network_matches_finite_differences(readout, loss):
    spike = _SigmoidSpike()
    neuron = LIF(spike_fn=spike, v_reset=-0.1)
    out = LI() if readout == "li" else neuron
    model = SpikingMLP.build((5, 7, 3), key=jax.random.key(1), neuron=neuron, readout=out)
    model = eqx.tree_at(lambda m: m.synapses[0].weight, model, 3 * model.synapses[0].weight)
    x = (jax.random.uniform(jax.random.key(2), (12, 4, 5)) < 0.4).astype(jnp.float64)
    y = jnp.array([0, 2, 1, 2])
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)

    @jax.jit
    def f(theta):
        return loss(eqx.combine(unravel(theta), static)(x), y)

    grad = jax.jit(jax.grad(f))(flat)
    assert jnp.linalg.norm(grad) > 1e-3
    for d in jax.random.normal(jax.random.key(3), (3, flat.size)):
        h = 1e-5
        fd = (f(flat + h * d) - f(flat - h * d)) / (2 * h)
        np.testing.assert_allclose(grad @ d, fd, rtol=1e-6, atol=1e-9)


def test_losses_and_metrics_against_numpy():
    rng = np.random.default_rng(4)
    T, B, n = 9, 5, 4
    z = (rng.uniform(size=(T, B, n)) < 0.2).astype(float)
    z[:, 0, 1] = 0.0  # a neuron that never fires
    hidden = (rng.uniform(size=(T, B, 6)) < 0.3).astype(float)
    v = rng.normal(size=(T, B, n))
    y = np.array([0, 1, 3, 2, 1])
    dt = 1e-3

    def ce(logits):
        return -np.mean(_log_softmax(logits)[np.arange(B), y])

    spiking = Trace((jnp.asarray(hidden), jnp.asarray(z)), jnp.asarray(z), True, dt)
    readout = Trace((jnp.asarray(hidden),), jnp.asarray(v), False, dt)
    np.testing.assert_allclose(SpikeCountCrossEntropy(scale=0.3)(spiking, y), ce(0.3 * z.sum(0)))
    first = np.where(z.any(0), np.argmax(z, axis=0), T) * dt
    np.testing.assert_allclose(first_spike_times(jnp.asarray(z), dt), first, rtol=1e-12)
    per_sample = jax.jit(jax.vmap(first_spike_times, in_axes=(1, None)), static_argnums=1)
    np.testing.assert_allclose(per_sample(jnp.asarray(z), dt), first, rtol=1e-12)
    np.testing.assert_allclose(FirstSpikeCrossEntropy(tau=2e-3)(spiking, y), ce(-first / 2e-3))
    for reduce, ref in (
        (MaxOverTime(), v.max(0)),
        (LastStep(), v[-1]),
        (MeanOverTime(), v.mean(0)),
    ):
        np.testing.assert_allclose(
            MembraneCrossEntropy(reduce, v_unit=0.5)(readout, y), ce(ref / 0.5)
        )
    reg = ActivityRegulariser(upper=2.0, strength_upper=0.7, lower=1.0, strength_lower=0.2)
    c = hidden.sum(0)
    expected = 0.7 * np.mean(np.maximum(c.mean(-1) - 2.0, 0) ** 2) + 0.2 * np.mean(
        np.maximum(1.0 - c, 0) ** 2
    )
    np.testing.assert_allclose(reg(spiking), expected, rtol=1e-12)
    np.testing.assert_allclose(reg(readout), expected, rtol=1e-12)
    loss = SpikeCountCrossEntropy()
    acc = np.mean(np.argmax(z.sum(0), -1) == y)
    np.testing.assert_allclose(Accuracy()(spiking, jnp.asarray(y), loss), acc)
    np.testing.assert_allclose(SpikeRate(layer=0)(spiking, y, loss), hidden.sum(0).mean())
    with pytest.raises(ValueError, match="non-spiking readout"):
        MembraneCrossEntropy().logits(spiking)
    with pytest.raises(ValueError, match="spiking output"):
        SpikeCountCrossEntropy().logits(readout)
    for bad in (
        lambda: SpikeCountCrossEntropy(scale=0.0),
        lambda: FirstSpikeCrossEntropy(tau=-1.0),
    ):
        with pytest.raises(ValueError, match="positive"):
            bad()
    with pytest.raises(ValueError, match="strength_upper"):
        ActivityRegulariser(strength_upper=-1.0)


def test_unit_current_raises_the_membrane_by_one_threshold_distance():
    dt = 1e-4
    lif = LIF(v_threshold=0.4, v_reset=-0.1)
    # forward Euler: dv = (dt / tau) r i, so i_unit = v_scale tau / (r dt) = v_scale C / dt
    np.testing.assert_allclose(unit_current(lif, dt), 0.5 * lif.c_m / dt, rtol=1e-12)
    cuba = CubaLIF(w_in=2.0)
    a_s, a_m = dt / cuba.tau_syn, dt / cuba.tau_mem
    np.testing.assert_allclose(
        unit_current(cuba, dt), cuba.v_threshold / (a_s * a_m * cuba.r * 2.0), rtol=1e-12
    )
    np.testing.assert_allclose(unit_current(LI(), dt), LI().tau / (LI().r * dt), rtol=1e-12)
    np.testing.assert_allclose(unit_current(IF(), dt), IF().v_threshold / (IF().r * dt), rtol=1e-12)
    # one step at the unit current from rest raises the membrane by |v_threshold - v_reset|
    below = LIF(v_threshold=0.6, v_reset=0.1)
    st, z = below.step(below.init_state((1,)), jnp.full((1,), unit_current(below, dt)), dt)
    np.testing.assert_allclose(st.v, 0.5, rtol=1e-12)
    assert z[0] == 0.0


def test_network_batches_like_vmap_and_validates_its_layers():
    model = SpikingMLP.build((6, 5, 4), key=jax.random.key(0), readout=LI())
    x = (jax.random.uniform(jax.random.key(1), (10, 3, 6)) < 0.5).astype(jnp.float64)
    trace = jax.jit(lambda m, x: m(x))(model, x)
    assert trace.output.shape == (10, 3, 4) and trace.spikes[0].shape == (10, 3, 5)
    assert not trace.output_spiking and len(trace.spikes) == 1
    per_sample = jax.vmap(lambda xi: model(xi).output, in_axes=1, out_axes=1)(x)
    np.testing.assert_allclose(per_sample, trace.output, rtol=1e-12, atol=1e-15)
    # the ideal dense layer: i = i_unit (x W^T + b)
    syn = model.synapses[0]
    np.testing.assert_allclose(
        syn(x[0]), syn.i_unit * (np.asarray(x[0]) @ np.asarray(syn.weight).T + syn.bias)
    )
    with pytest.raises(ValueError, match="layer 0 has 5 outputs"):
        SpikingMLP((model.synapses[0], model.synapses[0]), (LIF(), LIF()), 1e-3)
    with pytest.raises(ValueError, match="hidden layer 0 must spike"):
        SpikingMLP(model.synapses, (LI(), LI()), 1e-3)
    with pytest.raises(ValueError, match="x must have shape"):
        model(x[..., :5])
    # ideal synapses draw nothing: a key changes nothing
    np.testing.assert_array_equal(model(x, key=jax.random.key(5)).output, model(x).output)
    with pytest.raises(ValueError, match="i_unit"):
        DenseSynapse(np.ones((2, 3)), i_unit=0.0)
    with pytest.raises(ValueError, match="sizes"):
        SpikingMLP.build((6,), key=jax.random.key(0))


def test_train_step_is_one_sgd_update_of_the_loss_gradient():
    # the compiled step of fit against a gradient taken here: p <- p - lr * dL/dp; batch-first
    # and time-major inputs give the same step; equal setups share one compiled function
    model = SpikingMLP.build((6, 5, 3), key=jax.random.key(0))
    x = (jax.random.uniform(jax.random.key(1), (4, 10, 6)) < 0.5).astype(jnp.float64)
    y = jnp.array([0, 1, 2, 1])
    key = jax.random.key(2)
    loss = SpikeCountCrossEntropy()
    opt = optax.sgd(0.5)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    step = train_step(static, opt, loss=loss, metrics=(Accuracy(),))
    new, _, value, (acc,) = step(params, opt.init(params), x, y, key)

    def objective(p):  # what one step computes: the model's key is the second of split(key)
        trace = eqx.combine(p, static)(jnp.swapaxes(x, 0, 1), key=jax.random.split(key)[1])
        return loss(trace, y)

    ref_value, grads = jax.value_and_grad(objective)(params)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    assert 0.0 <= float(acc) <= 1.0
    expect = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, grads)
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(expect), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    tm = train_step(static, opt, loss=loss, metrics=(Accuracy(),), time_major=True)
    new_tm = tm(params, opt.init(params), jnp.swapaxes(x, 0, 1), y, key)[0]
    for a, b in zip(jax.tree_util.tree_leaves(new_tm), jax.tree_util.tree_leaves(new), strict=True):
        np.testing.assert_array_equal(a, b)
    from xbar.learning import train as train_module

    n = len(train_module._STEPS)
    train_step(static, opt, loss=loss, metrics=(Accuracy(),))
    assert len(train_module._STEPS) == n
    with pytest.raises(ValueError, match="time_major"):
        train_step(static, opt, encoding=RateEncoding(10), time_major=True)


def test_fit_reaches_85_percent_on_digits_within_a_minute():
    train, test = load_digits(seed=0)
    model = SpikingMLP.build((64, 128, 10), key=jax.random.key(0))
    t0 = time.process_time()
    result = fit(
        model,
        train,
        optax.adam(2e-3),
        epochs=6,
        batch_size=64,
        key=jax.random.key(1),
        encoding=RateEncoding(num_steps=25),
        progress=False,
    )
    acc = score(result.model, test, key=jax.random.key(2), encoding=RateEncoding(num_steps=25))
    cpu_s = time.process_time() - t0
    assert acc["accuracy"] >= 0.85, acc
    assert cpu_s < 60, cpu_s
    assert (
        len(result.history["loss"]) == 6 and result.history["loss"][-1] < result.history["loss"][0]
    )


def test_fit_learns_a_timing_task_and_stops_early_at_the_best_epoch():
    data, _ = spike_patterns(
        jax.random.key(5), n_classes=3, n_per_class=40, n_in=12, num_steps=20, jitter_steps=1.0
    )
    train, val = (
        jax.tree_util.tree_map(lambda a: a[:90], data),
        jax.tree_util.tree_map(lambda a: a[90:], data),
    )
    model = SpikingMLP.build((12, 24, 3), key=jax.random.key(6), readout=LI())
    loss = MembraneCrossEntropy(MaxOverTime())
    stop = EarlyStopping(monitor="val_accuracy", patience=3, maximise=True)
    result = fit(
        model,
        train,
        optax.adam(1e-2),
        epochs=40,
        batch_size=30,
        key=jax.random.key(7),
        loss=loss,
        validation=val,
        early_stopping=stop,
        progress=False,
    )
    h = result.history["val_accuracy"]
    # counts carry no information in this task (every input spikes once): timing is learnt
    assert max(h) >= 0.9, h
    best = int(np.argmax(h))  # first maximum: later equal values are no improvement
    assert result.best_epoch == best + 1
    if result.stopped_early:
        assert result.epochs == result.best_epoch + 3
    again = score(result.model, val, key=jax.random.key(0), loss=loss, batch_size=30)
    assert again["accuracy"] == h[best]  # the restored parameters are those of the best epoch
    # with a zero learning rate nothing improves after the first epoch
    frozen = fit(
        model,
        train,
        optax.sgd(0.0),
        epochs=10,
        batch_size=30,
        key=jax.random.key(7),
        loss=loss,
        validation=val,
        early_stopping=EarlyStopping(patience=2),
        progress=False,
    )
    assert frozen.stopped_early and frozen.epochs == 3 and frozen.best_epoch == 1
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, train, optax.sgd(0.1), epochs=1, batch_size=91, key=jax.random.key(0))
    with pytest.raises(ValueError, match="validation"):
        fit(
            model,
            train,
            optax.sgd(0.1),
            epochs=1,
            batch_size=9,
            key=jax.random.key(0),
            early_stopping=EarlyStopping(),
        )
