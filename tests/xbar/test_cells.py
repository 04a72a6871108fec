"""Contract tests of the cell stacks (xbar.cells): every stack through the same properties.

References: a brentq root of the series equation (scipy), the closed form of a linear
series pair, central finite differences, and the passivity invariants (sign, zero at 0,
monotone).
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from xbar import cells  # noqa: E402

V0 = 0.25


def device(x):
    return 2e-4 * V0 * jnp.sinh(x / V0)


def device_np(x):
    return 2e-4 * V0 * np.sinh(x / V0)


def element(w):
    return 1e-5 * jnp.sinh(w / 0.15)


# (stack, numpy reference of the element current at element voltage w, series r)
CELLS = [
    (cells.Passive(), None, 0.0),
    (cells.OneTOneR(r_access=1.5e3), None, 1.5e3),
    (cells.OneSOneR(i0=1e-6, v0=0.1, r_series=50.0), lambda w: 1e-6 * np.sinh(w / 0.1), 50.0),
    (cells.Series(element, r_series=20.0), lambda w: 1e-5 * np.sinh(w / 0.15), 20.0),
]


def reference(cell_ref, r, v):
    """Stack current from brentq on the device voltage (independent of xbar)."""
    if cell_ref is None and r == 0:
        return device_np(v)
    out = []
    for u in np.atleast_1d(v):
        if cell_ref is None:

            def h(x, u=u):
                return x + r * device_np(x) - u
        else:

            def h(x, u=u):
                i = device_np(x)
                return i - cell_ref(u - x - r * i)

        if u == 0:
            out.append(0.0)
            continue
        x = brentq(h, min(0, u), max(0, u), xtol=1e-16, rtol=1e-15)
        out.append(device_np(x))
    return np.array(out)


@pytest.mark.parametrize("case", CELLS, ids=lambda c: type(c[0]).__name__)
def test_stack_current_against_brentq_and_passivity(case):
    cell, ref, r = case
    v = np.linspace(-1.2, 1.2, 13)
    i = np.asarray(cell.current(device, v))
    np.testing.assert_allclose(i, reference(ref, r, v), rtol=1e-10, atol=1e-20)
    assert i[6] == 0.0  # zero at zero
    assert np.all(np.diff(i) > 0)  # monotone: passive and strictly increasing
    assert np.all(np.sign(i) == np.sign(v))


@pytest.mark.parametrize("case", CELLS, ids=lambda c: type(c[0]).__name__)
def test_stack_jit_vmap_grad(case):
    cell, _, _ = case
    v = jnp.linspace(-0.8, 0.9, 7)
    direct = cell.current(device, v)
    np.testing.assert_allclose(jax.jit(lambda v: cell.current(device, v))(v), direct, rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(lambda v: cell.current(device, v))(v), direct, rtol=1e-13)
    g = jax.grad(lambda v: jnp.sum(cell.current(device, v)))(v)
    h = 1e-6
    fd = (cell.current(device, v + h) - cell.current(device, v - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_linear_conductance_is_the_series_pair():
    g = np.array([1e-6, 1e-4, 1e-2])
    np.testing.assert_array_equal(cells.Passive().linear_conductance(g), g)
    np.testing.assert_allclose(
        cells.OneTOneR(r_access=500.0).linear_conductance(g), 1 / (1 / g + 500.0), rtol=1e-14
    )
    # the linear conductance agrees with the nonlinear series solve of a linear device
    c = cells.OneTOneR(r_access=np.array([0.0, 500.0, 2e3]))
    np.testing.assert_allclose(
        c.current(lambda x: g * x, 0.3), 0.3 * c.linear_conductance(g), rtol=1e-13
    )
    assert cells.OneSOneR().linear_conductance(g) is None
    assert cells.Series(element).linear_conductance(g) is None
    # the access resistance is differentiable
    d = jax.grad(lambda r: cells.OneTOneR(r).current(lambda x: 1e-4 * x, 0.5))(2e3)
    np.testing.assert_allclose(d, -0.5 * 1e-8 / (1 + 0.2) ** 2, rtol=1e-10)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="r_access"):
        cells.OneTOneR(r_access=-1.0)
    with pytest.raises(ValueError, match="r_access"):
        cells.OneTOneR(r_access=np.nan)
    with pytest.raises(ValueError, match="i0"):
        cells.OneSOneR(i0=0.0)
    with pytest.raises(ValueError, match="v0"):
        cells.OneSOneR(v0=np.inf)
    with pytest.raises(ValueError, match="element"):
        cells.Series(element=3.0)
    with pytest.raises(ValueError, match="r_series"):
        cells.Series(element, r_series=-2.0)
