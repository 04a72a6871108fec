"""Device-to-device sampling: requested distributions, determinism, validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xbar import devices


class Toy(eqx.Module):
    """Minimal parameter container used to exercise the sampler."""

    thickness: float = 5e-9
    rate: float = 2.0
    flag: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        devices._checks.check_positive("thickness", self.thickness, "m")


def test_lognormal_median_and_log_sigma():
    m = devices.sample_parameters(Toy(), jax.random.key(0), (200_000,), {"thickness": 0.1})
    logs = np.log(np.asarray(m.thickness) / 5e-9)
    assert abs(np.mean(logs)) < 4 * 0.1 / np.sqrt(2e5)
    assert np.std(logs) == pytest.approx(0.1, rel=0.01)
    assert float(m.rate) == 2.0  # untouched parameters stay scalar


def test_mean_preserving_lognormal_and_normal():
    key = jax.random.key(1)
    m = devices.sample_parameters(
        Toy(), key, (200_000,), {"rate": devices.Spread(0.3, "lognormal_mean")}
    )
    assert np.mean(m.rate) == pytest.approx(2.0, rel=0.01)
    m = devices.sample_parameters(Toy(), key, (200_000,), {"rate": devices.Spread(0.05, "normal")})
    assert np.mean(m.rate) == pytest.approx(2.0, rel=0.001)
    assert np.std(m.rate) == pytest.approx(0.1, rel=0.01)


def test_same_key_same_draw_and_independent_streams():
    a = devices.sample_parameters(Toy(), jax.random.key(3), (1000,), {"thickness": 0.1, "rate": 0.1})
    b = devices.sample_parameters(Toy(), jax.random.key(3), (1000,), {"rate": 0.1, "thickness": 0.1})
    np.testing.assert_array_equal(a.thickness, b.thickness)
    np.testing.assert_array_equal(a.rate, b.rate)
    corr = np.corrcoef(np.log(a.thickness), np.log(a.rate))[0, 1]
    assert abs(corr) < 0.15


def test_unknown_name_and_unphysical_draw_raise():
    with pytest.raises(ValueError, match="thikness"):
        devices.sample_parameters(Toy(), jax.random.key(0), (4,), {"thikness": 0.1})
    with pytest.raises(ValueError, match="thickness"):
        # a relative normal spread of 300 % makes some thicknesses negative
        devices.sample_parameters(
            Toy(), jax.random.key(0), (1000,), {"thickness": devices.Spread(3.0, "normal")}
        )
    with pytest.raises(ValueError, match="distribution"):
        devices.Spread(0.1, "uniform")


def test_sampled_model_works_under_vmap():
    m = devices.sample_parameters(Toy(), jax.random.key(0), (8,), {"rate": 0.1})

    @jax.vmap
    def f(rate):
        return rate * 2

    assert jnp.allclose(f(m.rate), 2 * m.rate)
