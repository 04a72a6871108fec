"""Stanford-PKU filamentary RRAM: the tunnelling-gap compact model (v1.0.0).

Source: Z. Jiang, H.-S. P. Wong et al., "Stanford University Resistive-Switching
Random Access Memory (RRAM) Verilog-A Model", nanoHUB doi:10.4231/D37H1DN48 (2014),
v1.0.0 (``rram_v_1_0_0.va``); journal form: Z. Jiang et al., IEEE TED 63(5), 2016;
variation model: X. Guan, S. Yu, H.-S. P. Wong, IEEE EDL 33(10), 2012. Equations
and defaults of the v1.0.0 Verilog-A (equation numbers 1.1-1.4 below are ours). State: the gap ``g`` [m] between the filament tip and the top
electrode, bounded by ``[gap_min, gap_max]``::

    I  = I0 exp(-g / g0) sinh(V / V0)                                        (1.1)
    T  = T0 + |V I| R_th                                                     (1.2)
    gamma = gamma_ini - beta (g / 1 nm)^3,  gamma_ini = gamma0 (V >= 0), 16 (V < 0)
    gate  = [gamma |V| / t_ox >= F_min]                                      (1.3)
    dg/dt = -v0 exp(-q Ea / kT) sinh(gamma a0 q V / (t_ox kT)) gate          (1.4)
            + stochastic term (below)

Positive ``V`` (top electrode positive) shrinks the gap: SET to the low-resistance
state. ``V`` in (1.1)-(1.4) is the voltage across the cell; with the optional access
element (a 1T1R transistor: series resistance ``r_series`` and SET compliance
``i_compliance``) the applied voltage divides, see :meth:`StanfordPKU.cell_voltage`.

Numerics (choices of this implementation, not of the source):

* The hard ``F_min`` gate is a logistic step of width ``f_smooth`` [V/m] (as in the
  smoothed Granada fork, Maldonado et al., J. Appl. Phys. 130, 2021), so gradients
  exist; the threshold voltage is resolved to ~0.3 mV.
* Rates are handled as logarithms (``ln sinh`` and ``log_sigmoid``), so nothing
  overflows; ``|dg/dt|`` is bounded to ``[1e-30, 1e10]`` m/s (the upper bound is far
  above any physical ion velocity; the lower one is "does not move").
* Integration: for a rectangular pulse the cell voltage is constant, and ``T`` is the
  quasi-static Joule temperature of the present gap (no thermal capacitance in the
  source), so ``dg/dt = R(g)`` is an autonomous 1-D ODE. :meth:`StanfordPKU.apply_pulse`
  therefore steps in the *gap* (a fixed number ``n_substeps`` of steps of at most
  ``dg = 1.25 (gap_max - gap_min) / n_substeps``) and integrates the time taken
  exactly for a rate that is exponential in ``g`` across each step (log-mean of
  ``1/R`` at both ends, second order in general). The pulse ends inside a step via
  the matching closed form ``u(t) = ln(1 + k R t) / k``. This converges to the source's
  explicit Euler with the previous step's current as both
  steps go to zero, is free of the Euler time-step limit of the stiff sinh/Arrhenius
  rate, and its cost does not depend on the pulse width. T at each node uses the
  current at that gap (the explicit coupling of the source, evaluated on the node).
* Stochastic gap term: the source adds ``xi dg0 dt`` with ``xi ~ N(0, 1)`` redrawn each
  (1 ns) solver step, which depends on the step. Here it is a Wiener increment
  ``dg_noise = sigma_g sqrt(dt / tau_ref) N(0, 1) / (1 + exp((T_crit - T) / T_smth))``
  with ``sigma_g = delta_gap0 * tau_ref`` (equal to the source at ``dt = tau_ref = 1
  ns``). Drift and noise act together over every interval: with a key the pulse is cut
  into ``n_noise_steps`` equal intervals; each starts with the Wiener increment of its
  length (gated by the temperature at its start) and is then integrated
  deterministically by the gap steps above, so the restoring drift acts after every
  increment (a SET held at the bound stays there instead of keeping the un-restored
  noise of the remaining time). The gap is reflected at ``gap_min`` / ``gap_max`` (a
  Brownian path reflected by the oxide walls: exact for a free increment). One pulse of
  width ``w`` and ``k`` pulses of ``w / k`` then give the same distribution (contract
  test, KS on 2000 devices, k = 10, 100); the remaining splitting bias of the default 64
  intervals is ~3 % of the spread (partial RESET, -1.3 V, 100 ns). The noisy path costs
  ``n_substeps + noise_step_budget * n_noise_steps`` gap steps, independent of the
  width; without a key (the deterministic "standard" model) it is ``n_substeps``.
* Precision: float32 and float64 alike; float32 agrees with float64 within 1e-5
  (relative) for conductances, currents and gaps after pulses (tests).
* Retention (:meth:`StanfordPKU.drift`): an UNCONFIRMED model choice (the source has
  no zero-bias relaxation): the gap relaxes towards ``gap_max`` (HRS) as
  ``g_max - (g_max - g) exp(-t / tau)``, ``tau = tau0 exp(Ea_ret / kT)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import Device, standard_read_noise, standard_read_noise_moments
from ._checks import (
    check_less,
    check_nonnegative,
    check_positive,
    check_pulse,
    check_range,
    check_time,
    check_voltage,
)
from ._math import safe_exp, safe_sinh, safe_sqrt
from ._series import SinhLaw, device_voltage
from .constants import K_B, Q_E
from .noise import ReadNoise

GAMMA_RESET = 16.0  # RESET field-enhancement factor, hard-coded in rram_v_1_0_0.va
NM = 1e-9
# Bounds of |dg/dt| [m/s] as logarithms (see module docstring).
LN_RATE_MIN = float(np.log(1e-30))
LN_RATE_MAX = float(np.log(1e10))
# Largest change of ln|dg/dt| accepted across one gap step (step-length control).
Y_MAX = 2.0


class RRAMState(eqx.Module):
    """State of a Stanford-PKU cell: ``gap`` [m], the tunnelling gap (array)."""

    gap: Float[Array, "*shape"]


class StanfordPKU(Device):
    """Stanford-PKU v1.0.0 filamentary RRAM gap model (see the module docstring).

    Source: Jiang & Wong, nanoHUB doi:10.4231/D37H1DN48 (2014), Eqs. (1.1)-(1.4) of the
    module docstring; defaults are those of the v1.0.0 Verilog-A.

    Fields (SI units; energies in eV):
        i0, g0, v0: current prefactor [A], gap decay length [m], I-V voltage [V].
        vel0: gap velocity prefactor [m/s] (source ``Vel0``).
        beta, gamma0: field-enhancement ``gamma = gamma0 - beta (g/1nm)^3`` (SET);
            RESET uses ``gamma_ini = 16`` (hard-coded in the source).
        ea: activation energy [eV]; a0: hopping distance [m]; tox: oxide thickness [m].
        f_min: minimum field for gap motion [V/m]; f_smooth: width of its smooth gate
            [V/m] (numerical choice, UNCONFIRMED).
        t0: ambient temperature [K]; r_th: thermal resistance [K/W].
        gap_min, gap_max: bounds of the gap [m]; gap_ini: default initial gap [m].
        delta_gap0: noise amplitude [m/s] (source ``deltaGap0``); tau_ref [s]: step
            at which the Wiener noise equals the source's per-step noise.
        t_crit, t_smth: temperature onset and smoothing of the noise [K].
        r_series: series resistance of the access element [Ohm] (0: none).
        i_compliance: SET current compliance [A] of the access transistor (None: none).
            Applies to ``V > 0`` only: in RESET the 1T1R gate is overdriven.
        compliance_knee: sharpness ``n`` of ``I = I_R / (1 + (I_R/I_cc)^n)^(1/n)``.
        ea_retention [eV], tau0_retention [s]: zero-bias gap relaxation (UNCONFIRMED).
        v_read: default read voltage [V]; noise: read noise (:class:`ReadNoise`).
        n_substeps: gap steps per pulse (static); n_newton: Halley iterations of the
            series-resistance solve (static; 3 reach rounding).
        n_noise_steps: noise intervals per pulse with a key (static);
            noise_step_budget: scan steps per interval allowed (static);
            noise_h_factor: largest gap step of the noisy path in units of the
            deterministic one (static; the Y_MAX control still limits it).
    """

    i0: float = 1000e-6
    g0: float = 0.25e-9
    v0: float = 0.25
    vel0: float = 10.0
    beta: float = 0.8
    gamma0: float = 16.0
    ea: float = 0.6
    a0: float = 0.25e-9
    tox: float = 12e-9
    f_min: float = 1.4e9
    # UNCONFIRMED numerical gate width: 0.02 % of F_min, i.e. ~0.3 mV of threshold voltage;
    # wider gates let the gap creep below V_th in slow DC sweeps (the DC-sweep switching
    # voltages move by > 2 % at 0.5 %).
    f_smooth: float = 2.8e5
    t0: float = 298.0
    r_th: float = 2.1e3
    gap_min: float = 2e-10
    gap_max: float = 17e-10
    gap_ini: float = 2e-10
    delta_gap0: float = 0.02
    tau_ref: float = 1e-9
    t_crit: float = 450.0
    t_smth: float = 500.0
    r_series: float = 0.0
    i_compliance: float | None = None
    compliance_knee: float = 8.0  # UNCONFIRMED: sharpness of the transistor saturation
    # UNCONFIRMED retention model: Ea in the 1-2 eV range quoted for RRAM retention,
    # attempt time 1e-13 s; gives tau(85 C) ~ 100 years (LRS conductance halves after
    # ~12 years at 85 C).
    ea_retention: float = 1.6
    tau0_retention: float = 1e-13
    v_read: float = 0.1
    noise: ReadNoise = eqx.field(default_factory=ReadNoise)
    n_substeps: int = eqx.field(default=128, static=True)
    n_newton: int = eqx.field(default=3, static=True)
    n_noise_steps: int = eqx.field(default=64, static=True)
    noise_step_budget: int = eqx.field(default=4, static=True)
    noise_h_factor: float = eqx.field(default=4.0, static=True)

    State: ClassVar[type] = RRAMState

    def __check_init__(self):
        for name, unit in [
            ("i0", "A"),
            ("g0", "m"),
            ("v0", "V"),
            ("vel0", "m/s"),
            ("gamma0", ""),
            ("ea", "eV"),
            ("a0", "m"),
            ("tox", "m"),
            ("f_min", "V/m"),
            ("f_smooth", "V/m"),
            ("t0", "K"),
            ("gap_min", "m"),
            ("gap_max", "m"),
            ("tau_ref", "s"),
            ("t_crit", "K"),
            ("t_smth", "K"),
            ("compliance_knee", ""),
            ("ea_retention", "eV"),
            ("tau0_retention", "s"),
        ]:
            check_positive(name, getattr(self, name), unit)
        for name, unit in [("beta", ""), ("r_th", "K/W"), ("delta_gap0", "m/s")]:
            check_nonnegative(name, getattr(self, name), unit)
        check_nonnegative("r_series", self.r_series, "Ohm")
        if self.i_compliance is not None:
            check_positive("i_compliance", self.i_compliance, "A")
        check_range("v_read", self.v_read, 0.0, 10.0, lo_open=True, unit="V")
        check_less("gap_min", self.gap_min, "gap_max", self.gap_max, "m")
        check_range("gap_ini", self.gap_ini, self.gap_min, self.gap_max, unit="m")
        if not (isinstance(self.n_substeps, int) and self.n_substeps >= 2):
            raise ValueError(f"n_substeps must be an int >= 2, got {self.n_substeps!r}")
        if not (isinstance(self.n_newton, int) and self.n_newton >= 1):
            raise ValueError(f"n_newton must be an int >= 1, got {self.n_newton!r}")

    # ---- state -------------------------------------------------------------------
    def state_defaults(self) -> dict[str, float]:
        """Default state: ``gap = gap_ini`` (0.2 nm, LRS, as in the source)."""
        return {"gap": self.gap_ini}

    def check_state_values(self, values: Mapping[str, object]) -> None:
        if "gap" in values:
            # Bounds may be traced (parameters under jit/vmap): then nothing is checked
            # here.  A relative slack lets rounded literals like 1.7 * 1e-9 pass.
            check_range(
                "gap",
                values["gap"],
                _scaled(self.gap_min, 1 - 1e-6),
                _scaled(self.gap_max, 1 + 1e-6),
                unit="m",
            )

    # ---- electrical ------------------------------------------------------------------
    @property
    def _has_series(self) -> bool:
        r = self.r_series
        return not (isinstance(r, (int, float)) and r == 0.0)

    @property
    def _has_compliance(self) -> bool:
        return self.i_compliance is not None and not (
            isinstance(self.i_compliance, (int, float)) and np.isinf(self.i_compliance)
        )

    def _series_vc(self, ig, v):
        """Cell voltage of the cell in series with ``r_series``: the root of
        ``Phi(Vc) = Vc + R_s I_g sinh(Vc / V0) - V = 0``.

        The series solve of :mod:`xbar.devices._series` with the sinh law
        ``I_g sinh(Vc / V0)``: ``n_newton`` Halley iterations on ``|V|`` from an upper
        bound, never overflowing (3 reach rounding, 1e-13 V, over ``|V| <= 4 V`` and
        ``R_s I_g`` from 1e-7 to 1e3 V, against bisection), then one Newton step that
        carries the exact implicit derivative ``dVc = -(dPhi) / Phi'`` (also at
        ``V = 0``)."""
        law = SinhLaw(ig, self.v0)
        return device_voltage(law, v, self.r_series, halley_steps=self.n_newton)

    def _comply(self, i_r, v):
        """SET compliance: ``I = I_R / (1 + (|I_R| / I_cc)^n)^(1/n)`` for ``V > 0``.

        A smooth saturating transistor (linear region = the resistive load line,
        saturation at ``I_cc``); keeps the sign of ``I_R`` exactly (passive, I(0) = 0)."""
        n = self.compliance_knee
        r = jnp.abs(i_r) / self.i_compliance
        lo = jnp.minimum(r, 1.0)
        hi = jnp.maximum(r, 1.0)
        # I_R (1 + r^n)^(-1/n), written as sign(I_R) I_cc (1 + r^-n)^(-1/n) for r > 1 so
        # that no power overflows.
        i = jnp.where(
            r <= 1.0,
            i_r * (1.0 + lo**n) ** (-1.0 / n),
            jnp.sign(i_r) * self.i_compliance * (1.0 + hi ** (-n)) ** (-1.0 / n),
        )
        return jnp.where(v > 0, i, i_r)

    def operating_point(self, gap, v):
        """``(V_cell, I)``: cell voltage [V] and current [A] at applied voltage ``v`` [V]
        and gap ``gap`` [m], including the access element (series R, compliance)."""
        ig = self.i0 * jnp.exp(-gap / self.g0)
        vc = self._series_vc(ig, v) if self._has_series else v
        i = ig * safe_sinh(vc / self.v0)
        if self._has_compliance:
            i = self._comply(i, v)
            vc = jnp.where(v > 0, self.v0 * jnp.arcsinh(i / ig), vc)
        return vc, i

    def current(self, state: RRAMState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Terminal current [A] at applied voltage ``v`` [V], Eq. (1.1) with the access
        element (``r_series``, ``i_compliance``) when set. ``I(0) = 0``; ``I V >= 0``."""
        return self.operating_point(state.gap, check_voltage("StanfordPKU.current", v))[1]

    def cell_voltage(self, state: RRAMState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Voltage [V] across the RRAM cell itself for applied voltage ``v`` [V]."""
        return self.operating_point(state.gap, jnp.asarray(v))[0]

    def temperature(self, state: RRAMState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Local filament temperature [K] at applied ``v`` [V], Eq. (1.2)."""
        vc, i = self.operating_point(state.gap, jnp.asarray(v))
        return self.t0 + jnp.abs(vc * i) * self.r_th

    def threshold_voltage(self, gap: Float[Array, "*shape"], polarity: int = 1):
        """Cell voltage [V] at which the ``F_min`` gate opens, ``F_min t_ox / gamma``
        (``polarity`` +1: SET, ``gamma_ini = gamma0``; -1: RESET, ``gamma_ini = 16``)."""
        g_ini = self.gamma0 if polarity > 0 else GAMMA_RESET
        return self.f_min * self.tox / (g_ini - self.beta * (jnp.asarray(gap) / NM) ** 3)

    # ---- dynamics -----------------------------------------------------------------
    def _log_rate(self, g, v, sinh_v=None):
        """``(ln |dg/dt|, T)`` of the deterministic gap velocity at gap ``g``, applied ``v``.

        ``sinh_v``: ``sinh(v / V0)`` precomputed once per pulse (plain cell only)."""
        if sinh_v is None:
            vc, i = self.operating_point(g, v)
        else:
            vc, i = v, self.i0 * jnp.exp(-g / self.g0) * sinh_v
        temp = self.t0 + jnp.abs(vc * i) * self.r_th
        inv_vt = (Q_E / K_B) / temp  # 1 / thermal voltage [1/V]
        gamma_ini = jnp.where(vc >= 0, self.gamma0, GAMMA_RESET)
        gamma = gamma_ini - self.beta * (g / NM) ** 3
        field = gamma * jnp.abs(vc) / self.tox
        arg = jnp.maximum(field * self.a0 * inv_vt, 1e-30)
        z = (field - self.f_min) / self.f_smooth
        # ln sinh(arg) + log_sigmoid(z) with one log: arg - ln 2 + min(z, 0)
        # + ln[(1 - exp(-2 arg)) / (1 + exp(-|z|))]  (fewer transcendentals per sub-step).
        ln_rate = (
            jnp.log(self.vel0)
            - self.ea * inv_vt
            + arg
            - np.log(2.0)
            + jnp.minimum(z, 0.0)
            + jnp.log(-jnp.expm1(-2.0 * arg) / (1.0 + jnp.exp(-jnp.abs(z))))
        )
        return jnp.clip(ln_rate, LN_RATE_MIN, LN_RATE_MAX), temp

    def gap_velocity(self, state: RRAMState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Deterministic ``dg/dt`` [m/s] at applied voltage ``v`` [V], Eq. (1.4)."""
        v = jnp.asarray(v)
        ln_rate, _ = self._log_rate(state.gap, v)
        return -jnp.sign(v) * jnp.exp(ln_rate) * (v != 0)

    def apply_pulse(
        self,
        state: RRAMState,
        v: Float[Array, "*shape"],
        width_s: Float[Array, "*shape"],
        key: PRNGKeyArray | None = None,
    ) -> RRAMState:
        """State after a rectangular pulse of ``v`` [V] (applied, >0 = SET) for
        ``width_s`` [s]. ``key``: cycle-to-cycle noise (None: deterministic).

        Integration in ``n_substeps`` gap steps (module docstring); all steps are
        fused in one ``lax.scan``. The gap stays in ``[gap_min, gap_max]``. Compiled
        once per model configuration and shapes (``eqx.filter_jit``), so eager calls
        in a Python loop do not recompile."""
        v, width_s = check_pulse("StanfordPKU.apply_pulse", v, width_s, shape=jnp.shape(state.gap))
        return _apply_pulse_jit(self, state, v, width_s, key)

    def _apply_pulse(self, state, v, width_s, key):
        # Compute in the state's precision (float32 states stay float32 under x64).
        g = jnp.asarray(state.gap)
        dtype = g.dtype if jnp.issubdtype(g.dtype, jnp.floating) else jnp.result_type(float)
        v = jnp.asarray(v, dtype)
        width = jnp.asarray(width_s, dtype)
        # The bounds are the physics (the oxide); a start a rounding error outside is
        # put on the bound.
        g = jnp.clip(g.astype(dtype), self.gap_min, self.gap_max)
        # Plain cell: the cell voltage is the applied one, so sinh(V/V0) is per pulse.
        plain = not (self._has_series or self._has_compliance)
        sinh_v = safe_sinh(v / self.v0) if plain else None
        ln_ra, t_a = self._log_rate(g, v, sinh_v)
        shape = jnp.broadcast_shapes(ln_ra.shape, width.shape)
        g = jnp.broadcast_to(g, shape)
        t_rem = jnp.broadcast_to(width, shape)
        gmin, gmax = self.gap_min, self.gap_max
        h_max = 1.25 * (gmax - gmin) / self.n_substeps
        h_min = 1e-4 * h_max
        direction = -jnp.sign(v)  # +1: gap grows (RESET)
        noisy = key is not None
        sigma_g = self.delta_gap0 * self.tau_ref
        n_iv = self.n_noise_steps
        dt_iv = t_rem / n_iv  # length of one noise interval

        def gap_step(g, t_rem, h, ln_ra, t_a, force, h_max=h_max):
            """One deterministic gap step limited by the time ``t_rem`` left."""
            dist = jnp.where(direction > 0, gmax - g, g - gmin)
            dg = jnp.clip(dist, 0.0, h) * jnp.abs(direction)
            ln_rb, t_b = self._log_rate(g + direction * dg, v, sinh_v)
            y = jnp.clip(ln_ra - ln_rb, -50.0, 50.0)
            # Step-length control: the exponential profile assumed below holds only if
            # ln R changes by at most Y_MAX across the step (it fails where the F_min
            # gate closes, e.g. at the end of a compliance-limited SET). Otherwise the
            # step is rejected (no motion, no time) and retried shorter.
            reject = (jnp.abs(y) > Y_MAX) & (dg > h_min) & jnp.logical_not(force)
            y_abs = jnp.where(reject, jnp.abs(y), Y_MAX)  # no 1/0 (and NaN gradient) off-branch
            h_new = jnp.where(
                reject,
                jnp.maximum(0.8 * dg * Y_MAX / y_abs, h_min),
                jnp.where(jnp.abs(y) < 0.5 * Y_MAX, jnp.minimum(2.0 * h, h_max), h),
            )
            # Time to move dg if ln R is linear in g across the step (exact for an
            # exponential rate): dg (1/R_b - 1/R_a) / ln(R_a/R_b).
            small = jnp.abs(y) < 1e-6
            y_s = jnp.where(small, 1.0, y)
            phi = jnp.where(small, 1.0 + 0.5 * y, jnp.expm1(y_s) / y_s)
            dt_full = dg * phi * jnp.exp(-ln_ra)
            partial = force | (dt_full >= t_rem) | (dg <= 0.0)
            # Inside the step: u(t) = ln(1 + k R_a t) / k, k = y / dg.
            rt = jnp.exp(ln_ra) * t_rem
            dg_s = jnp.where(dg > 0.0, dg, 1.0)
            x = jnp.where(partial, y * rt / dg_s, 0.0)
            blow = x <= -1.0 + 1e-6  # accelerating rate that reaches the step end
            x_s = jnp.where(blow | (jnp.abs(x) < 1e-6), 0.5, x)
            ratio = jnp.where(jnp.abs(x) < 1e-6, 1.0 - 0.5 * x, jnp.log1p(x_s) / x_s)
            u = jnp.where(blow, dg, jnp.minimum(rt * ratio, dg))
            g_new = jnp.where(partial, g + direction * u, g + direction * dg)
            t_new = jnp.where(partial, 0.0, t_rem - dt_full)
            g_new = jnp.where(reject, g, g_new)
            t_new = jnp.where(reject, t_rem, t_new)
            ln_rb = jnp.where(reject, ln_ra, ln_rb)
            t_b = jnp.where(reject, t_a, t_b)
            return g_new, t_new, h_new, ln_rb, t_b

        def substep(carry, xs):
            _, force = xs
            out = gap_step(*carry, force)
            return tuple(a.astype(dtype) for a in out), None

        def noisy_substep(carry, xs):
            # Drift and noise act together over every interval: the pulse is cut into
            # n_noise_steps equal intervals; each starts with the Wiener increment of
            # its length and is then integrated deterministically (gap steps limited
            # by the time left in the interval), so the drift acts after every kick.
            g, t_iv, n_left, h, ln_ra, t_a = carry
            i, force = xs
            # drawn inside the loop: no (steps, *shape) array of normals in memory
            xi = jax.random.normal(jax.random.fold_in(key, i), shape, dtype)
            start = (t_iv <= 0.0) & (n_left > 0.0)
            # The last scan step takes whatever is left (a safeguard; the step budget
            # is sized so that it is normally not reached with intervals left).
            n_new = jnp.where(force, n_left, jnp.where(start, 1.0, 0.0))
            kick_t = n_new * dt_iv
            gate = jax.nn.sigmoid((t_a - self.t_crit) / self.t_smth)
            g = g + sigma_g * safe_sqrt(kick_t / self.tau_ref) * gate * xi
            g = _fold(g, gmin, gmax)
            kicked = kick_t > 0.0
            ln_rk, t_k = self._log_rate(g, v, sinh_v)
            ln_ra = jnp.where(kicked, ln_rk, ln_ra)
            t_a = jnp.where(kicked, t_k, t_a)
            g, t_iv, h, ln_ra, t_a = gap_step(
                g, t_iv + kick_t, h, ln_ra, t_a, force, self.noise_h_factor * h_max
            )
            out = (g, t_iv, n_left - n_new, h, ln_ra, t_a)
            return tuple(a.astype(dtype) for a in out), None

        h0 = jnp.full(shape, h_max)
        if noisy:
            n = self.n_substeps + self.noise_step_budget * n_iv
            steps = jnp.arange(n)
            force = steps == n - 1
            n_left = jnp.full(shape, float(n_iv))
            init = (g, jnp.zeros(shape), n_left, h0, ln_ra, t_a)
            carry = tuple(jnp.broadcast_to(a, shape).astype(dtype) for a in init)
            (g, *_), _ = jax.lax.scan(noisy_substep, carry, (steps, force))
            # rounding of the fold and of the last step may leave g an ulp outside
            return RRAMState(gap=jnp.clip(g, gmin, gmax))
        n = self.n_substeps
        xis = jnp.zeros((n,) + (1,) * len(shape), dtype)
        force = jnp.arange(n) == n - 1  # the last step takes whatever time is left
        carry = tuple(jnp.broadcast_to(a, shape).astype(dtype) for a in (g, t_rem, h0, ln_ra, t_a))
        (g, _, _, _, _), _ = jax.lax.scan(substep, carry, (xis, force))
        return RRAMState(gap=g)

    def drift(self, state: RRAMState, t_s: Float[Array, "*shape"], temperature_k=None) -> RRAMState:
        """Zero-bias retention: the gap relaxes towards ``gap_max`` (HRS) for ``t_s`` [s]
        at ``temperature_k`` [K] (default ``t0``):
        ``g(t) = g_max - (g_max - g) exp(-t / tau)``, ``tau = tau0 exp(Ea_ret / kT)``.

        UNCONFIRMED model choice (no relaxation in the source); thermally activated
        with the 1-2 eV retention activation energies quoted for RRAM.
        Monotonic in ``t``, bounded, and a semigroup (drift(t1) then drift(t2) equals
        drift(t1 + t2))."""
        t_s = check_time("StanfordPKU.drift", t_s)
        temp = self.t0 if temperature_k is None else jnp.asarray(temperature_k)
        tau = self.tau0_retention * safe_exp(self.ea_retention * Q_E / (K_B * temp))
        keep = jnp.exp(-jnp.asarray(t_s) / tau)
        return RRAMState(gap=self.gap_max - (self.gap_max - state.gap) * keep)

    def read_noise(self, state: RRAMState, key: PRNGKeyArray, v_read=None):
        """One noisy conductance read [S]: 1/f + RTN of ``noise`` (:class:`ReadNoise`)."""
        return standard_read_noise(self, state, key, v_read)

    def read_noise_moments(self, state: RRAMState, v_read=None):
        """Mean [S] and variance [S^2] of :meth:`read_noise` (``None`` with RTN)."""
        return standard_read_noise_moments(self, state, v_read)

    def retention_time(self, temperature_k: float | Array) -> Float[Array, "*shape"]:
        """Relaxation time ``tau`` [s] of :meth:`drift` at ``temperature_k`` [K]."""
        return self.tau0_retention * safe_exp(
            self.ea_retention * Q_E / (K_B * jnp.asarray(temperature_k))
        )


@eqx.filter_jit
def _apply_pulse_jit(model, state, v, width_s, key):
    return model._apply_pulse(state, v, width_s, key)


__all__ = ["RRAMState", "StanfordPKU"]


def _fold(x, lo, hi):
    """Reflect ``x`` into ``[lo, hi]`` (the position of a Brownian path reflected at
    both walls: exact in distribution for a free Wiener increment)."""
    width = hi - lo
    y = jnp.mod(x - lo, 2.0 * width)
    return lo + width - jnp.abs(width - y)


def _scaled(bound, factor):
    """``bound * factor``, or ``bound`` unchanged when it is traced."""
    return bound if isinstance(bound, jax.core.Tracer) else np.asarray(bound, float) * factor
