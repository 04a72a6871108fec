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

from ._checks import check_shape, float_array, require
from .noise import ReadNoise
from .variability import Spread, sample_parameters


class Device(eqx.Module):
    """Abstract base of all device models (see the module docstring for the interface).

    Declared abstract fields (every concrete model has them): ``v_read`` [V], the
    default read voltage, and the class variable ``State`` (an ``eqx.Module`` whose
    fields are the state variables). Abstract methods: ``state_defaults``,
    ``check_state_values``, ``current``, ``apply_pulse``, ``drift``, ``read_noise``
    and ``read_noise_moments``. The concrete methods below (``init_state``,
    ``conductance``, ``resistance``, ``pulse_train``, ``sweep``, ``sample``) are the
    same for every model; concrete models are final and do not override them (a
    contract test checks it).

    Precision: every model works in float32 and float64 (``jax_enable_x64``); each
    model's docstring states the float32 tolerance measured against float64.
    Bad input (NaN, inf, out-of-range values, wrong shapes) raises ``ValueError``
    naming the parameter; inside ``jit`` the same message comes from
    ``eqx.error_if``."""

    v_read: eqx.AbstractVar[float]
    State: eqx.AbstractClassVar[type]
    #: default spreads of :meth:`sample` when it gets ``variability=None`` (name -> sigma)
    default_spreads: ClassVar[Mapping[str, float | Spread]] = {}

    # ---- state -------------------------------------------------------------------
    @abc.abstractmethod
    def state_defaults(self) -> dict[str, float]:
        """Default value of each state variable (name -> value, SI units)."""

    @abc.abstractmethod
    def check_state_values(self, values: Mapping[str, object]) -> None:
        """Validate user-given state values (``ValueError`` naming the variable)."""

    def init_state(self, shape: tuple[int, ...] = (), **values):
        """A fresh state of array ``shape``; state variables may be given by name.

        Example: ``StanfordPKU().init_state((64, 64), gap=1.7e-9)``. Values may be
        scalars or arrays broadcastable to ``shape``. Unknown names raise
        ``ValueError`` listing the valid ones."""
        name = type(self).__name__
        defaults = self.state_defaults()
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ValueError(
                f"{name}.init_state got unknown state variable(s) {unknown}; "
                f"valid: {sorted(defaults)}"
            )
        shape = check_shape(f"{name}.init_state", shape)
        values = {k: float_array(k, x, f"{name}.init_state") for k, x in values.items()}
        for k, x in values.items():
            require(x, jnp.isfinite(x), f"{name}.init_state: {k} must be finite")
            try:
                jnp.broadcast_shapes(jnp.shape(x), shape)
            except ValueError:
                raise ValueError(
                    f"{name}.init_state: {k} of shape {jnp.shape(x)} does not broadcast "
                    f"to the state shape {shape}"
                ) from None
        self.check_state_values(values)
        dtype = jnp.result_type(float)
        fields = {
            k: jnp.broadcast_to(jnp.asarray(values.get(k, default), dtype), shape)
            for k, default in defaults.items()
        }
        return self.State(**fields)

    # ---- electrical ----------------------------------------------------------------
    @abc.abstractmethod
    def current(self, state, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Cell current [A] for applied voltage ``v`` [V], elementwise."""

    def conductance(self, state, v_read: float | Array | None = None) -> Float[Array, "*shape"]:
        """Chord conductance ``I(v_read) / v_read`` [S] (``v_read`` defaults to the
        model's field ``v_read``; it must be finite and nonzero)."""
        where = f"{type(self).__name__}.conductance"
        v = self.v_read if v_read is None else float_array("v_read", v_read, where)
        v = require(v, jnp.isfinite(v) & (v != 0), f"{where}: v_read must be finite and nonzero")
        return self.current(state, v) / v

    def resistance(self, state, v_read: float | Array | None = None) -> Float[Array, "*shape"]:
        """Chord resistance ``v_read / I(v_read)`` [Ω]."""
        return 1.0 / self.conductance(state, v_read)

    # ---- dynamics ------------------------------------------------------------------
    @abc.abstractmethod
    def apply_pulse(self, state, v, width_s, key: PRNGKeyArray | None = None):
        """State after a rectangular pulse of amplitude ``v`` [V] and width ``width_s`` [s].

        ``key`` drives cycle-to-cycle noise; ``None`` gives the deterministic model."""

    @abc.abstractmethod
    def drift(self, state, t_s):
        """State after resting (no bias) for ``t_s`` [s]."""

    @abc.abstractmethod
    def read_noise(
        self, state, key: PRNGKeyArray, v_read: float | Array | None = None
    ) -> Float[Array, "*shape"]:
        """One noisy read of the conductance [S]."""

    @abc.abstractmethod
    def read_noise_moments(self, state, v_read: float | Array | None = None):
        """Per-cell mean [S] and variance [S^2] of one :meth:`read_noise` draw, or
        ``None`` where they are not known in closed form (random telegraph noise). Arrays
        use them to draw the noise of a column sum directly (``xbar.Crossbar.mvm``)."""

    # ---- composite helpers -------------------------------------------------------------
    def pulse_train(self, state, amplitudes, width_s, key=None, v_read=None):
        """Apply pulses ``amplitudes`` (shape ``(n,)`` or ``(n, *shape)``) one after another.

        Returns ``(final_state, g)`` with ``g[k]`` the conductance [S] read at
        ``v_read`` after pulse ``k`` (shape ``(n, *state_shape)``)."""
        amplitudes = float_array("amplitudes", amplitudes, f"{type(self).__name__}.pulse_train")
        if amplitudes.ndim == 0:
            raise ValueError("pulse_train: amplitudes must have a leading pulse axis, got a scalar")
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
        v_t = float_array("v_t", v_t, f"{type(self).__name__}.sweep")
        if v_t.ndim == 0:
            raise ValueError("sweep: v_t must have a leading time axis, got a scalar")
        keys = jax.random.split(key, v_t.shape[0]) if key is not None else None

        def step(s, xs):
            v, k = xs
            s = self.apply_pulse(s, v, dt_s, k)
            return s, self.current(s, v)

        return jax.lax.scan(step, state, (v_t, keys))

    # ---- variability ---------------------------------------------------------------
    def sample(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...],
        variability: Mapping[str, float | Spread] | None = None,
    ):
        """A copy with per-device parameters of ``shape`` (see ``devices.variability``);
        ``variability=None`` uses the model's ``default_spreads``."""
        spreads = self.default_spreads if variability is None else variability
        shape = check_shape(f"{type(self).__name__}.sample", shape)
        return sample_parameters(self, key, shape, spreads)


def standard_read_noise(device: Device, state, key, v_read):
    """One read with the model's :class:`ReadNoise` (``device.noise``) on the chord
    conductance: the read of the RRAM models."""
    return device.noise.sample(key, device.conductance(state, v_read))


def standard_read_noise_moments(device: Device, state, v_read):
    """Moments of :func:`standard_read_noise` (``None`` with random telegraph noise)."""
    return device.noise.moments(device.conductance(state, v_read))


__all__ = ["Device", "ReadNoise"]
