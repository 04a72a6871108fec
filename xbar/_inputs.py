"""Input checks of the array layer (crossbar, programming, tiling, peripherals).

Concrete values raise ``ValueError`` at once; traced values (under ``jit``/``vmap``) get an
``eqx.error_if`` with the same message. Every message names the parameter, the offending
value (when concrete) and the valid range.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True unless ``x`` (or a leaf of it) is a tracer."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def as_float(name: str, x, *, finite: bool = True):
    """``x`` as a floating array (lists and integer or bool arrays converted to the default
    float dtype); with ``finite``, NaN or inf raise (``ValueError`` when concrete,
    ``eqx.error_if`` when traced)."""
    try:
        arr = jnp.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of real numbers, got {x!r}") from err
    if jnp.issubdtype(arr.dtype, jnp.complexfloating) or not (
        jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == bool
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if finite:
        arr = check_finite(name, arr)
    return arr


def check_finite(name: str, arr):
    """``arr`` unchanged if finite; else ``ValueError`` (concrete) or a run-time error (traced)."""
    if is_concrete(arr):
        a = np.asarray(arr)
        if a.size and not np.all(np.isfinite(a)):
            bad = a[~np.isfinite(a)].ravel()[0]
            raise ValueError(f"{name} must be finite, got a value {bad}")
        return arr
    return eqx.error_if(arr, ~jnp.all(jnp.isfinite(arr)), f"{name} must be finite")


def check_time(name: str, t):
    """A time after programming [s]: finite and ``>= 0``."""
    t = as_float(name, t, finite=False)
    msg = f"{name} (time after programming) must be finite and >= 0 s"
    if is_concrete(t):
        a = np.asarray(t)
        if not np.all(np.isfinite(a) & (a >= 0)):
            raise ValueError(f"{msg}, got {a if a.ndim == 0 else a.ravel()[0]}")
        return t
    return eqx.error_if(t, ~jnp.all(jnp.isfinite(t) & (t >= 0)), msg)


def check_last_axis(name: str, arr, n: int, what: str) -> None:
    """``ValueError`` unless ``arr`` has at least one axis and its last axis is ``n``."""
    if arr.ndim < 1 or arr.shape[-1] != n:
        raise ValueError(f"{name} must have shape ({n},) or (batch, {n}) ({what}), got {arr.shape}")


def check_key(name: str, key):
    """A PRNG key (legacy ``uint32[2]`` or new-style typed key) or None."""
    if key is None:
        return None
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be a single key, got a key array of shape {key.shape}")
        return key
    try:
        arr = key if isinstance(key, jax.Array) else jnp.asarray(key)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (2,) or arr.dtype != jnp.uint32:
        raise ValueError(
            f"{name} must be a jax.random.key(...) or jax.random.PRNGKey(...), got "
            f"{type(key).__name__} of shape {getattr(arr, 'shape', None)}"
        )
    return arr


__all__ = ["as_float", "check_finite", "check_key", "check_last_axis", "check_time", "is_concrete"]
