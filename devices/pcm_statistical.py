"""Statistical PCM models for network studies: inference noise, drift compensation, updates.

Two published statistical descriptions of phase-change memory (PCM) used for neural
networks (equation numbers 3.1-3.4 are ours):

* :class:`PCMStatistical`: the inference model of Joshi et al., "Accurate deep neural
  network inference using computational phase-change memory", Nat. Commun. 11, 2473
  (2020), and Nandakumar et al., ICECS 2019, as implemented in IBM aihwkit
  (``aihwkit/inference/noise/pcm.py``, ``PCMLikeNoiseModel``), calibrated on a
  one-million-device PCM array. With ``g_T = G_T / g_max`` the normalised target:

      sigma_prog [uS] = max(c0 + c1 g_T + c2 g_T^2, 0) (g_max / 25 uS)           (3.1)
      G_prog = max(G_T + sigma_prog xi_1, 0)
      mu_nu    = clip(-0.0155 ln g_T + 0.0244, 0.049, 0.1)
      sigma_nu = clip(-0.0125 ln g_T - 0.0059, 0.008, 0.045)
      nu = |mu_nu + sigma_nu xi_2| drift_scale         (drawn once, at programming)
      G_drift(t) = G_prog (t / t0)^(-nu),   t = t_inference + t0                  (3.2)
      Q_s = min(0.0088 / max(g^0.65, 1e-3), 0.2),  g = |G_prog| / g_max
      sigma_read(t) = |G_drift(t)| Q_s sqrt(ln((t + t_read) / (2 t_read)))          (3.3)
      G(t) = max(G_drift(t) + sigma_read xi_3, 0)

  Conductances are in S at the public API; the coefficients c_i are the published
  ones in uS (converted inside). ``nu`` is drawn once per device at programming and
  kept in the state, so a device follows one drift trajectory -- as in aihwkit's
  inference tile workflow, which draws the drift coefficients when the weights are
  programmed (``generate_drift_coefficients`` at ``program_weights``) and reuses them
  for every later ``drift_weights(t_inference)``.

* Drift compensation of these arrays: ``devices.compensation`` (one definition for
  this model and for ``xbar.Crossbar``, valid for signed arrays).

Precision: float32 and float64 alike (within 1e-5 relative, tests).

* :class:`PCMTrainingUpdate`: conductance step per SET pulse for on-chip learning,
  the aihwkit ``PCMPresetDevice`` (an ``ExpStepDevice``) fit to the Ge2Sb2Te5 device
  of Nandakumar et al., Front. Neurosci. 14, 406 (2020).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import Device
from ._checks import (
    check_less,
    check_nonnegative,
    check_positive,
    check_pulse,
    check_range,
    check_time,
    check_voltage,
    float_array,
    require,
)
from ._math import clamped_normal_moments
from .variability import Spread

US = 1e-6  # one microsiemens [S]
G_REF_FIT = 25e-6  # g_max of the published sigma_prog fit [S] (Joshi 2020 / aihwkit)
_Q_S_FLOOR = 1e-3 ** (1 / 0.65)  # g / g_max below which Q_s saturates at 0.0088 / 1e-3 [-]


# ------------------------------------------------------------------------------------------
# Training-update statistics (Eq. 3.4)
# ------------------------------------------------------------------------------------------
class PCMTrainingUpdate(eqx.Module):
    """Conductance change per SET pulse of a PCM device (mean and spread vs conductance).

    The aihwkit ``PCMPresetDevice`` (``ExpStepDevice``, complex-noise variant, C++
    ``rpu_expstep_device``) fit to Nandakumar et al., Front. Neurosci. 14, 406 (2020),
    (Eq. 3.4). In the weight units ``w`` of the fit
    (``w in [w_min, w_max]``)::

        z  = 2 a w / (w_max - w_min) + b
        y  = max(1 - A_up exp(gamma_up z), 0)                         (SET, potentiation)
        dw = y dw_min
        w <- clip(w + dw + dw_min_std (|dw| + dw_min_std_add + dw_min_std_slope |w|) xi,
                  w_min, w_max)

    The device is uni-directional (only SET pulses move it gradually); a RESET returns
    it to ``w = reset_i + reset_std xi`` (w units), as aihwkit's pulsed devices do: a
    fixed per-device reset value ``reset_i = reset + reset_dtod xi_i`` (drawn once, by
    :meth:`preset_variability` through ``devices.sample_parameters``; the field
    ``reset`` then holds the per-device values) plus a fresh cycle-to-cycle part per
    reset (``reset_std``, aihwkit ``PulsedDevice`` default 0.01). The result is clipped
    to ``[w_min, w_max]``. Conductance ``G = g_max w / w_max`` [S]. The noise-free curve from ``w = 0`` gives 0.141, 0.462, 0.609, 0.865 of
    ``G_max`` after 1, 10, 20, 50 pulses (the preset's noise-free curve).

    Device-to-device spreads of the preset (``dw_min_dtod`` 0.2, ``w_max_dtod`` 0.1,
    relative Gaussian; ``reset_dtod`` 0.02, absolute) are available as
    :meth:`preset_variability` for ``devices.sample_parameters``.
    """

    dw_min: float = 0.01  # mean step scale [w units]
    w_min: float = 0.0
    w_max: float = 2.0
    a: float = -1.0
    b: float = 0.0
    gamma_up: float = 2.5
    a_up: float = -27.235  # 'A_up' of the fit
    dw_min_std: float = 0.6  # cycle-to-cycle noise scale
    dw_min_std_add: float = 0.042
    dw_min_std_slope: float = 0.108
    reset: float = 0.01  # w after a RESET (per device once sampled)
    reset_dtod: float = 0.02  # device-to-device spread of ``reset`` (aihwkit preset)
    reset_std: float = 0.01  # cycle-to-cycle spread per RESET (aihwkit PulsedDevice default)
    g_max: float = 25e-6  # conductance at w_max [S]; UNCONFIRMED pairing with the fit

    def __check_init__(self):
        check_positive("dw_min", self.dw_min)
        check_less("w_min", self.w_min, "w_max", self.w_max)
        check_nonnegative("dw_min_std", self.dw_min_std)
        check_nonnegative("dw_min_std_add", self.dw_min_std_add)
        check_nonnegative("dw_min_std_slope", self.dw_min_std_slope)
        check_nonnegative("reset_std", self.reset_std)
        check_nonnegative("reset_dtod", self.reset_dtod)
        # per-device reset values may fall outside [w_min, w_max]: clipped at use, as in aihwkit
        check_range("reset", self.reset)
        check_positive("g_max", self.g_max, "S")
        check_positive("gamma_up", self.gamma_up)

    def preset_variability(self) -> dict[str, Spread]:
        """Device-to-device spreads of the aihwkit preset (``dw_min``, ``w_max`` relative
        Gaussian; ``reset`` absolute Gaussian with ``reset_dtod``)."""
        return {
            "dw_min": Spread(0.2, "normal"),
            "w_max": Spread(0.1, "normal"),
            "reset": Spread(self.reset_dtod, "absolute"),
        }

    def _w(self, g):
        return jnp.asarray(g) / self.g_max * self.w_max

    def _g(self, w):
        return w * self.g_max / self.w_max

    def _dw(self, w):
        z = 2.0 * self.a * w / (self.w_max - self.w_min) + self.b
        return jnp.maximum(1.0 - self.a_up * jnp.exp(self.gamma_up * z), 0.0) * self.dw_min

    def mean_step(self, g: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Expected conductance step [S] of one SET pulse at conductance ``g`` [S]
        (before clipping at ``G_max``)."""
        return self._g(self._dw(self._w(g)))

    def step_std(self, g: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Standard deviation [S] of the step of one SET pulse at conductance ``g`` [S]
        (before clipping)."""
        w = self._w(g)
        dw = self._dw(w)
        std = self.dw_min_std * (
            jnp.abs(dw) + self.dw_min_std_add + self.dw_min_std_slope * jnp.abs(w)
        )
        return self._g(std)

    def set_pulse(
        self, g: Float[Array, "*shape"], key: PRNGKeyArray | None = None
    ) -> Float[Array, "*shape"]:
        """Conductance [S] after one SET pulse; ``key=None`` gives the noise-free step.

        The result is clipped to ``[G(w_min), G(w_max)]`` (the bounds of the fit)."""
        g = jnp.asarray(g, jnp.result_type(float))
        new = g + self.mean_step(g)
        if key is not None:
            new = new + self.step_std(g) * jax.random.normal(key, g.shape, g.dtype)
        return jnp.clip(new, self._g(self.w_min), self._g(self.w_max))

    def reset_pulse(
        self, g: Float[Array, "*shape"], key: PRNGKeyArray | None = None
    ) -> Float[Array, "*shape"]:
        """Conductance [S] after a RESET (abrupt melt-quench to ``reset``, w units)."""
        g = jnp.asarray(g, jnp.result_type(float))
        w = jnp.broadcast_to(jnp.asarray(self.reset, g.dtype), g.shape)
        if key is not None:
            w = w + self.reset_std * jax.random.normal(key, g.shape, g.dtype)
        return self._g(jnp.clip(w, self.w_min, self.w_max))

    def pulse_curve(
        self,
        g0: Float[Array, "*shape"],
        n_pulses: int,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, " n_pulses *shape"]:
        """Conductance [S] after each of ``n_pulses`` SET pulses starting from ``g0``."""
        keys = jax.random.split(key, n_pulses) if key is not None else None

        def step(g, k):
            g = self.set_pulse(g, k)
            return g, g

        _, gs = jax.lax.scan(step, jnp.asarray(g0, jnp.result_type(float)), keys, length=n_pulses)
        return gs


# ------------------------------------------------------------------------------------------
# Inference statistics (Eqs. 3.1-3.3)
# ------------------------------------------------------------------------------------------
class PCMStatisticalState(eqx.Module):
    """State of a statistically modelled PCM device.

    Fields (arrays of the device shape):
        g_prog: conductance right after programming (at ``t0``) [S].
        g_target: the target it was programmed to [S] (sets the drift statistics).
        nu: drift exponent, drawn once at programming [-].
        t_s: time since the end of programming (``t_inference``) [s].
    """

    g_prog: Float[Array, "*shape"]
    g_target: Float[Array, "*shape"]
    nu: Float[Array, "*shape"]
    t_s: Float[Array, "*shape"]


class PCMStatistical(Device):
    """Statistical PCM for inference studies (Joshi et al., Nat. Commun. 11, 2473, 2020).

    Programming noise, per-device drift and 1/f read noise of a PCM array after
    closed-loop write-verify, Eqs. (3.1)-(3.3) in the module docstring (aihwkit
    ``PCMLikeNoiseModel``). Typical use::

        model = devices.PCMStatistical()
        state = model.program(key, g_target)          # g_target [S], 0..g_max
        g = model.read(state, key2, t_s=86400.0)      # one noisy read after 1 day

    Device interface: :meth:`program` (or ``init_state``) makes a state;
    ``conductance(state)`` is the noise-free drifted conductance at the state's age
    ``t_s``; ``drift(state, t_s)`` ages the state; ``read_noise(state, key)`` is one
    noisy read; ``apply_pulse`` uses the training-update statistics
    (:class:`PCMTrainingUpdate`): ``v > 0`` is one SET pulse, ``v < 0`` a RESET
    (amplitude and width select only the kind of pulse).

    Fields:
        g_max: conductance of ``g_T = 1`` [S] (Joshi 2020: 25 uS).
        t0_s: time of the programming verify read [s] (aihwkit: 20 s).
        t_read_s: duration of a read [s] (aihwkit: 250 ns).
        prog_c0, prog_c1, prog_c2: Eq. (3.1) coefficients [uS] (aihwkit).
        prog_noise_scale, drift_scale, read_noise_scale: multipliers (default 1).
        v_read: read voltage for ``current`` [V] (the cell is linear here).
        update: the per-pulse update statistics for ``apply_pulse``.
    """

    State: ClassVar[type] = PCMStatisticalState

    g_max: float = 25e-6
    t0_s: float = 20.0
    t_read_s: float = 250e-9
    prog_c0: float = 0.26348
    prog_c1: float = 1.9650
    prog_c2: float = -1.1731
    prog_noise_scale: float = 1.0
    drift_scale: float = 1.0
    read_noise_scale: float = 1.0
    v_read: float = 0.2  # UNCONFIRMED: typical PCM read voltage
    update: PCMTrainingUpdate = PCMTrainingUpdate()

    def __check_init__(self):
        check_positive("g_max", self.g_max, "S")
        check_positive("t0_s", self.t0_s, "s")
        check_positive("t_read_s", self.t_read_s, "s")
        for name in ("prog_c0", "prog_c1", "prog_c2"):
            check_range(name, getattr(self, name))
        check_nonnegative("prog_noise_scale", self.prog_noise_scale)
        check_nonnegative("drift_scale", self.drift_scale)
        check_nonnegative("read_noise_scale", self.read_noise_scale)
        check_range("v_read", self.v_read, 0.0, 10.0, lo_open=True, unit="V")

    # ---- the published statistics ----------------------------------------------------
    def prog_sigma(self, g_target: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Programming-noise standard deviation [S] for target ``g_target`` [S] (Eq. 3.1)."""
        g = jnp.asarray(g_target) / self.g_max
        sigma_us = jnp.maximum(self.prog_c0 + self.prog_c1 * g + self.prog_c2 * g * g, 0.0)
        return sigma_us * US * (self.g_max / G_REF_FIT) * self.prog_noise_scale

    def nu_stats(self, g_target: Float[Array, "*shape"]):
        """``(mu_nu, sigma_nu)`` of the drift exponent before folding (Eq. 3.2)."""
        g = jnp.maximum(jnp.asarray(g_target) / self.g_max, 1e-7)
        mu = jnp.clip(-0.0155 * jnp.log(g) + 0.0244, 0.049, 0.1)
        sigma = jnp.clip(-0.0125 * jnp.log(g) - 0.0059, 0.008, 0.045)
        return mu, sigma

    def q_s(self, g_prog: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """1/f noise coefficient ``Q_s`` for programmed conductance ``g_prog`` [S] (Eq. 3.3)."""
        g = jnp.abs(jnp.asarray(g_prog)) / self.g_max
        # 0.0088 / max(g^0.65, 1e-3) written with exp/log (XLA's CPU pow is ~7x slower):
        # g^0.65 >= 1e-3 where g >= 1e-3^(1/0.65)
        g = jnp.maximum(g, _Q_S_FLOOR)
        return jnp.minimum(0.0088 * jnp.exp(-0.65 * jnp.log(g)), 0.2)

    def drift_factor(self, nu, t_s):
        """``((t + t0) / t0)^(-nu)`` for ``t_s`` [s] after programming (Eq. 3.2)."""
        return jnp.exp(-jnp.asarray(nu) * jnp.log((jnp.asarray(t_s) + self.t0_s) / self.t0_s))

    def noise_growth(self, t_s):
        """``sqrt(ln((t + t_read) / (2 t_read)))``, ``t = t_s + t0`` (Eq. 3.3)."""
        t = jnp.asarray(t_s) + self.t0_s
        return jnp.sqrt(jnp.maximum(jnp.log((t + self.t_read_s) / (2.0 * self.t_read_s)), 0.0))

    # ---- device interface ----------------------------------------------------------------
    def state_defaults(self) -> dict[str, float]:
        return {"g_prog": 0.0, "g_target": 0.0, "nu": 0.0, "t_s": 0.0}

    def check_state_values(self, values) -> None:
        for name in ("g_prog", "g_target", "nu", "t_s"):
            if name in values:
                check_nonnegative(name, values[name])

    def program(
        self, key: PRNGKeyArray | None, g_target: Float[Array, "*shape"]
    ) -> PCMStatisticalState:
        """Program devices to ``g_target`` [S] (in ``[0, g_max]``): programming noise and
        the per-device drift exponent are drawn here (``key=None``: noise-free, ``nu =
        mu_nu``). Targets outside ``[0, g_max]`` raise (``eqx.error_if``)."""
        g_t = float_array("g_target", g_target, "PCMStatistical.program", jnp.result_type(float))
        g_t = require(
            g_t,
            jnp.isfinite(g_t) & (g_t >= 0) & (g_t <= self.g_max * (1 + 1e-6)),
            "PCMStatistical.program: g_target must be finite and lie in [0, g_max] S",
        )
        mu, sigma = self.nu_stats(g_t)
        if key is None:
            g_prog, nu = g_t, mu * self.drift_scale
        else:
            k1, k2 = jax.random.split(key)
            xi1 = jax.random.normal(k1, g_t.shape, g_t.dtype)
            xi2 = jax.random.normal(k2, g_t.shape, g_t.dtype)
            g_prog = jnp.maximum(g_t + self.prog_sigma(g_t) * xi1, 0.0)
            nu = jnp.abs(mu + sigma * xi2) * self.drift_scale
        return PCMStatisticalState(g_prog=g_prog, g_target=g_t, nu=nu, t_s=jnp.zeros_like(g_t))

    def drifted_conductance(self, state: PCMStatisticalState) -> Float[Array, "*shape"]:
        """Noise-free drifted conductance ``G_prog ((t + t0) / t0)^(-nu)`` [S] at the
        state's age (``conductance`` at any nonzero ``v_read``: the cell is linear)."""
        return state.g_prog * self.drift_factor(state.nu, state.t_s)

    def current(
        self, state: PCMStatisticalState, v: Float[Array, "*shape"]
    ) -> Float[Array, "*shape"]:
        """Ohmic read current ``G(t) v`` [A]."""
        return self.drifted_conductance(state) * check_voltage("PCMStatistical.current", v)

    def drift(self, state: PCMStatisticalState, t_s) -> PCMStatisticalState:
        """The state ``t_s`` [s] later (only the age changes; ``nu`` is kept)."""
        t_s = check_time("PCMStatistical.drift", t_s)
        return eqx.tree_at(lambda s: s.t_s, state, state.t_s + t_s)

    def read(
        self, state: PCMStatisticalState, key: PRNGKeyArray, t_s=None
    ) -> Float[Array, "*shape"]:
        """One noisy read [S] at ``t_s`` [s] after programming (default: the state's age):
        drift (3.2) plus 1/f read noise (3.3), clamped at 0."""
        t = state.t_s if t_s is None else check_time("PCMStatistical.read", t_s)
        g_d = state.g_prog * self.drift_factor(state.nu, t)
        sigma = jnp.abs(g_d) * self.q_s(state.g_prog) * self.noise_growth(t)
        xi = jax.random.normal(key, g_d.shape, g_d.dtype)
        return jnp.maximum(g_d + sigma * xi * self.read_noise_scale, 0.0)

    def read_noise(self, state: PCMStatisticalState, key: PRNGKeyArray, v_read=None):
        """One noisy read [S] at the state's age (see :meth:`read`)."""
        del v_read
        return self.read(state, key)

    def read_noise_moments(self, state: PCMStatisticalState, v_read=None):
        """Mean [S] and variance [S^2] of :meth:`read_noise`, ``max(G_d + sigma xi, 0)``
        (Eq. 3.3): the rectified normal (:func:`devices._math.clamped_normal_moments`).
        The clamp matters only for cells with ``sigma / G_d`` above ~0.3 (``g_prog``
        below ~5 % of ``g_max``, where ``Q_s`` saturates at 0.2)."""
        del v_read
        mu = self.drifted_conductance(state)
        s = jnp.abs(mu) * self.q_s(state.g_prog) * self.noise_growth(state.t_s)
        return clamped_normal_moments(mu, s * self.read_noise_scale)

    def apply_pulse(self, state: PCMStatisticalState, v, width_s, key: PRNGKeyArray | None = None):
        """One training pulse: ``v > 0`` a SET step (:class:`PCMTrainingUpdate`) on the
        present (drifted) conductance, ``v < 0`` a RESET, ``v = 0`` nothing. The new
        conductance counts as freshly programmed (age 0, ``nu`` redrawn for it)."""
        where = "PCMStatistical.apply_pulse"
        v, width_s = check_pulse(where, v, width_s, shape=state.g_prog.shape)
        # width_s selects nothing here, but a bad one is still an error (also under jit)
        v = require(
            v,
            jnp.isfinite(width_s) & (width_s >= 0),
            f"{where}: width_s must be finite and >= 0 s",
            width_s,
        )
        v = jnp.broadcast_to(v, state.g_prog.shape)
        k_up, k_nu = (None, None) if key is None else jax.random.split(key)
        # The update statistics live on their own G_max; map through g / g_max.
        to_upd = self.update.g_max / self.g_max
        g_now = self.drifted_conductance(state) * to_upd
        g_new = jnp.where(
            v > 0,
            self.update.set_pulse(g_now, k_up),
            jnp.where(v < 0, self.update.reset_pulse(g_now, k_up), g_now),
        )
        g_new = g_new / to_upd
        mu, sigma = self.nu_stats(g_new)
        if k_nu is None:
            nu = mu * self.drift_scale
        else:
            nu = jnp.abs(mu + sigma * jax.random.normal(k_nu, g_new.shape, g_new.dtype))
            nu = nu * self.drift_scale
        moved = v != 0
        return PCMStatisticalState(
            g_prog=jnp.where(moved, g_new, state.g_prog),
            g_target=jnp.where(moved, g_new, state.g_target),
            nu=jnp.where(moved, nu, state.nu),
            t_s=jnp.where(moved, 0.0, state.t_s),
        )
