"""Weight <-> conductance mapping: inverse, window bounds, validation."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xbar


@settings(max_examples=4, deadline=None)
@given(
    m=st.integers(1, 6),
    n=st.integers(1, 6),
    g_min=st.floats(0.0, 5e-6),
    span=st.floats(1e-6, 1e-4),
    w_max=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**16),
)
def test_mappings_are_inverse_and_stay_in_window(m, n, g_min, span, w_max, seed):
    w = np.random.default_rng(seed).uniform(-w_max, w_max, (m, n))
    for mapping in (
        xbar.DifferentialMapping(g_min, g_min + span, w_max),
        xbar.ReferenceMapping(g_min, g_min + span, w_max),
    ):
        g = mapping.to_conductance(w)
        assert g.shape == (m, mapping.n_physical(n))
        assert np.all(g >= g_min - 1e-18) and np.all(g <= g_min + span + 1e-18)
        np.testing.assert_allclose(mapping.from_conductance(g), w, rtol=1e-9, atol=1e-12 * w_max)


def test_differential_pair_uses_one_device_per_sign():
    m = xbar.DifferentialMapping(g_min=1e-6, g_max=11e-6, w_max=2.0)
    g = m.to_conductance(jnp.array([[1.0, -2.0, 0.0]]))
    # interleaved (G+, G-): +1 -> (6 uS, 1 uS); -2 -> (1 uS, 11 uS); 0 -> (1, 1)
    np.testing.assert_allclose(g[0] * 1e6, [6, 1, 1, 11, 1, 1], rtol=1e-12)
    # the read-out current of a column pair is scale * w per volt
    np.testing.assert_allclose(m.combine(g)[0] / m.scale, [1.0, -2.0, 0.0], atol=1e-12)


def test_reference_column_holds_mid_window():
    m = xbar.ReferenceMapping(g_min=2e-6, g_max=10e-6)
    g = m.to_conductance(jnp.zeros((4, 3)))
    np.testing.assert_allclose(g, 6e-6, rtol=1e-12)


def test_weights_beyond_window_saturate():
    m = xbar.DifferentialMapping(g_min=0.0, g_max=1e-5, w_max=1.0)
    np.testing.assert_allclose(
        m.from_conductance(m.to_conductance(jnp.array([[3.0, -5.0]]))), [[1.0, -1.0]]
    )


@pytest.mark.parametrize("cls", [xbar.DifferentialMapping, xbar.ReferenceMapping])
def test_bad_window_raises(cls):
    with pytest.raises(ValueError, match="g_min"):
        cls(g_min=2e-5, g_max=1e-5)
    with pytest.raises(ValueError, match="w_max"):
        cls(w_max=-1.0)
