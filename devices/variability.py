"""Device-to-device variability: per-device parameters drawn for an array.

``sample_parameters(model, key, shape, {"g0": 0.05, "tox": Spread(0.02, "normal")})``
returns a copy of ``model`` whose named fields are arrays of ``shape``:

* ``lognormal`` (default for a bare float ``sigma``), median-preserving:
  ``p_i = p * exp(sigma * xi_i)``, ``xi ~ N(0, 1)``; keeps positive parameters
  positive. ``sigma`` is the standard deviation of ``ln p`` (for small sigma it is
  the relative spread). (Lognormal device spreads: e.g. aihwkit
  ``dw_min_dtod_log_normal``; Guan, Yu & Wong, IEEE EDL 33(10), 2012.)
* ``lognormal_mean``: mean-preserving, ``p * exp(sigma xi - sigma^2 / 2)``.
* ``normal``: relative Gaussian, ``p_i = p * (1 + sigma * xi_i)``.
* ``absolute``: additive Gaussian, ``p_i = p + sigma * xi_i`` (same unit as p).

Each parameter gets its own independent stream (the key is split per name, in
sorted name order, so the result does not depend on dict order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

Distribution = Literal["lognormal", "lognormal_mean", "normal", "absolute"]
_DISTRIBUTIONS = ("lognormal", "lognormal_mean", "normal", "absolute")


class Spread(eqx.Module):
    """Spread of one parameter: ``sigma`` and its distribution (see module doc)."""

    sigma: float
    distribution: str = eqx.field(default="lognormal", static=True)

    def __check_init__(self):
        if self.distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {_DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if not (self.sigma >= 0):
            raise ValueError(f"sigma must be >= 0, got {self.sigma}")

    def draw(self, key: PRNGKeyArray, nominal, shape: tuple[int, ...]):
        nominal = jnp.asarray(nominal, dtype=jnp.result_type(float))
        xi = jax.random.normal(key, jnp.broadcast_shapes(shape, nominal.shape), nominal.dtype)
        s = self.sigma
        if self.distribution == "lognormal":
            return nominal * jnp.exp(s * xi)
        if self.distribution == "lognormal_mean":
            return nominal * jnp.exp(s * xi - 0.5 * s * s)
        if self.distribution == "normal":
            return nominal * (1.0 + s * xi)
        return nominal + s * xi


def parameter_names(model: eqx.Module) -> list[str]:
    """Names of the numeric (non-static) fields of ``model`` that can be varied."""
    names = []
    for f in fields(model):
        if f.metadata.get("static", False):
            continue
        value = getattr(model, f.name)
        if isinstance(value, (int, float)) or eqx.is_array(value):
            names.append(f.name)
    return names


def sample_parameters(
    model: eqx.Module,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    variability: Mapping[str, float | Spread],
) -> eqx.Module:
    """Copy of ``model`` with the parameters named in ``variability`` drawn per device.

    Args:
        model: a device model (any ``eqx.Module`` with numeric fields).
        key: PRNG key.
        shape: array shape, e.g. ``(rows, cols)``.
        variability: parameter name -> ``sigma`` (lognormal) or :class:`Spread`.

    Raises ``ValueError`` for an unknown parameter name or a negative sigma. The
    drawn model is validated again (its ``__check_init__``), so a spread that
    produces an unphysical value (e.g. a normal spread making a thickness negative)
    fails loudly instead of being clipped."""
    names = parameter_names(model)
    spreads: dict[str, Spread] = {}
    for name, spec in variability.items():
        if name not in names:
            raise ValueError(
                f"variability names unknown parameter {name!r} of {type(model).__name__}; "
                f"valid names: {sorted(names)}"
            )
        spreads[name] = spec if isinstance(spec, Spread) else Spread(float(spec))
    shape = tuple(shape)
    keys = jax.random.split(key, max(len(spreads), 1))
    drawn = {
        name: spreads[name].draw(k, getattr(model, name), shape)
        for name, k in zip(sorted(spreads), keys, strict=False)
    }
    if not drawn:
        return model
    new = eqx.tree_at(
        lambda m: [getattr(m, n) for n in sorted(drawn)],
        model,
        [drawn[n] for n in sorted(drawn)],
        is_leaf=lambda x: x is None,
    )
    # Re-run the model's validation on the drawn values (tree_at skips __init__).
    check = getattr(new, "__check_init__", None)
    if check is not None:
        check()
    return new
