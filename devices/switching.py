"""Stochastic (abrupt, binary) switching: probability vs pulse amplitude and width.

Two switching-time laws:

* :class:`LognormalSwitching` -- switching times are lognormal (TiO2 bipolar
  memristors, Medeiros-Ribeiro et al., "Lognormal switching times for titanium
  dioxide bipolar memristors: origin and resolution", Nanotechnology 22, 095702
  (2011)): ``ln t_sw ~ N(ln t_mean(V), sigma^2)``, ``t_mean(V) = t0 exp(-|V| / v0)``,
  so a pulse of width ``t_p`` switches with ``P = Phi((ln t_p - ln t_mean(V)) / sigma)``.
* :class:`PoissonSwitching` -- a memoryless switching event of rate ``1 / tau(V)``
  (Gaba, Sheridan, Zhou, Choi, Lu, Nanoscale 5, 5872 (2013)): ``t_sw`` is exponential,
  ``P = 1 - exp(-t_p / tau(V))``, ``tau(V) = tau0 exp(-|V| / v0)``.

The probabilities are smooth in ``v`` and ``width_s`` (usable in stochastic learning
rules that differentiate through them); ``sample`` draws the binary outcome.
Default constants are UNCONFIRMED placeholders: a 1 V pulse has a median switching
time of 100 ns, one decade of time per 0.23 V (``v0`` = 0.1 V), ``sigma`` = 0.7
(0.5-1 natural-log units are typical of the measured spreads).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._checks import check_positive, check_pulse

_T_1V = 1e-7  # median switching time at |V| = 1 V [s] (UNCONFIRMED)
_V0 = 0.1  # voltage scale [V] (UNCONFIRMED)


def _shape(v, width_s):
    return jnp.broadcast_shapes(jnp.shape(v), jnp.shape(width_s))


class _Switching(eqx.Module):
    """Shared sampling of a switching law given its ``probability(v, width_s)``."""

    @abc.abstractmethod
    def probability(self, v, width_s):
        """Probability that a pulse of ``v`` [V] and ``width_s`` [s] switches the device
        (each law defines its own)."""

    def sample(
        self, key: PRNGKeyArray, v: Float[Array, "*shape"], width_s: float | Float[Array, "*shape"]
    ) -> Bool[Array, "*shape"]:
        """Bernoulli outcome (True = switched) for each pulse, independent per device."""
        return jax.random.uniform(key, _shape(v, width_s)) < self.probability(v, width_s)


class LognormalSwitching(_Switching):
    """Lognormal switching-time statistics (Medeiros-Ribeiro et al., Nanotechnology 2011).

    Fields:
        t0: median switching time extrapolated to V = 0 [s].
        v0: voltage scale of the exponential speed-up [V].
        sigma: standard deviation of ``ln t_sw`` [-].
    """

    t0: float = _T_1V * math.exp(1.0 / _V0)  # UNCONFIRMED: t_mean(1 V) = 100 ns
    v0: float = _V0  # UNCONFIRMED
    sigma: float = 0.7  # UNCONFIRMED (0.5-1 quoted)

    def __check_init__(self):
        check_positive("t0", self.t0, "s")
        check_positive("v0", self.v0, "V")
        check_positive("sigma", self.sigma)

    def median_time(self, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """``t_mean(V) = t0 exp(-|V| / v0)`` [s] (median of the lognormal)."""
        return self.t0 * jnp.exp(-jnp.abs(v) / self.v0)

    def probability(
        self, v: Float[Array, "*shape"], width_s: float | Float[Array, "*shape"]
    ) -> Float[Array, "*shape"]:
        """Probability that a pulse ``v`` [V] of ``width_s`` [s] switches the device."""
        v, width_s = check_pulse("LognormalSwitching.probability", v, width_s)
        z = (jnp.log(width_s) - jnp.log(self.t0) + jnp.abs(v) / self.v0) / self.sigma
        return ndtr(z)

    def switching_time(
        self, key: PRNGKeyArray, v: Float[Array, "*shape"], shape: tuple[int, ...] = ()
    ) -> Float[Array, "*shape"]:
        """Switching times [s] drawn at constant ``v``: ``t_mean(V) exp(sigma xi)``."""
        shape = jnp.broadcast_shapes(tuple(shape), jnp.shape(v))
        xi = jax.random.normal(key, shape)
        return self.median_time(v) * jnp.exp(self.sigma * xi)


class PoissonSwitching(_Switching):
    """Poisson (exponential switching-time) statistics (Gaba et al., Nanoscale 2013).

    Fields:
        tau0: mean switching time extrapolated to V = 0 [s].
        v0: voltage scale of the exponential speed-up [V].
    """

    tau0: float = _T_1V * math.exp(1.0 / _V0)  # UNCONFIRMED: tau(1 V) = 100 ns
    v0: float = _V0  # UNCONFIRMED

    def __check_init__(self):
        check_positive("tau0", self.tau0, "s")
        check_positive("v0", self.v0, "V")

    def mean_time(self, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """``tau(V) = tau0 exp(-|V| / v0)`` [s]."""
        return self.tau0 * jnp.exp(-jnp.abs(v) / self.v0)

    def probability(
        self, v: Float[Array, "*shape"], width_s: float | Float[Array, "*shape"]
    ) -> Float[Array, "*shape"]:
        """``P = 1 - exp(-t_p / tau(V))`` for a pulse ``v`` [V] of ``width_s`` [s]."""
        v, width_s = check_pulse("PoissonSwitching.probability", v, width_s)
        return -jnp.expm1(-width_s / self.mean_time(v))

    def switching_time(
        self, key: PRNGKeyArray, v: Float[Array, "*shape"], shape: tuple[int, ...] = ()
    ) -> Float[Array, "*shape"]:
        """Switching times [s] drawn at constant ``v``: exponential with mean ``tau(V)``."""
        shape = jnp.broadcast_shapes(tuple(shape), jnp.shape(v))
        return self.mean_time(v) * jax.random.exponential(key, shape)


__all__ = ["LognormalSwitching", "PoissonSwitching"]
