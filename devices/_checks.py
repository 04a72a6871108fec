"""Construction-time validation of physical parameters.

Every check names the parameter, shows the offending value and the valid range.
Parameters may be floats or arrays (per-device variation); traced values (inside
``jit``/``vmap``) cannot be inspected and are skipped here — run-time checks on
traced values use ``eqx.error_if`` in the models themselves.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
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
    dt = getattr(value, "dtype", None)
    if dt is not None and np.issubdtype(dt, np.floating) and np.finfo(dt).bits < 64:
        # compare in the value's precision (a float32 literal of a bound is not "above" it)
        lo, hi, arr = lo.astype(dt), hi.astype(dt), arr.astype(dt)
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


def float_array(name: str, value, where: str, dtype=None):
    """``value`` (a number, list or array; integers and booleans accepted) as a floating
    JAX array; ``ValueError`` naming ``name`` if it is not numeric."""
    if isinstance(value, jax.core.Tracer):
        arr = value
    else:
        try:
            arr = jnp.asarray(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{where}: {name} must be a number or an array of numbers, got {value!r}"
            ) from None
    if not (
        jnp.issubdtype(arr.dtype, jnp.floating)
        or jnp.issubdtype(arr.dtype, jnp.integer)
        or arr.dtype == jnp.bool_
    ):
        raise ValueError(f"{where}: {name} must be real numbers, got dtype {arr.dtype}")
    if dtype is not None:
        return arr.astype(dtype)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        return arr.astype(jnp.result_type(float))
    return arr


def require(value, ok, message: str, checked=None):
    """Elementwise condition ``ok`` (on ``checked``, default ``value``): eagerly a
    ``ValueError`` with ``message`` and an offending value; under tracing
    ``eqx.error_if`` on ``value`` with the same message. Returns ``value``, tied to the
    check under ``jit`` (use the returned value, or the check is optimised away)."""
    if isinstance(value, jax.core.Tracer) or isinstance(ok, jax.core.Tracer):
        return eqx.error_if(jnp.asarray(value), ~ok, message)
    if not bool(jnp.all(ok)):
        shown = np.asarray(value if checked is None else checked)
        okb = np.asarray(ok)
        try:
            bad = shown[~np.broadcast_to(okb, shown.shape)]
        except ValueError:
            bad = shown.ravel()
        raise ValueError(f"{message}; got {_show(bad[:1].reshape(()) if bad.size else bad)}")
    return value


def require_tree(tree, ok, message: str, checked=None):
    """:func:`require` with the result tied to every array leaf of ``tree`` (for
    methods that return their input unchanged)."""
    return jax.tree.map(lambda x: require(x, ok, message, checked), tree)


def check_pulse(where: str, v, width_s, dtype=None, shape=None):
    """Validated ``(v, width_s)`` of a rectangular pulse: finite voltage [V], finite
    width ``>= 0`` [s] (lists and integers accepted), both broadcastable to the state
    ``shape`` when given."""
    v = float_array("v", v, where, dtype)
    width_s = float_array("width_s", width_s, where, dtype)
    if shape is not None:
        for name, x in (("v", v), ("width_s", width_s)):
            try:
                jnp.broadcast_shapes(tuple(shape), jnp.shape(x))
            except ValueError:
                raise ValueError(
                    f"{where}: {name} of shape {jnp.shape(x)} does not broadcast to the "
                    f"state shape {tuple(shape)}"
                ) from None
    v = require(v, jnp.isfinite(v), f"{where}: v must be a finite voltage [V]")
    width_s = require(
        width_s,
        jnp.isfinite(width_s) & (width_s >= 0),
        f"{where}: width_s must be finite and >= 0 s",
    )
    return v, width_s


def check_shape(where: str, shape) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints (an int is a 1-D shape)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{where}: shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{where}: shape must have non-negative sizes, got {shape}")
    return shape


def check_voltage(where: str, v, name: str = "v", dtype=None):
    """``v`` as a floating array of finite voltages [V] (``ValueError`` / ``error_if``)."""
    v = float_array(name, v, where, dtype)
    return require(v, jnp.isfinite(v), f"{where}: {name} must be a finite voltage [V]")


def check_time(where: str, t_s, name: str = "t_s", dtype=None):
    """``t_s`` as a floating array of finite times ``>= 0`` [s]."""
    t_s = float_array(name, t_s, where, dtype)
    return require(
        t_s, jnp.isfinite(t_s) & (t_s >= 0), f"{where}: {name} must be finite and >= 0 s"
    )
