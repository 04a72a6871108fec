"""Numerically guarded elementary functions shared by the device models.

Device laws are full of ``exp`` and ``sinh`` of large arguments (Arrhenius rates,
field-accelerated hopping). These helpers keep values finite in float32 and
float64 and keep gradients finite where a bound is crossed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# exp(80) ~ 5.5e34 stays finite in float32 (max ~3.4e38) with room for a prefactor.
EXP_ARG_MAX = 80.0


def safe_exp(x):
    """``exp(x)`` with the argument clipped to ``EXP_ARG_MAX`` (no overflow to inf).

    The clip is the documented guard: rates beyond ``exp(80)`` are physically
    saturated anyway (a device switches within one sub-step)."""
    return jnp.exp(jnp.minimum(x, EXP_ARG_MAX))


def safe_sinh(x):
    """``sinh(x)`` with ``|x|`` clipped to ``EXP_ARG_MAX`` so it never overflows."""
    return jnp.sinh(jnp.clip(x, -EXP_ARG_MAX, EXP_ARG_MAX))


def softplus(x, width=1.0):
    """Smooth ``max(x, 0)`` with transition width ``width`` (same units as ``x``)."""
    return width * jax.nn.softplus(x / width)


def smooth_clip(x, lo, hi, width):
    """Clamp ``x`` to ``[lo, hi]`` smoothly (softplus corners of size ``width``).

    Used where a gradient must pass a physical bound; the result stays inside
    ``[lo, hi]`` up to ``width * ln 2``, and equals ``x`` well inside."""
    y = lo + softplus(x - lo, width)
    return hi - softplus(hi - y, width)


def smooth_step(x, width):
    """Logistic step ``1 / (1 + exp(-x / width))``: a differentiable gate."""
    return jax.nn.sigmoid(x / width)
