"""The device interface shared by every model in ``devices``.

A device model is an ``eqx.Module`` whose fields are physical parameters (floats,
or arrays broadcastable to an array shape for device-to-device variation). The
evolving physical state is a separate small pytree (``State``), returned anew by
every operation. The methods below are the whole interface (DESIGN.md):

==========================================  ==========================================
``init_state(shape, **values)``             fresh state; state variables by name
``current(state, v)``                       cell current [A] at voltage ``v`` [V]
``conductance(state, v_read=None)``         ``current / v_read`` [S] (default ``v_read``
                                            per model)
``apply_pulse(state, v, width_s, key)``     integrate switching over one pulse
``drift(state, t_s)``                       relaxation / drift for ``t_s`` [s] at rest
``read_noise(state, key, v_read=None)``     one noisy conductance read [S]
``sample(key, shape, variability)``         copy with per-device parameters
==========================================  ==========================================

Conventions: ``v`` is the voltage of the top electrode with respect to the bottom
electrode (positive = the model's documented SET or RESET polarity); arrays
broadcast against the state shape; randomness only through explicit keys.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .noise import ReadNoise
from .variability import Spread, sample_parameters


class Device(eqx.Module):
    """Abstract base of all device models (see the module docstring for the interface).

    Subclasses set the class attribute ``State`` (an ``eqx.Module`` whose fields are
    the state variables), implement ``state_defaults``, ``current`` and
    ``apply_pulse``, and carry the fields ``v_read`` [V] and ``noise``
    (:class:`ReadNoise`)."""

    State: ClassVar[type]

    # ---- state -------------------------------------------------------------------
    @abc.abstractmethod
    def state_defaults(self) -> dict[str, float]:
        """Default value of each state variable (name -> value, SI units)."""

    def check_state_values(self, values: Mapping[str, object]) -> None:
        """Validate user-given state values (override to add range checks)."""

    def init_state(self, shape: tuple[int, ...] = (), **values):
        """A fresh state of array ``shape``; state variables may be given by name.

        Example: ``StanfordPKU().init_state((64, 64), gap=1.7e-9)``. Values may be
        scalars or arrays broadcastable to ``shape``. Unknown names raise
        ``ValueError`` listing the valid ones."""
        defaults = self.state_defaults()
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.init_state got unknown state variable(s) {unknown}; "
                f"valid: {sorted(defaults)}"
            )
        self.check_state_values(values)
        dtype = jnp.result_type(float)
        shape = tuple(shape)
        fields = {
            name: jnp.broadcast_to(jnp.asarray(values.get(name, default), dtype), shape)
            for name, default in defaults.items()
        }
        return self.State(**fields)

    # ---- electrical ----------------------------------------------------------------
    @abc.abstractmethod
    def current(self, state, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Cell current [A] for applied voltage ``v`` [V], elementwise."""

    def conductance(self, state, v_read: float | Array | None = None) -> Float[Array, "*shape"]:
        """Chord conductance ``I(v_read) / v_read`` [S] (``v_read`` defaults to the
        model's field ``v_read``; it must be nonzero)."""
        v = self.v_read if v_read is None else v_read
        return self.current(state, v) / v

    def resistance(self, state, v_read: float | Array | None = None) -> Float[Array, "*shape"]:
        """Chord resistance ``v_read / I(v_read)`` [Ω]."""
        return 1.0 / self.conductance(state, v_read)

    # ---- dynamics ------------------------------------------------------------------
    @abc.abstractmethod
    def apply_pulse(self, state, v, width_s, key: PRNGKeyArray | None = None):
        """State after a rectangular pulse of amplitude ``v`` [V] and width ``width_s`` [s].

        ``key`` drives cycle-to-cycle noise; ``None`` gives the deterministic model."""

    def drift(self, state, t_s):
        """State after resting (no bias) for ``t_s`` [s]. Default: no drift."""
        del t_s
        return state

    def read_noise(
        self, state, key: PRNGKeyArray, v_read: float | Array | None = None
    ) -> Float[Array, "*shape"]:
        """One noisy read of the conductance [S] (1/f + RTN, see :class:`ReadNoise`)."""
        return self.noise.sample(key, self.conductance(state, v_read))

    def read_noise_moments(self, state, v_read: float | Array | None = None):
        """Per-cell mean [S] and variance [S^2] of one :meth:`read_noise` draw, or
        ``None`` where they are not known in closed form (random telegraph noise, or a
        subclass with its own ``read_noise`` and no matching moments). Arrays use them to
        draw the noise of a column sum directly (``xbar.Crossbar.mvm``)."""
        if type(self).read_noise is not Device.read_noise:
            return None
        return self.noise.moments(self.conductance(state, v_read))

    # ---- composite helpers -------------------------------------------------------------
    def pulse_train(self, state, amplitudes, width_s, key=None, v_read=None):
        """Apply pulses ``amplitudes`` (shape ``(n,)`` or ``(n, *shape)``) one after another.

        Returns ``(final_state, g)`` with ``g[k]`` the conductance [S] read at
        ``v_read`` after pulse ``k`` (shape ``(n, *state_shape)``)."""
        amplitudes = jnp.asarray(amplitudes)
        n = amplitudes.shape[0]
        keys = jax.random.split(key, n) if key is not None else None

        def step(s, xs):
            v, k = xs
            s = self.apply_pulse(s, v, width_s, k)
            return s, self.conductance(s, v_read)

        return jax.lax.scan(step, state, (amplitudes, keys))

    def sweep(self, state, v_t, dt_s, key=None):
        """Quasi-static voltage sweep: ``v_t`` (shape ``(T,)``) held for ``dt_s`` each.

        Returns ``(final_state, i_t)`` with ``i_t[k]`` the current [A] at ``v_t[k]``
        after the state has evolved under it for ``dt_s`` (an I-V loop)."""
        v_t = jnp.asarray(v_t)
        keys = jax.random.split(key, v_t.shape[0]) if key is not None else None

        def step(s, xs):
            v, k = xs
            s = self.apply_pulse(s, v, dt_s, k)
            return s, self.current(s, v)

        return jax.lax.scan(step, state, (v_t, keys))

    # ---- variability ---------------------------------------------------------------
    def sample(
        self, key: PRNGKeyArray, shape: tuple[int, ...], variability: Mapping[str, float | Spread]
    ):
        """A copy with per-device parameters of ``shape`` (see ``devices.variability``)."""
        return sample_parameters(self, key, shape, variability)


__all__ = ["Device", "ReadNoise"]
