"""Presets: each bundled write-verify recipe programs its device to tolerance (issue 15.7)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar

PRESETS = {p.name: p for p in xbar.presets.all_presets()}


def _program(preset, n, seed=0):
    xb = preset.crossbar((n, n))
    w = jax.random.uniform(jax.random.PRNGKey(seed), (n, n), minval=-1, maxval=1)
    _, rep = jax.jit(xbar.program)(xb, w, preset.write_verify, jax.random.PRNGKey(seed + 1))
    return rep


def _check(preset, rep):
    assert float(rep.success_rate) >= 0.99, f"{preset.name}: {float(rep.success_rate):.4f}"
    assert int(jnp.max(rep.pulses)) <= preset.write_verify.max_pulses
    assert np.all(np.abs(np.asarray(rep.rel_error)[np.asarray(rep.success)]) <= 0.02)
    assert np.all(np.isfinite(np.asarray(rep.energy_j))) and float(rep.total_energy_j) > 0


def test_every_preset_is_listed_and_builds():
    assert set(PRESETS) == {"stanford_pku_1t1r", "pcm_statistical", "pcm", "vteam"}
    for p in PRESETS.values():
        xb = p.crossbar((3, 2))
        assert xb.physical_shape == (3, 4)
        assert isinstance(p.write_verify, xbar.WriteVerify)
        # the start state lies inside (or at the edge of) what the device can read
        assert np.all(np.isfinite(np.asarray(xb.conductances())))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_recipe_reaches_tolerance_16x16(name):
    preset = PRESETS[name]
    _check(preset, _program(preset, 16))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_recipe_reaches_tolerance_64x64(name):
    preset = PRESETS[name]
    _check(preset, _program(preset, 64, seed=3))
