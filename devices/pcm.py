"""Physics-based phase-change memory (PCM): an electro-thermal mushroom-cell compact model.

Structure from the IBM state-equation model of a mushroom cell (Sci. Rep. 12, 2022,
"Experimental validation of state equations and dynamic route maps for phase change
memristive devices", Figs. 1, 2, 4, 5, 7), with standard sub-models (equation
numbers 2.1, 2.2 below are ours). The numbers are mostly UNCONFIRMED placeholders,
chosen so that the default cell matches the 90 nm PCRAM cell of the NVSim sample
configuration (Dong et al., ISCA 2009: about 1 kOhm SET / 1 MOhm RESET read resistance,
RESET about 300 uA / 40 ns, SET about 150 uA / 150 ns) and the write plateau of the
Sci. Rep. cell (V_cell about 0.8 V above 100 uA).

State: the effective amorphous thickness ``u_a`` [m] over the heater and the time since
the last programming event ``t_s`` [s]. The interface temperature ``T`` [K] is
integrated inside a pulse (and its cooling tail) and is back at ambient between
pulses.

Electrical (the applied voltage ``v`` drops over the access resistance ``r_series``
and the cell)::

    OFF:  v = I (r_c(T) + r_series) + V_a,   I = I0 sinh(V_a / V0)       (Poole-Frenkel)
          I0 = 2 k T A / (q dz rho_a(T, t)),  V0 = 2 k T u_s / (q dz)
          (Ielmini & Zhang, J. Appl. Phys. 102, 054517 (2007): low-field
          resistance rho_a u_s / A, exponential in field at high field)
    threshold switching when V_a >= V_th = V_th0 + E_th u_s, or when the cell melts
    ON:   V_cell = V_ON + R_ON I   (I = (v - V_ON) / (R_ON + r_series)), until
          I < I_hold (hysteresis); the ON current never drops below the OFF one.

``u_s = u_a - u_melt(T)`` is the solid part of the amorphous region (the molten part
conducts). The implicit OFF equation, ``g(x) = V0 x + b sinh x - v = 0`` in
``x = V_a / V0`` with ``b = (r_c + r_series) I0``, is solved with Halley's method
(cubic convergence) from the upper bound ``min(v / V0, v / b, ln(1 + 2 v / b)) >=
asinh(v / b)``; the iterates are kept in ``[0, upper bound]`` (``g`` is increasing and
convex, so the root lies there).

Thermal (Eq. 2.1), with the thermal resistance growing with the insulating amorphous
cap (Sci. Rep. 2022, Fig. 4a)::

    C_th dT/dt = I V_cell - (T - T_amb) / R_th(u_a),   R_th = R_th0 + R_th1 u_a

RESET (melt-quench): the molten extent follows the temperature,
``u_melt = u_h ((T - T_amb) / (T_melt - T_amb) - 1)`` in ``[0, u_max]`` (the compact
rule ``u_h (P / P_melt - 1)`` at steady state) and ``u_a <- max(u_a, u_melt)``; what is
not re-crystallised while the temperature falls through the growth window is amorphous.
SET (crystal growth, Eq. 2.2)::

    du_a/dt = -v_g(T),   v_g = v_max exp(-(T - T_peak)^2 / (2 sigma_T^2))   (T < T_melt)

so slow falling edges re-crystallise part of the melt (multilevel RESET) and
repeated partial-SET pulses lower ``u_a`` step by step until the cell is crystalline.
``u_a`` is bounded by ``[0, u_max]`` (the amorphous dome cannot exceed the cell).

Drift (Ielmini et al., IEEE TED 54(2), 2007; Khan et al.): the amorphous resistivity and the crystalline/contact
resistance age as ``(t / t0)^nu`` (``nu_a`` about 0.1, Khan et al.; ``nu_c`` about
0.005-0.01, UNCONFIRMED), so the cell's exponent lies between the two according to
the amorphous share of the resistance. Ageing is thermally activated
(``ea_drift_ev``, UNCONFIRMED) and conduction is activated (``ea_ev``).

Read noise (Joshi et al., Nat. Commun. 11, 2473 (2020), the 1/f model of their
one-million-device PCM array as implemented in IBM aihwkit ``PCMLikeNoiseModel``): the
1/f band of a read runs from ``1/(t + t_n0 + t_read)`` to ``1/(2 t_read)``, ``t`` the
age and ``t_n0`` (20 s, aihwkit's ``t_0``) the time of the first read after
programming, so the noise is non-zero right after a pulse; the amplitude depends on
the programmed state, rising towards low conductance::

    sigma_G / G = Q_s(g) sqrt(ln((t + t_n0 + t_read) / (2 t_read))),
    Q_s(g) = min(0.0088 / max(g^0.65, 1e-3), 0.2),  g = G_prog / g_ref

``G_prog`` the conductance right after programming (age 0) and ``g_ref`` the
conductance that plays the role of the fit's ``g_max`` (25 uS in Joshi 2020): by
default the fully crystalline read conductance of this cell, ``1 / (r_c + r_series)``
(UNCONFIRMED mapping of the fit, made on a different cell, onto this one).

Numerics (choices of this implementation): a pulse is a trapezoid (rise, plateau,
fall) followed by a cooling tail of ``tail_tau`` thermal time constants, each
segment cut into a fixed number of sub-steps (one sub-step = one time step of the
integrator); the temperature is advanced with the exact exponential step for the
power of the sub-step and the growth uses the step-averaged temperature; the OFF
solve inside a pulse uses ``n_newton`` Halley iterations (2: ``V_a`` within 4e-6 V
and ``I`` within 7e-6 of the converged root over 300-1600 K, 0-3 V and all ``u_s``;
the conductance after a pulse within 1e-8 of a converged solve; see the tests),
reads use ``n_newton_read``. In the cooling tail no voltage is applied, so no current
flows and only the thermal and growth parts of the sub-step are evaluated. On CPU the
cells are processed in blocks of ``block_size`` (all sub-steps of one block before the
next) so that the state of a block stays in cache; results do not depend on it.
Threshold switching in :meth:`PCM.current` (a static I-V) is a logistic blend of
width ``v_smooth`` so the read I-V is differentiable.

Precision: float32 and float64 alike; float32 agrees with float64 within 5e-4
(relative) for conductances (fresh and drifted), read noise and states after pulses
(tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import Device
from ._checks import (
    check_finite,
    check_less,
    check_nonnegative,
    check_positive,
    check_pulse,
    check_range,
    check_time,
    check_voltage,
)
from ._math import EXP_ARG_MAX, smooth_step, solve_linear_sinh
from .constants import K_B_EV
from .noise import ReadNoise

U_GUARD = 1e-12  # [m]: keeps V0 > 0 when no solid amorphous material is left


class PCMState(eqx.Module):
    """State of a PCM cell: amorphous thickness ``u_a`` [m], age ``t_s`` [s] (time since
    the last programming event)."""

    u_a: Float[Array, "*shape"]
    t_s: Float[Array, "*shape"]


class PCM(Device):
    """Electro-thermal mushroom-cell PCM (see the module docstring for the equations).

    Sources: state equations after IBM, Sci. Rep. 12 (2022) (state ``u_a``, ``T_int``;
    V_cell,ON plateau about 0.8 V above 100 uA); Poole-Frenkel conduction after Ielmini &
    Zhang, J. Appl. Phys. 102 (2007); Gaussian growth velocity (Eq. 2.2) after
    Sebastian et al., Nat. Commun. 5, 4314 (2014); drift after Khan et al. (amorphous nu
    0.07-0.11) and Joshi et al. 2020 (1/f noise form); operating point of the 90 nm
    PCRAM cell (NVSim sample config, ISCA 2009).

    ``apply_pulse(state, v, width_s, key, *, rise_s=None, fall_s=None)`` integrates a
    trapezoidal pulse of plateau amplitude ``|v|`` (the cell is unipolar) and plateau
    width ``width_s``; ``fall_s`` controls the quench (multilevel RESET).
    """

    State: ClassVar[type] = PCMState

    # electrical
    # effective conduction area (about a 25 nm heater radius) [m^2]; UNCONFIRMED
    area_m2: float = 2.0e-15
    r_c: float = (
        1.0e3  # crystalline + heater resistance at t0, T_ref [Ohm] (NVSim cell: SET 1 kOhm)
    )
    tcr_c: float = 1.5e-3  # temperature coefficient of r_c [1/K]; UNCONFIRMED
    # amorphous low-field resistivity at t0, T_ref [Ohm m], so that R(u_max) = 1 MOhm (NVSim cell);
    # an effective value for the dome geometry. UNCONFIRMED
    rho_a: float = 0.04
    dz_m: float = 7e-9  # Poole-Frenkel inter-trap distance [m]; UNCONFIRMED (5-10 nm)
    ea_ev: float = 0.3  # activation energy of amorphous conduction [eV]; UNCONFIRMED (0.2-0.4)
    r_series: float = 2.0e3  # access device as a series resistance [Ohm]; UNCONFIRMED
    v_th0: float = 0.5  # threshold voltage at zero amorphous thickness [V]; UNCONFIRMED
    e_th: float = 1.0e7  # threshold field [V/m] (10 V/um); UNCONFIRMED (10-50 V/um)
    v_on: float = 0.75  # ON-state holding voltage [V] (Sci. Rep. plateau ~0.8 V)
    r_on: float = 200.0  # ON-state differential resistance [Ohm]; UNCONFIRMED
    i_hold: float = 10e-6  # holding current [A]; UNCONFIRMED
    # thermal
    t_amb_k: float = 300.0  # ambient (and read) temperature [K]
    t_ref_k: float = 300.0  # temperature at which r_c and rho_a are given [K]
    r_th0: float = 3.0e6  # thermal resistance of the crystalline cell [K/W]; UNCONFIRMED
    r_th1: float = 1.0e13  # increase of R_th per amorphous thickness [K/(W m)]; UNCONFIRMED
    c_th: float = 3.0e-16  # thermal capacitance [J/K] (tau_th ~ 1 ns); UNCONFIRMED
    t_melt_k: float = 900.0  # melting temperature of GST [K]; UNCONFIRMED
    u_h: float = 100e-9  # molten extent per unit overheating [m]; UNCONFIRMED
    u_max: float = 50e-9  # largest amorphous thickness (cell) [m]; UNCONFIRMED
    # crystallisation (Eq. 2.2)
    v_g_max: float = 1.0  # peak growth velocity [m/s]; UNCONFIRMED (1-10 m/s)
    t_peak_k: float = 700.0  # temperature of peak growth [K]; UNCONFIRMED (650-750 K)
    sigma_t_k: float = 60.0  # width of the growth window [K]; UNCONFIRMED (50-100 K)
    t_glass_k: float = 380.0  # above this a pulse restarts structural relaxation [K] (P2)
    # drift and noise
    t0_s: float = 1.0  # drift reference time after programming [s]; UNCONFIRMED
    nu_a: float = 0.1  # drift exponent of amorphous GST (Khan et al., 0.07-0.11)
    nu_c: float = 0.007  # drift exponent of the crystalline path; UNCONFIRMED (0.005-0.01)
    ea_drift_ev: float = 1.0  # activation of the drift clock [eV]; UNCONFIRMED
    t_read_s: float = 250e-9  # read duration (sets the 1/f band) [s] (Joshi 2020)
    v_read: float = 0.1  # read voltage [V]
    # 1/f read noise after Joshi 2020 (module docstring); ``noise`` adds its RTN and any
    # extra 1/f coefficient q_flicker (default 0) on top.
    q_s0: float = 0.0088  # Q_s prefactor [-] (Joshi 2020 / aihwkit)
    q_s_exponent: float = 0.65  # exponent of the normalised conductance [-]
    q_s_max: float = 0.2  # saturation of Q_s at low conductance [-]
    g_noise_ref: float | None = None  # g_ref [S]; None: 1 / (r_c + r_series)
    t_noise0_s: float = 20.0  # first read after programming [s] (aihwkit t_0)
    noise: ReadNoise = ReadNoise(q_flicker=0.0)
    # cycle-to-cycle noise (relative, per pulse); UNCONFIRMED
    c2c_growth: float = 0.1
    c2c_melt: float = 0.05
    # pulse shape defaults and numerics
    rise_s: float = 2e-9  # default rise time [s]; UNCONFIRMED
    fall_s: float = 2e-9  # default fall time [s] (abrupt quench, < 10 ns); UNCONFIRMED
    tail_tau: float = 8.0  # cooling tail after the pulse [thermal time constants]
    n_rise: int = eqx.field(default=4, static=True)
    n_settle: int = eqx.field(default=8, static=True)
    settle_tau: float = 4.0  # plateau start resolved finely [thermal time constants]
    n_plateau: int = eqx.field(default=32, static=True)
    n_fall: int = eqx.field(default=32, static=True)
    n_tail: int = eqx.field(default=16, static=True)
    # Halley iterations of the OFF solve per sub-step / per read (see the module docstring)
    n_newton: int = eqx.field(default=2, static=True)
    n_newton_read: int = eqx.field(default=4, static=True)
    v_smooth: float = 5e-3  # width of the threshold blend in ``current`` [V]
    # cells per block in apply_pulse (cache blocking; performance only). None: 131072 on
    # CPU, no blocking on other backends; 0: no blocking.
    block_size: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        for name, unit in (
            ("area_m2", "m^2"),
            ("r_c", "Ohm"),
            ("rho_a", "Ohm m"),
            ("dz_m", "m"),
            ("r_on", "Ohm"),
            ("i_hold", "A"),
            ("t_amb_k", "K"),
            ("t_ref_k", "K"),
            ("r_th0", "K/W"),
            ("c_th", "J/K"),
            ("u_h", "m"),
            ("u_max", "m"),
            ("sigma_t_k", "K"),
            ("t0_s", "s"),
            ("t_read_s", "s"),
            ("v_smooth", "V"),
            ("tail_tau", ""),
            ("settle_tau", ""),
            ("q_s_exponent", ""),
            ("q_s_max", ""),
        ):
            check_positive(name, getattr(self, name), unit)
        check_nonnegative("q_s0", self.q_s0)
        check_nonnegative("t_noise0_s", self.t_noise0_s, "s")
        if self.g_noise_ref is not None:
            check_positive("g_noise_ref", self.g_noise_ref, "S")
        for name, unit in (
            ("tcr_c", "1/K"),
            ("ea_ev", "eV"),
            ("r_series", "Ohm"),
            ("v_th0", "V"),
            ("e_th", "V/m"),
            ("v_on", "V"),
            ("r_th1", "K/(W m)"),
            ("v_g_max", "m/s"),
            ("nu_a", ""),
            ("nu_c", ""),
            ("ea_drift_ev", "eV"),
            ("c2c_growth", ""),
            ("c2c_melt", ""),
            ("rise_s", "s"),
            ("fall_s", "s"),
        ):
            check_nonnegative(name, getattr(self, name), unit)
        check_range("nu_a", self.nu_a, 0.0, 1.0)
        check_range("nu_c", self.nu_c, 0.0, 1.0)
        check_finite("t_melt_k", self.t_melt_k)
        check_finite("t_peak_k", self.t_peak_k)
        check_less("t_amb_k", self.t_amb_k, "t_melt_k", self.t_melt_k, "K")
        check_less("t_peak_k", self.t_peak_k, "t_melt_k", self.t_melt_k, "K")
        check_range("v_read", self.v_read, 0.0, 10.0, lo_open=True, unit="V")
        for name in (
            "n_rise",
            "n_settle",
            "n_plateau",
            "n_fall",
            "n_tail",
            "n_newton",
            "n_newton_read",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.block_size is not None and int(self.block_size) < 0:
            raise ValueError(f"block_size must be >= 0 or None, got {self.block_size}")

    # ---- state -------------------------------------------------------------------------
    def state_defaults(self) -> dict[str, float]:
        """Default: a fresh crystalline (SET) cell, ``u_a = 0``, age 0."""
        return {"u_a": 0.0, "t_s": 0.0}

    def check_state_values(self, values: Mapping[str, object]) -> None:
        if "u_a" in values:
            u_max = (
                np.max(np.asarray(self.u_max))
                if not isinstance(self.u_max, jax.core.Tracer)
                else np.inf
            )
            check_range("u_a", values["u_a"], 0.0, u_max, unit="m")
        if "t_s" in values:
            check_nonnegative("t_s", values["t_s"], "s")

    # ---- material laws -------------------------------------------------------------------
    def _drift_factor(self, t_s, nu):
        """``(max(t, t0) / t0)^nu``: resistances age as a power law after ``t0``;
        ``t_s=None`` is a freshly programmed cell (factor 1)."""
        if t_s is None:
            return 1.0
        return (jnp.maximum(t_s, self.t0_s) / self.t0_s) ** nu

    def _activation(self, temp_k):
        """Arrhenius factor of amorphous conduction, ``exp(-Ea/k (1/T - 1/T_ref))`` (1 at
        ``T_ref``; the exponent is bounded below by ``-EXP_ARG_MAX``)."""
        z = self.ea_ev / K_B_EV * (1.0 / self.t_ref_k - 1.0 / temp_k)
        return jnp.exp(jnp.maximum(z, -EXP_ARG_MAX))

    def _rho_a(self, temp_k, t_s):
        """Amorphous resistivity [Ohm m] at temperature ``temp_k`` and age ``t_s``."""
        return self.rho_a * self._drift_factor(t_s, self.nu_a) / self._activation(temp_k)

    def _r_c(self, temp_k, t_s):
        """Crystalline + heater resistance [Ohm] (positive TCR, slow drift)."""
        tcr = 1.0 + self.tcr_c * (temp_k - self.t_ref_k)
        return self.r_c * tcr * self._drift_factor(t_s, self.nu_c)

    def r_th(self, u_a: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Thermal resistance [K/W] for amorphous thickness ``u_a`` [m]."""
        return self.r_th0 + self.r_th1 * u_a

    def melt_extent(self, temp_k: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Molten thickness [m] at interface temperature ``temp_k`` (0 below melting,
        bounded by ``u_max``)."""
        # u_h ((T - T_amb) / (T_melt - T_amb) - 1), one multiply per call
        slope = self.u_h / (self.t_melt_k - self.t_amb_k)
        return jnp.clip(slope * (temp_k - self.t_melt_k), 0.0, self.u_max)

    def growth_velocity(self, temp_k: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Crystal growth velocity [m/s] (Eq. 2.2), zero at and above melting."""
        d = temp_k - self.t_peak_k
        v = self.v_g_max * jnp.exp((-0.5 / self.sigma_t_k**2) * (d * d))
        return jnp.where(temp_k < self.t_melt_k, v, 0.0)

    def threshold_voltage(self, u_a: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Threshold voltage of the amorphous region [V]: ``V_th0 + E_th u_a``."""
        return self.v_th0 + self.e_th * u_a

    def read_resistance(self, state: PCMState) -> Float[Array, "*shape"]:
        """Low-field resistance of the cell alone [Ohm] (no access device) at ambient
        temperature and the state's age: ``r_c(t) + rho_a(t) u_a / A``."""
        t = self.t_amb_k
        return self._r_c(t, state.t_s) + self._rho_a(t, state.t_s) * state.u_a / self.area_m2

    # ---- electrical solve ------------------------------------------------------------------
    def _off_branch(self, v_abs, u_s, temp_k, t_s, n_iter):
        """OFF-state operating point for ``v_abs >= 0``: returns ``(I, V_a, r_c)``.

        Solves ``v = I R + V_a``, ``I = I0 sinh(V_a / V0)`` with ``R = r_c + r_series``
        (:func:`solve_linear_sinh`, ``n_iter`` Halley iterations). ``t_s=None``: a
        freshly programmed cell (no drift), as inside a pulse."""
        kt_q = K_B_EV * temp_k
        rc = self._r_c(temp_k, t_s)
        r = rc + self.r_series
        v0 = (2.0 / self.dz_m) * kt_q * (u_s + U_GUARD)
        # I0 = 2 kT A / (q dz rho_a(T, t)), written without dividing by rho_a(T)
        i0 = (2.0 * self.area_m2 / (self.dz_m * self.rho_a)) * kt_q * self._activation(temp_k)
        if t_s is not None:
            i0 = i0 / self._drift_factor(t_s, self.nu_a)
        va = v0 * solve_linear_sinh(v_abs, v0, r * i0, n_iter)
        # KCL through the linear part: exact for the returned V_a, and I >= 0.
        return (v_abs - va) / r, va, rc

    def _on_current(self, v_abs):
        """Current [A] of the threshold-switched (ON) branch."""
        return (v_abs - self.v_on) / (self.r_on + self.r_series)

    def current(self, state: PCMState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Quasi-static current [A] for applied voltage ``v`` [V] over cell + ``r_series``.

        Below threshold: the Poole-Frenkel OFF branch (nonlinear read I-V). Where the
        amorphous voltage exceeds ``V_th(u_a)`` the cell is on the ON branch
        ``V_cell = V_ON + R_ON I`` (no hysteresis here; see :meth:`apply_pulse`), blended
        with a logistic step of width ``v_smooth``. Odd in ``v`` (unipolar cell)."""
        # Arrays, not Python floats, so that new values do not recompile.
        v = check_voltage("PCM.current", v, dtype=jnp.result_type(float))
        return _read_current(self, state, v)

    def _static_current(self, state, v):
        v = jnp.asarray(v, jnp.result_type(float))
        v_abs = jnp.abs(v)
        temp = jnp.asarray(self.t_amb_k, v.dtype)
        i_off, va, _ = self._off_branch(v_abs, state.u_a, temp, state.t_s, self.n_newton_read)
        w = smooth_step(va - self.threshold_voltage(state.u_a), self.v_smooth)
        i_on = jnp.maximum(self._on_current(v_abs) - i_off, 0.0)
        return jnp.sign(v) * (i_off + w * i_on)

    def cell_voltage(self, state: PCMState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Voltage [V] across the cell (``v - r_series I``) for applied ``v`` [V]."""
        return v - self.r_series * self.current(state, v)

    # ---- pulses ----------------------------------------------------------------------------
    def _substep(self, carry, v, dt, inv_dt, inv_dt_prev, g_scale, m_scale):
        """One sub-step of length ``dt`` at applied voltage ``v`` (``None``: no voltage,
        hence no current). ``inv_dt`` / ``inv_dt_prev`` are ``1 / dt`` of this and of the
        previous sub-step (0 where the step is 0)."""
        u_a, temp, on, t_peak, u_prev = carry
        rate = (u_prev - u_a) * inv_dt_prev  # growth rate of the previous sub-step
        if v is None:
            power = 0.0
        else:
            u_s = jnp.maximum(u_a - self.melt_extent(temp) * m_scale, 0.0)
            # Electrical: inside a pulse the cell counts as freshly programmed (no drift).
            i_off, va, _ = self._off_branch(v, u_s, temp, None, self.n_newton)
            i_lin = self._on_current(v)
            switch = (va >= self.threshold_voltage(u_s)) | (temp >= self.t_melt_k)
            on = switch | (on & (i_lin >= self.i_hold))
            i = jnp.where(on, jnp.maximum(i_lin, i_off), i_off)
            power = i * (v - self.r_series * i)
        # Thermal: exact exponential step for this sub-step's power; R_th at the
        # mid-step thickness extrapolated from the last growth rate (second order).
        u_mid = jnp.maximum(u_a - 0.5 * rate * dt, 0.0)
        rth = self.r_th(u_mid)
        tau = rth * self.c_th
        t_ss = self.t_amb_k + power * rth
        decay_m1 = jnp.expm1(-dt / tau)  # exp(-dt / tau) - 1, accurate for dt << tau
        temp_new = temp + (temp - t_ss) * decay_m1
        # Step-averaged temperature of the exponential relaxation (second-order growth).
        w = jnp.where(dt > 0, -decay_m1 * tau * inv_dt, 1.0)
        temp_avg = t_ss + (temp - t_ss) * w
        grow = self.growth_velocity(temp_avg) * g_scale * dt
        u_melt = self.melt_extent(temp_new) * m_scale
        u_new = jnp.clip(jnp.maximum(u_a - grow, u_melt), 0.0, self.u_max)
        return u_new, temp_new, on, jnp.maximum(t_peak, temp_new), u_a

    def _pulse_grid(self):
        """Static layout of the powered sub-steps (rise, settle, plateau, fall): voltage
        fraction at each sub-step midpoint and segment index. The cooling tail follows."""
        fr = [(k + 0.5) / self.n_rise for k in range(self.n_rise)]
        fr += [1.0] * (self.n_settle + self.n_plateau)
        fr += [1.0 - (k + 0.5) / self.n_fall for k in range(self.n_fall)]
        seg = [0] * self.n_rise + [1] * self.n_settle + [2] * self.n_plateau + [3] * self.n_fall
        return np.asarray(fr), np.asarray(seg, dtype=np.int32)

    @property
    def n_substeps(self) -> int:
        """Sub-steps per pulse (rise + plateau + fall + cooling tail)."""
        return self.n_rise + self.n_settle + self.n_plateau + self.n_fall + self.n_tail

    def _segment_steps(self, rise, width, fall):
        """Sub-step lengths [s] of the five segments (rise, settle, plateau, fall, tail).

        The first ``settle_tau`` thermal time constants of the plateau (where the
        temperature jumps and may sweep the growth window) get their own fine steps."""
        tau = self.r_th(self.u_max) * self.c_th
        settle = jnp.minimum(width, self.settle_tau * tau)
        return (
            rise / self.n_rise,
            settle / self.n_settle,
            (width - settle) / self.n_plateau,
            fall / self.n_fall,
            self.tail_tau * tau / self.n_tail,
        )

    def apply_pulse(
        self,
        state: PCMState,
        v: Float[Array, "*shape"],
        width_s: Float[Array, "*shape"],
        key: PRNGKeyArray | None = None,
        *,
        rise_s: float | Array | None = None,
        fall_s: float | Array | None = None,
    ) -> PCMState:
        """State after a trapezoidal pulse of amplitude ``v`` [V] (sign ignored: PCM is
        unipolar), plateau ``width_s`` [s], edges ``rise_s`` / ``fall_s`` [s] (defaults:
        the fields of the same name), followed by cooling to ambient.

        ``key`` draws cycle-to-cycle noise (lognormal factors ``c2c_growth`` on the growth
        velocity and ``c2c_melt`` on the molten extent, one per device and pulse);
        ``None`` is the deterministic model. A pulse that heats the cell above
        ``t_glass_k`` restarts the drift clock (``t_s = 0``)."""
        u_a, t_peak = _run_pulse(self, state, *self._pulse_args(v, width_s, rise_s, fall_s), key)
        t_s = jnp.where(t_peak >= self.t_glass_k, 0.0, jnp.broadcast_to(state.t_s, u_a.shape))
        return PCMState(u_a=u_a, t_s=t_s)

    def peak_temperature(
        self, state: PCMState, v, width_s, *, rise_s=None, fall_s=None
    ) -> Float[Array, "*shape"]:
        """Highest interface temperature [K] reached during the pulse (deterministic)."""
        return _run_pulse(self, state, *self._pulse_args(v, width_s, rise_s, fall_s), None)[1]

    def _pulse_args(self, v, width_s, rise_s, fall_s):
        dtype = jnp.result_type(float)
        where = "PCM.apply_pulse"
        v, width_s = check_pulse(where, v, width_s, dtype)
        try:
            jnp.broadcast_shapes(jnp.shape(v), jnp.shape(width_s))
        except ValueError:
            raise ValueError(f"{where}: v and width_s do not broadcast together") from None
        rise = self.rise_s if rise_s is None else check_time(where, rise_s, "rise_s", dtype)
        fall = self.fall_s if fall_s is None else check_time(where, fall_s, "fall_s", dtype)
        return tuple(jnp.asarray(x, dtype) for x in (v, width_s, rise, fall))

    def _integrate_pulse(self, state, v, width, rise, fall, key):
        """All sub-steps of one pulse; returns ``(u_a, peak temperature)``."""
        dtype = jnp.result_type(float)
        params, static = eqx.partition(self, eqx.is_array)
        shape = jnp.broadcast_shapes(
            state.u_a.shape,
            v.shape,
            width.shape,
            rise.shape,
            fall.shape,
            *(jnp.shape(x) for x in jax.tree.leaves(params)),
        )
        if key is None:
            g_scale = m_scale = 1.0
        else:
            kg, km = jax.random.split(key)
            g_scale = jnp.exp(self.c2c_growth * jax.random.normal(kg, shape, dtype))
            m_scale = jnp.exp(self.c2c_melt * jax.random.normal(km, shape, dtype))
        args = {
            "u_a": jnp.broadcast_to(state.u_a, shape).astype(dtype),
            "v_amp": jnp.abs(v),
            "dts": self._segment_steps(rise, width, fall),
            "g_scale": g_scale,
            "m_scale": m_scale,
        }
        block = self.block_size
        if block is None:
            block = 131072 if jax.default_backend() == "cpu" else 0

        def run(cells):
            # Per-cell parameters (device-to-device spread) are cut into blocks too.
            params, args = cells
            return eqx.combine(params, static)._integrate_cells(**args)

        return _map_cells(run, (params, args), shape, block)

    def _integrate_cells(self, u_a, v_amp, dts, g_scale, m_scale):
        """Scan the sub-steps of the pulse and of the cooling tail over cells ``u_a``
        (1-D); parameters and the other arguments broadcast against ``u_a``."""
        dtype = u_a.dtype
        dts = jnp.stack(jnp.broadcast_arrays(*(jnp.asarray(dt, dtype) for dt in dts)))
        inv_dts = jnp.where(dts > 0, 1.0 / jnp.where(dts > 0, dts, 1.0), 0.0)
        temp0 = jnp.zeros_like(u_a) + self.t_amb_k
        # The carry holds u_a of the previous sub-step (for the growth rate), not the rate.
        carry = (u_a, temp0, jnp.zeros(u_a.shape, bool), temp0, u_a)

        def powered(c, xs):
            frac, k, k_prev = xs
            dt = (dts[k], inv_dts[k], inv_dts[k_prev])
            return self._substep(c, v_amp * frac, *dt, g_scale, m_scale), None

        def cooling(c, k_prev):
            # No applied voltage, no current: only the thermal and growth updates.
            dt = (dts[4], inv_dts[4], inv_dts[k_prev])
            return self._substep(c, None, *dt, g_scale, m_scale), None

        frac, seg = self._pulse_grid()
        prev = np.concatenate([seg[:1], seg[:-1]])
        carry, _ = jax.lax.scan(powered, carry, (jnp.asarray(frac, dtype), seg, prev))
        tail_prev = np.asarray([seg[-1]] + [4] * (self.n_tail - 1), np.int32)
        carry, _ = jax.lax.scan(cooling, carry, tail_prev)
        u_a, _, _, t_peak, _ = carry
        return u_a, t_peak

    # ---- time evolution at rest ------------------------------------------------------------
    def drift(self, state: PCMState, t_s) -> PCMState:
        """State after resting ``t_s`` [s] at ``t_amb_k``: the drift clock advances by
        ``t_s exp(-Ea_drift / k (1 / T_amb - 1 / T_ref))`` (faster when hot)."""
        t_s = check_time("PCM.drift", t_s)
        rate = jnp.exp(-self.ea_drift_ev / K_B_EV * (1.0 / self.t_amb_k - 1.0 / self.t_ref_k))
        return PCMState(u_a=state.u_a, t_s=state.t_s + jnp.asarray(t_s) * rate)

    def read_noise(
        self, state: PCMState, key: PRNGKeyArray, v_read: float | Array | None = None
    ) -> Float[Array, "*shape"]:
        """One noisy conductance read [S]: Gaussian 1/f noise with ``sigma = G
        relative_noise(state)`` (module docstring) times the RTN factor of ``noise``."""
        g = self.conductance(state, v_read)
        k_f, k_r = jax.random.split(key)
        noisy = g + g * self.relative_noise(state) * jax.random.normal(k_f, g.shape, g.dtype)
        s = jax.random.bernoulli(k_r, self.noise.p_high, g.shape).astype(g.dtype)
        return noisy * (1.0 + self.noise.rtn_amplitude * s)

    def read_noise_moments(self, state: PCMState, v_read: float | Array | None = None):
        """Mean and variance of :meth:`read_noise`: Gaussian, ``sigma = G
        relative_noise``, when the RTN amplitude is 0 (else ``None``)."""
        g = self.conductance(state, v_read)
        return self.noise.moments(g, g * self.relative_noise(state))

    def q_s(self, g_prog: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """1/f amplitude ``Q_s`` [-] for the programmed conductance ``g_prog`` [S]:
        ``min(q_s0 / max((g_prog / g_ref)^q_s_exponent, 1e-3), q_s_max)``."""
        g_ref = self.g_noise_ref
        if g_ref is None:
            g_ref = 1.0 / (self.r_c + self.r_series)
        g = jnp.abs(g_prog) / g_ref
        return jnp.minimum(self.q_s0 / jnp.maximum(g**self.q_s_exponent, 1e-3), self.q_s_max)

    def relative_noise(self, state: PCMState) -> Float[Array, "*shape"]:
        """``sigma_G / G`` of one read at the state's age (1/f part, module docstring):
        ``sqrt((Q_s(G_prog)^2 + q_flicker) ln((t + t_n0 + t_read) / (2 t_read)))``."""
        fresh = PCMState(u_a=state.u_a, t_s=jnp.zeros_like(state.t_s))
        q = self.q_s(self.conductance(fresh))
        t = jnp.maximum(state.t_s, 0.0) + self.t_noise0_s + self.t_read_s
        band = jnp.log(jnp.maximum(t / (2.0 * self.t_read_s), 1.0))
        return jnp.sqrt((q * q + self.noise.q_flicker) * band)


def _map_cells(fn, cells, shape, block):
    """``fn(cells)`` for an elementwise ``fn`` of a pytree of per-cell arrays, evaluated
    on cells flattened to 1-D and, if there are more than ``block`` (> 0), block by
    block under ``lax.map`` so that a long loop inside ``fn`` works on data in cache.

    Leaves of ``cells`` broadcast to ``shape``; 0-d leaves are passed as they are.
    ``fn`` returns a pytree of 1-D arrays; the result has them in ``shape``."""
    n = math.prod(shape)
    leaves, treedef = jax.tree.flatten(cells)
    per_cell = [jnp.ndim(x) > 0 for x in leaves]
    leaves = [
        jnp.broadcast_to(x, shape).reshape(n) if pc else x
        for x, pc in zip(leaves, per_cell, strict=True)
    ]
    if not block or n <= block:
        out = fn(jax.tree.unflatten(treedef, leaves))
        return jax.tree.map(lambda y: y.reshape(shape), out)
    n_blocks = -(-n // block)
    pad = n_blocks * block - n
    blocked = [
        jnp.pad(x, (0, pad), mode="edge").reshape(n_blocks, block)
        for x, pc in zip(leaves, per_cell, strict=True)
        if pc
    ]

    def one_block(xs):
        it = iter(xs)
        args = [next(it) if pc else x for x, pc in zip(leaves, per_cell, strict=True)]
        return fn(jax.tree.unflatten(treedef, args))

    out = jax.lax.map(one_block, blocked)
    return jax.tree.map(lambda y: y.reshape(n_blocks * block)[:n].reshape(shape), out)


@eqx.filter_jit
def _read_current(model, state, v):
    return model._static_current(state, v)


@eqx.filter_jit
def _run_pulse(model, state, v, width, rise, fall, key):
    # Compiled once per model/shape: eager lax.scan would re-trace on every call.
    return model._integrate_pulse(state, v, width, rise, fall, key)


__all__ = ["PCM", "PCMState"]
