"""Input validation of the crossbar solve: shapes, finiteness, ranges (eager and traced).

Concrete values are checked eagerly and raise ``ValueError`` naming the parameter, the
value and the valid range; traced values get an ``eqx.error_if`` run-time check with the
same message.  Lists and integer arrays become floating arrays.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def as_array(x):
    """``x`` as an array (lists and tuples too); integer and boolean values as float."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if hasattr(x, "dtype") and not jnp.issubdtype(x.dtype, jnp.inexact):
        if jnp.issubdtype(x.dtype, jnp.number) or x.dtype == bool:
            return jnp.asarray(x, jnp.result_type(float))
    return x


def is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_array(name: str, x, shapes: tuple[tuple[int, ...], ...], *, allow_zero=True, what=""):
    """Validate a non-negative finite parameter; returns it as a jax array.

    ``shapes`` lists the accepted shapes (``()`` = scalar).  Concrete values are checked
    eagerly (``ValueError``); traced values get an ``eqx.error_if`` run-time check.
    """
    shape = tuple(np.shape(x))
    if shape not in shapes:
        accepted = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} has shape {shape}; expected {accepted}{what}")
    rng = "finite and >= 0" if allow_zero else "finite and > 0"
    if is_concrete(x):
        a = np.asarray(x)
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
        bad = ~np.isfinite(a) | ((a < 0) if allow_zero else (a <= 0))
        if np.any(bad):
            v = a[bad].ravel()[0] if a.ndim else a
            raise ValueError(f"{name} must be {rng} everywhere; got {v}")
        return jnp.asarray(x)
    x = jnp.asarray(x)
    bad = ~jnp.isfinite(x) | ((x < 0) if allow_zero else (x <= 0))
    return eqx.error_if(x, jnp.any(bad), f"{name} must be {rng} everywhere")


def check_finite(name: str, x) -> jax.Array:
    if is_concrete(x):
        a = np.asarray(x)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite (no NaN/inf)")
        return jnp.asarray(x)
    x = jnp.asarray(x)
    return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), f"{name} must be finite (no NaN/inf)")
