"""First-order IR-drop model against the exact nodal solve (xbar.effective_matrix / solve)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar

G_MAX = 25e-6


def _g(m, n, seed=0):
    return jax.random.uniform(jax.random.PRNGKey(seed), (m, n), minval=0.0, maxval=G_MAX)


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def test_uniform_array_drop_fraction_is_the_ladder_sum():
    # uniform G, r: the worst cell (row 0, column N-1) loses r G N(N+1)/2 on its word line
    # and r G M(M+1)/2 on its bit line, to first order (hand sum over the segments)
    m, n, g, r = 6, 9, 10e-6, 3.0
    d = xbar.ir_drop_fraction(jnp.full((m, n), g), r_wl=r, r_bl=r)
    assert float(d[0, n - 1]) == pytest.approx(r * g * (n * (n + 1) + m * (m + 1)) / 2, rel=1e-12)
    # a cell at the driver and sense corner sees one segment of each line with all its
    # downstream current: r (N g) + r (M g)
    assert float(d[m - 1, 0]) == pytest.approx(r * g * (n + m), rel=1e-12)
    # r_src adds r_src * (row current) to every cell of the row, r_sense the column current
    d2 = xbar.ir_drop_fraction(jnp.full((m, n), g), r_wl=r, r_bl=r, r_src=5.0, r_sense=7.0)
    np.testing.assert_allclose(d2 - d, 5.0 * n * g + 7.0 * m * g, rtol=1e-12)


def test_zero_wires_is_exactly_g():
    G = _g(5, 7)
    for resummed in (True, False):
        W = xbar.effective_matrix_first_order(G, r_wl=0.0, r_bl=0.0, resummed=resummed)
        np.testing.assert_array_equal(np.asarray(W), np.asarray(G))


@pytest.mark.parametrize("shape", [(16, 16), (32, 32), (24, 40)])
def test_error_bound_and_second_order_scaling(shape):
    m, n = shape
    G = _g(m, n, seed=m + n)
    d1 = float(xbar.ir_drop_fraction(G, r_wl=1.0, r_bl=1.0).max())
    errs = {}
    for eps in (0.1, 0.2, 0.5, 1.0):
        r = eps / d1  # eps scales linearly with r
        w_exact = xbar.effective_matrix(G, r_wl=r, r_bl=r)
        e_taylor = _rel(
            xbar.effective_matrix_first_order(G, r_wl=r, r_bl=r, resummed=False), w_exact
        )
        e_resum = _rel(xbar.effective_matrix_first_order(G, r_wl=r, r_bl=r), w_exact)
        e_none = _rel(G, w_exact)
        # documented bounds (module docstring of xbar.ir_drop)
        assert e_taylor <= 0.55 * eps**2
        assert e_resum <= 0.10 * eps**2
        # ignoring the wires is first order and much worse at small eps
        assert e_none >= 0.4 * eps
        errs[eps] = (e_taylor, e_resum)
    # the first-order model's error is second order: halving r quarters it (within 15 %)
    for k in (0, 1):
        assert errs[0.1][k] / errs[0.2][k] == pytest.approx(0.25, rel=0.15)


def test_driver_and_sense_resistance_against_solve():
    # batched reads through the full nodal solve with r_src and r_sense: first-order outputs
    m, n = 20, 12
    G = _g(m, n, seed=3)
    v = jax.random.uniform(jax.random.PRNGKey(4), (5, m), minval=-0.2, maxval=0.2)
    kw = dict(r_wl=2.0, r_bl=3.0, r_src=40.0, r_sense=60.0)
    i_exact = xbar.solve(G, v, **kw).i_out
    i1 = v @ xbar.effective_matrix_first_order(G, **kw)
    eps = float(xbar.ir_drop_fraction(G, **kw).max())
    assert 0.01 < eps < 0.3
    assert _rel(i1, i_exact) <= 0.1 * eps**2
    assert _rel(v @ G, i_exact) > 10 * _rel(i1, i_exact)


def test_jit_vmap_grad():
    G = _g(8, 6)
    f = jax.jit(lambda g, r: xbar.effective_matrix_first_order(g, r_wl=r, r_bl=r))
    Gs = jnp.stack([G, 0.5 * G])
    np.testing.assert_allclose(
        jax.vmap(f, in_axes=(0, None))(Gs, 4.0)[1], f(0.5 * G, 4.0), rtol=1e-12
    )
    # batched over a leading axis directly as well
    np.testing.assert_allclose(f(Gs, 4.0), jax.vmap(f, in_axes=(0, None))(Gs, 4.0), rtol=1e-12)
    v = jnp.linspace(-0.2, 0.2, 8)

    def loss(g, r):
        return jnp.sum((v @ f(g, r)) ** 2)

    dg, dr = jax.grad(loss, argnums=(0, 1))(G, 4.0)
    # central finite differences in r and along a random direction in G
    h = 1e-3
    fd_r = (loss(G, 4.0 + h) - loss(G, 4.0 - h)) / (2 * h)
    assert float(dr) == pytest.approx(float(fd_r), rel=1e-7)
    u = jax.random.normal(jax.random.PRNGKey(9), G.shape) * 1e-8
    fd_g = (loss(G + u, 4.0) - loss(G - u, 4.0)) / 2
    assert float(jnp.sum(dg * u)) == pytest.approx(float(fd_g), rel=1e-6)


@pytest.mark.parametrize("uniform", [False, True])
def test_gradients_with_array_wires_against_finite_differences(uniform):
    # the line sums have hand-written derivatives (the drop is a symmetric linear map of G;
    # uniform segment resistances take a path of their own): check them in G and in every
    # resistance, with per-line driver and sense resistances, over several blocks of the
    # sums, batched over a leading axis, against the general form as well
    m, n = 40, 70
    G = jnp.stack([_g(m, n, 1), _g(m, n, 2)])
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    r_wl = 1.5 if uniform else 1.0 + jax.random.uniform(k[0], (m, n))
    r_bl = 1.2 if uniform else 1.0 + jax.random.uniform(k[1], (m, n))
    r_src = 20.0 + jax.random.uniform(k[2], (m,))
    r_sense = 10.0 + jax.random.uniform(k[3], (n,))
    v = jnp.linspace(-0.2, 0.2, m)
    args = (G, r_wl, r_bl, r_src, r_sense)

    def loss(G, r_wl, r_bl, r_src, r_sense):
        W = xbar.effective_matrix_first_order(G, r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense)
        return jnp.sum(jnp.sin(1e4 * (v @ W)))

    grads = jax.grad(loss, argnums=tuple(range(5)))(*args)
    if uniform:  # the same drop as the general form with full-size resistance arrays
        full = xbar.ir_drop_fraction(
            G, r_wl=jnp.full((m, n), r_wl), r_bl=r_bl + 0 * G[0], r_src=r_src, r_sense=r_sense
        )
        np.testing.assert_allclose(
            xbar.ir_drop_fraction(G, r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense),
            full,
            rtol=1e-12,
        )
        args = (G, jnp.asarray(r_wl), jnp.asarray(r_bl), r_src, r_sense)
        grads = jax.grad(loss, argnums=tuple(range(5)))(*args)
    for i, (a, g) in enumerate(zip(args, grads, strict=True)):
        d = jax.random.normal(jax.random.PRNGKey(10 + i), a.shape) * (1e-3 * jnp.max(a))
        up = list(args)
        dn = list(args)
        up[i], dn[i] = a + d, a - d
        fd = (loss(*up) - loss(*dn)) / 2
        assert float(jnp.sum(g * d)) == pytest.approx(float(fd), rel=1e-6), i


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="G must have shape"):
        xbar.effective_matrix_first_order(jnp.ones(4), r_wl=1.0, r_bl=1.0)


@pytest.mark.parametrize("shape", [(5, 3), (70, 45), (2, 33, 64)])
def test_blocked_prefix_sums_equal_numpy_cumsum(shape):
    # the line sums of the first-order model use a blocked prefix sum (triangular products);
    # it must equal numpy's cumsum along both axes, from either end, for ragged block counts
    from xbar.ir_drop import _cumsum

    x = np.random.default_rng(3).normal(size=shape)
    for axis in (-1, -2):
        np.testing.assert_allclose(_cumsum(jnp.asarray(x), axis), np.cumsum(x, axis), atol=1e-12)
        rev = np.flip(np.cumsum(np.flip(x, axis), axis), axis)
        np.testing.assert_allclose(_cumsum(jnp.asarray(x), axis, True), rev, atol=1e-12)
