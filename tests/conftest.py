"""Test-wide settings: validation numerics run in float64 (STYLE.md)."""

import gc
import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)
os.environ.setdefault("XBAR_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop the compiled programs of a test module once it is done.

    A test worker otherwise keeps every XLA executable of the whole run alive; with
    several hundred modules' worth of programs the process approaches the kernel's limit
    on memory mappings (``vm.max_map_count``), and a later compilation can then crash."""
    yield
    jax.clear_caches()
    gc.collect()
