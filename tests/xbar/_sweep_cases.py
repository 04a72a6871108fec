"""Sweep functions shared by tests/xbar/test_sweep.py and the subprocesses it starts.

A module of its own so that subprocesses and Dask workers import the very same function."""

import jax
import jax.numpy as jnp

GRID = {"sigma": [0.02, 0.1], "noise": [0.0, 0.01], "bits": [4.0, 8.0]}
N_SEEDS = 64
CHUNK = 64  # one chunk per grid point: 8 chunks


def mvm_error(p, key):
    """A 4x4 crossbar read: multiplicative conductance spread, additive read noise, an ADC."""
    k_g, k_r = jax.random.split(key)
    w = jnp.linspace(-1.0, 1.0, 16).reshape(4, 4)
    g = w * (1.0 + p["sigma"] * jax.random.normal(k_g, w.shape))
    x = jnp.linspace(0.1, 1.0, 4)
    y = x @ g + p["noise"] * jax.random.normal(k_r, (4,))
    step = 4.0 / (2.0 ** p["bits"] - 1.0)
    y = jnp.round(y / step) * step
    return {"y": y, "rmse": jnp.sqrt(jnp.mean((y - x @ w) ** 2))}
