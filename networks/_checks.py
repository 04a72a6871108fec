"""Construction-time and run-time validation shared by the networks layer.

Each check names the parameter, the value and the valid range. Traced values (inside
``jit``/``vmap``) cannot be inspected at construction; run-time checks use
``eqx.error_if``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def concrete(value):
    """``value`` as a float numpy array, or None when it is traced or not numeric."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def _show(arr) -> str:
    return f"{float(arr)}" if arr.ndim == 0 else f"an array with min {arr.min()}, max {arr.max()}"


def check_positive(name: str, value, unit: str = "") -> None:
    arr = concrete(value)
    if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be positive and finite (0, inf){u}, got {_show(arr)}{u}")


def check_nonnegative(name: str, value, unit: str = "") -> None:
    arr = concrete(value)
    if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr >= 0)):
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be non-negative and finite [0, inf){u}, got {_show(arr)}{u}")


def check_finite(name: str, value, unit: str = "") -> None:
    arr = concrete(value)
    if arr is not None and not np.all(np.isfinite(arr)):
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be finite{u}, got {_show(arr)}{u}")


def check_dt(dt):
    """A positive, finite time step [s]: ``ValueError`` when concrete, ``eqx.error_if`` when
    traced. Returns ``dt`` as an array."""
    arr = concrete(dt)
    if arr is not None:
        if arr.ndim != 0 or not (np.isfinite(arr) and arr > 0):
            raise ValueError(f"dt must be a positive finite scalar (0, inf) s, got {dt!r}")
        return dt
    dt = jnp.asarray(dt)
    return eqx.error_if(dt, ~(dt > 0) | ~jnp.isfinite(dt), "dt must be positive and finite [s]")
