"""Construction-time validation of physical parameters.

Every check names the parameter, shows the offending value and the valid range.
Parameters may be floats or arrays (per-device variation); traced values (inside
``jit``/``vmap``) cannot be inspected and are skipped here — run-time checks on
traced values use ``eqx.error_if`` in the models themselves.
"""

from __future__ import annotations

import jax
import numpy as np


def _concrete(value):
    """The value as a numpy array, or None when it is a tracer."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def _show(arr) -> str:
    return f"{float(arr)}" if arr.ndim == 0 else f"array with min {arr.min()} and max {arr.max()}"


def check_finite(name: str, value) -> None:
    arr = _concrete(value)
    if arr is not None and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")


def check_range(name: str, value, lo=-np.inf, hi=np.inf, *, lo_open=False, hi_open=False, unit=""):
    """Raise ``ValueError`` unless ``lo <= value <= hi`` (open ends when asked) and finite."""
    arr = _concrete(value)
    lo, hi = _concrete(lo), _concrete(hi)  # bounds may be (per-device) parameters
    if arr is None or lo is None or hi is None:  # traced: checked at run time, if at all
        return
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    bad_lo = np.any(arr <= lo) if lo_open else np.any(arr < lo)
    bad_hi = np.any(arr >= hi) if hi_open else np.any(arr > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        u = f" {unit}" if unit else ""
        raise ValueError(
            f"{name} must lie in {left}{_bound(lo, np.min)}, {_bound(hi, np.max)}{right}{u}, "
            f"got {_show(arr)}{u}"
        )


def _bound(b, reduce) -> str:
    return f"{float(b)}" if b.ndim == 0 else f"{float(reduce(b))}"


def check_positive(name: str, value, unit: str = "") -> None:
    """Raise ``ValueError`` unless ``value > 0`` and finite."""
    check_range(name, value, 0.0, np.inf, lo_open=True, hi_open=True, unit=unit)


def check_nonnegative(name: str, value, unit: str = "") -> None:
    """Raise ``ValueError`` unless ``value >= 0`` and finite."""
    check_range(name, value, 0.0, np.inf, hi_open=True, unit=unit)


def check_less(name_a: str, a, name_b: str, b, unit: str = "") -> None:
    """Raise ``ValueError`` unless ``a < b`` elementwise."""
    arr_a, arr_b = _concrete(a), _concrete(b)
    if arr_a is None or arr_b is None:
        return
    if not np.all(arr_a < arr_b):
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name_a} ({_show(arr_a)}{u}) must be below {name_b} ({_show(arr_b)}{u})")
