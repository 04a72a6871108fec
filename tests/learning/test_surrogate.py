"""Contract test of every surrogate spike function: exact Heaviside forward, a JVP equal to
the derivative of an independent smooth antiderivative (finite differences), jit/vmap/grad,
bad slopes rejected."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import ATan, Boxcar, FastSigmoid, StraightThrough, SuperSpike, Triangular
from xbar.networks import AbstractSpikeFunction

# Each surrogate g is the derivative of a smooth function S written here from the formulas of
# the papers, independently of the library; (kinks of S', where finite differences are unsafe)
ANTIDERIVATIVES = {
    FastSigmoid: (lambda x, k: x / (1 + k * np.abs(x)), lambda k: [0.0]),
    ATan: (lambda x, k: np.arctan(math.pi * k * x / 2) / math.pi, lambda k: []),
    Triangular: (
        lambda x, k: np.where(np.abs(x) < 1 / k, x - k * x * np.abs(x) / 2, np.sign(x) / (2 * k)),
        lambda k: [0.0, -1 / k, 1 / k],
    ),
    Boxcar: (lambda x, k: k * np.clip(x, -0.5 / k, 0.5 / k), lambda k: [-0.5 / k, 0.5 / k]),
    StraightThrough: (lambda x, k: k * x, lambda k: []),
}
DEFAULT_SLOPE = {FastSigmoid: 25.0, ATan: 2.0, Triangular: 1.0, Boxcar: 1.0, StraightThrough: 1.0}
MEMBERS = list(ANTIDERIVATIVES)


@pytest.mark.parametrize("cls", MEMBERS, ids=lambda c: c.__name__)
def test_surrogate_contract(cls):
    f = cls()
    assert isinstance(f, AbstractSpikeFunction) and f.slope == DEFAULT_SLOPE[cls]
    # forward: the exact step, strict at 0, in the dtype of x
    x = jnp.array([-2.0, -1e-300, -0.0, 0.0, 1e-300, 0.3, 5.0])
    z = jax.jit(f)(x)
    np.testing.assert_array_equal(z, [0, 0, 0, 0, 1, 1, 1])
    assert z.dtype == jnp.float64 and f(x.astype(jnp.float32)).dtype == jnp.float32
    for k in (DEFAULT_SLOPE[cls], 0.7, 4.0):
        s = cls(slope=k)
        antiderivative, kinks = ANTIDERIVATIVES[cls]
        xs = np.linspace(-3.0 / k, 3.0 / k, 301)
        xs = xs[
            np.min(np.abs(xs[:, None] - np.array(kinks(k) + [9e9])[None, :]), axis=1) > 1e-3 / k
        ]
        h = 1e-6 / k
        fd = (antiderivative(xs + h, k) - antiderivative(xs - h, k)) / (2 * h)
        grad = jax.jit(jax.vmap(jax.grad(s)))(jnp.asarray(xs))
        np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
        _, tangent = jax.jvp(s, (jnp.asarray(xs),), (jnp.full(xs.shape, 2.0),))
        np.testing.assert_allclose(tangent, 2 * fd, rtol=1e-7, atol=1e-9)
    # the step does not depend on the slope: zero derivative with respect to it
    d_slope = jax.grad(lambda k: cls(slope=k)(jnp.array(0.01)))(1.5)
    assert d_slope == 0.0
    # a batch of surrogates with different slopes under vmap (the slope is a leaf)
    ks = jnp.array([0.5, 1.0, 2.0])
    g = jax.vmap(lambda k: jax.grad(cls(slope=k))(0.1))(ks)
    np.testing.assert_allclose(g, [jax.grad(cls(slope=float(k)))(0.1) for k in ks], rtol=1e-12)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="slope"):
            cls(slope=bad)


def test_superspike_is_the_fast_sigmoid():
    assert SuperSpike is FastSigmoid
    # peak of the pseudo-derivative at threshold is 1 (SuperSpike, Zenke & Ganguli 2018, Eq. 5)
    assert jax.grad(SuperSpike())(0.0) == 1.0
