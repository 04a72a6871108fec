"""Test-wide settings: validation numerics run in float64 (STYLE.md)."""

import os

import jax

jax.config.update("jax_enable_x64", True)
os.environ.setdefault("XBAR_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
