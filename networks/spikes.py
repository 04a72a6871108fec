"""Spike functions: the threshold nonlinearity of a spiking neuron.

A spike function maps a dimensionless, normalised membrane argument ``x`` to an output
spike: ``z = H(x) = 1`` where ``x > 0`` (strict, as NIR's ``Threshold`` and ``LIF``
nodes define it; Pedersen et al., Nat. Commun. 15:8122, 2024) and ``0`` elsewhere.
Neurons call it with ``x = (v - v_threshold) / v_scale`` (see :mod:`.neurons` for
``v_scale``), so that the argument has the same scale whatever the units of ``v``.

:class:`Heaviside` is the exact step (its derivative is zero almost everywhere).
Surrogate-gradient training replaces only the derivative: a subclass keeps this forward
value and supplies a smooth backward pass through ``jax.custom_jvp`` (Neftci, Mostafa &
Zenke, IEEE Signal Process. Mag. 36(6), 2019); such subclasses live in
``xbar.learning``.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractSpikeFunction(eqx.Module):
    """Interface of a spike function: ``__call__(x) -> z``, ``z = 1.0`` where ``x > 0``
    (strict) and ``0.0`` elsewhere, in the dtype of ``x``. ``x`` is dimensionless."""

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        raise NotImplementedError


class Heaviside(AbstractSpikeFunction):
    """The exact step ``H(x) = 1 if x > 0 else 0`` (zero derivative)."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
        return jnp.where(x > 0, jnp.ones((), dtype), jnp.zeros((), dtype))


__all__ = ["AbstractSpikeFunction", "Heaviside"]
