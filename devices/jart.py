"""JART VCM v1b (var): physics-based valence-change (HfO2/TiOx) RRAM cell.

Source: Cüppers et al., APL Materials 7, 091105 (2019) (v1b); Bengel et al., IEEE
TCAS-I 67(12), 4618-4630 (2020) (variability-aware "var"); equations and default
parameters of the v1b Verilog-A parameter list (JART VCM v1b var, Juelich DATA
doi:10.26165/JUELICH-DATA/FERGKU); equation numbers (1.5)-(1.11) below are ours.

The cell is a series circuit: a Schottky contact at the active electrode, a
"disc" of variable oxygen-vacancy concentration ``N`` and length ``l_disc``, a
"plug" of fixed concentration ``N_plug`` and length ``l_cell - l_disc``, and a
series resistance (TiOx layer + a line that heats itself). Polarity: SET at
**negative** voltage (``N`` rises, LRS), RESET at **positive** voltage.

Electrical part (elementwise, ``A = pi r^2``, ``N`` in units of 1e26 m^-3)::

    R_disc = l_disc / (z q mu_n N 1e26 A),  R_plug = (l_cell - l_disc) / (z q mu_n N_plug 1e26 A)
    R_ser  = R_TiOx + R0 (1 + R0 alpha_line I^2 R_th,line)                        (1.5)
    phi_Bn = phi_Bn0 - [q^3 z N 1e26 psi / (8 pi^2 eps_phiB^3)]^(1/4) >= 0,
             psi = phi_Bn0 - phi_n - V_S > 0 (else phi_Bn = phi_Bn0)              (1.6)
    I_S(V_S, T): thermionic-field emission for V_S < 0, thermionic for V_S >= 0   (1.7)
    V = V_S + I (R_disc + R_plug + R_ser(I))                                     (1.8)
    T = T0 + I (V_S + V_disc + V_plug) R_th0 (r_det / r)^2 (s_RESET if V > 0)    (1.9)

The closure (1.8) is implicit twice over (the Schottky voltage ``V_S``, and
``R_ser`` through ``I^2``), and (1.9) couples the temperature back into the
Schottky current. We reduce it to one scalar equation per device: for a trial
``V_S`` the ohmic branch ``U = V - V_S = I R_lin + c I^3`` (``c = R0^2 alpha_line
R_th,line``) has exactly one real root ``I_res(U)`` (a depressed cubic with
positive coefficients, solved in closed form), which fixes the temperature
through (1.9); the residual is ``I_S(V_S, T(V_S)) - I_res(V - V_S)``. It changes
sign on ``[min(0, V), max(0, V)]`` (``I_S(0) = 0``), so a bracketed Newton
iteration (bisection whenever a Newton step leaves the bracket) with a fixed
iteration count always lands on a root; ``jax.lax.custom_root`` supplies the
derivative by the implicit function theorem. Where (1.8) has several roots
(up to three near ``V_S = phi_Bn0 - phi_n``, as the ports report), we take the
one of smallest ``|V_S|``: the branch reached by raising the voltage
quasi-statically from 0 at the present state (a transient simulator would take the root
nearest the previous time step's; ours is history-free, so a sweep shows no
hysteresis of the circuit solution itself, only of ``N``). A coarse grid on
``[0, V]`` finds the first sign change before Newton refines it.

Ionic part (field-accelerated hopping over an asymmetric barrier)::

    E = (V_S + V_disc + V_plug) / l_cell  (V > 0)       E = V_disc / l_disc  (V < 0)
    Gamma = z q E a / (pi dW_A)
    dW_min/max = dW_A [sqrt(1 - Gamma^2) -/+ Gamma pi / 2 + Gamma asin(Gamma)]
    F_lim = 1 - (N_min / N)^10 (V > 0),  1 - (N / N_max)^10 (V < 0)
    I_ion = z q c_vo a nu0 A (exp(-dW_min / kT) - exp(-dW_max / kT)) F_lim       (1.10)
    dN/dt = -I_ion / (z q A l_disc) / 1e26,   N clamped to [N_min, N_max]        (1.11)

Variability (v1b var): ``l_disc``, ``r``, ``N_max``, ``N_min`` drawn per device
(:meth:`JART.sample`, default spreads :data:`JART_D2D_SPREADS`) and changed from
cycle to cycle by a bounded random walk (:meth:`JART.apply_pulse` with a key, after the
per-pulse rule of the Juelich port in IBM aihwkit; see its docstring).

Precision: float32 and float64 alike (the constants that underflow in float32 --
``q^3``, ``q h``, ``z q A l_disc`` -- are combined in float64 or cancelled by hand, and
energies are carried in eV). Measured against float64: conductances and the
disc concentration after a pulse agree to a relative 1e-5 in float32 (tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import Device, standard_read_noise, standard_read_noise_moments
from ._checks import (
    check_less,
    check_nonnegative,
    check_positive,
    check_pulse,
    check_range,
    check_voltage,
    float_array,
    require_tree,
)
from ._math import safe_exp, safe_sqrt
from .constants import EPS0, H_PLANCK, K_B, K_B_EV, Q_E
from .noise import ReadNoise
from .variability import Spread

Q = Q_E
# Combined constants (float64, before they meet float32 arrays):
# (q^3 1e26 / (8 pi^2 eps0^3))^(1/4) of the image-force lowering, and
# h / (4 pi) sqrt(1e26 / eps0) of W00 in eV (N in 1e26 m^-3).
_C_DPHI = float((Q_E**3 * 1e26 / (8.0 * math.pi**2 * EPS0**3)) ** 0.25)
_C_W00 = float(H_PLANCK / (4.0 * math.pi) * math.sqrt(1e26 / EPS0))

# Device-to-device spreads of the four "var" parameters. The user table quoted in the
# JART user scripts give Gaussian (mean, sigma): N_min (8e-3, 2e-3), N_max (20, 1),
# l_disc (0.4, 0.04) nm, r (45, 5) nm. We keep the same *relative* sigmas but draw
# lognormally (median-preserving) so that N_min, l_disc and r stay positive.
# UNCONFIRMED: Bengel et al. 2020's own distributions were not available.
JART_D2D_SPREADS: dict[str, Spread] = {
    "n_min": Spread(0.25),  # 2e-3 / 8e-3
    "n_max": Spread(0.05),  # 1 / 20
    "l_disc": Spread(0.1),  # 0.04 nm / 0.4 nm
    "r": Spread(5.0 / 45.0),  # 5 nm / 45 nm
}


class JARTState(eqx.Module):
    """State of JART cells.

    Fields (all of the state's array shape):
        n: oxygen-vacancy concentration of the disc [1e26 m^-3], in [N_min, N_max].
        f_l_disc, f_r, f_n_max, f_n_min: cycle-to-cycle factors [-] multiplying the
            device's ``l_disc``, ``r``, ``N_max``, ``N_min`` (1 = the device's own
            value; re-drawn after switching events when ``apply_pulse`` gets a key).
    """

    n: Float[Array, "*shape"]
    f_l_disc: Float[Array, "*shape"]
    f_r: Float[Array, "*shape"]
    f_n_max: Float[Array, "*shape"]
    f_n_min: Float[Array, "*shape"]


class _Eff(eqx.Module):
    """Per-device parameters after cycle-to-cycle factors (internal)."""

    l_disc: Array
    r: Array
    n_max: Array
    n_min: Array


class JART(Device):
    """JART VCM v1b (var) valence-change RRAM cell (see the module docstring).

    Source: Cüppers et al., APL Mater. 7, 091105 (2019); Bengel et al., IEEE TCAS-I
    67(12), 4618 (2020); defaults = the v1b Verilog-A defaults.
    SI units throughout except ``n_*`` (units of 1e26 m^-3, as in the source) and the
    barrier heights ``phi_bn0``, ``phi_n``, ``dw_a`` (eV, i.e. V).

    Fields:
        a_star: Richardson constant [A m^-2 K^-2].
        m_eff: electron mass used in the tunnelling energy W00 [kg].
        z_vo: vacancy charge number [-].
        t0: ambient temperature [K].
        eps_r: static permittivity of the oxide [-].
        eps_phib_r: permittivity for image-force lowering [-].
        phi_bn0: nominal Schottky barrier [eV].
        phi_n: Fermi level to conduction band offset in the oxide [eV].
        mu_n: electron mobility [m^2 / (V s)].
        n_max, n_min: bounds of the disc concentration [1e26 m^-3].
        n_plug: plug concentration [1e26 m^-3].
        a_hop: ion hopping distance [m].
        nu0: attempt frequency [Hz].
        dw_a: ion migration barrier [eV].
        r_th0: thermal resistance of the filament at radius ``r_det`` [K/W].
        r: filament radius [m] (device-to-device variable).
        r_det: reference radius of ``r_th0`` [m].
        l_cell: disc + plug length [m].
        l_disc: disc length [m] (device-to-device variable).
        s_reset: thermal-resistance scaling in RESET (V > 0) [-].
        r_tiox: TiOx series resistance [Ohm].
        r0: line resistance at ``t0`` [Ohm].
        r_th_line: thermal resistance of the line [K/W].
        alpha_line: temperature coefficient of the line [1/K].
        c2c_sigma_*: cycle-to-cycle spread of the four var parameters: standard
            deviation of ``ln f`` accumulated over one full switching [-] (rule in
            :meth:`apply_pulse`; UNCONFIRMED defaults = the relative D2D sigmas).
        c2c_bound_*: bounds of ``|ln f|`` of the cycle-to-cycle factors [-].
        v_read: default read voltage [V]. 0.2 V, positive:
            the read current differs by polarity (Schottky asymmetry, HRS 66 kOhm at
            +0.2 V vs 105 kOhm at -0.2 V).
        noise: read noise model.
        self_heating: include the temperature rise (1.9) and the line self-heating in
            ``R_ser`` (1.5). ``False`` holds T = ``t0`` and ``R_ser = R_TiOx + R0``.
        n_substeps: fixed explicit sub-steps per pulse (``lax.scan``).
        n_newton: fixed iterations of the bracketed Newton solve of (1.8).
        n_grid: grid cells on [0, V] used to bracket the smallest root of (1.8).
    """

    a_star: float = 6.01e5
    m_eff: float = 9.10938e-31
    z_vo: float = 2.0
    t0: float = 293.0
    eps_r: float = 17.0
    eps_phib_r: float = 5.5
    phi_bn0: float = 0.18
    phi_n: float = 0.1
    mu_n: float = 4e-6
    n_max: float = 20.0
    n_min: float = 0.008
    n_plug: float = 20.0
    a_hop: float = 0.25e-9
    nu0: float = 2e13
    dw_a: float = 1.35
    r_th0: float = 15.72e6
    r: float = 45e-9
    r_det: float = 45e-9
    l_cell: float = 3e-9
    l_disc: float = 0.4e-9
    s_reset: float = 0.27
    r_tiox: float = 650.0
    r0: float = 719.2437
    r_th_line: float = 90471.47
    alpha_line: float = 3.92e-3
    # Cycle-to-cycle spread per full switching (sd of ln factor); UNCONFIRMED values (the
    # relative sigmas of the device-to-device table; aihwkit ships the rule switched off).
    c2c_sigma_n_min: float = 0.25
    c2c_sigma_n_max: float = 0.05
    c2c_sigma_l_disc: float = 0.1
    c2c_sigma_r: float = 5.0 / 45.0
    # Bounds of |ln factor|: the +-10 % ranges of r, l_disc and N_max, and a factor 2 for
    # N_min, of the JART-TUD port's parameter limits (quoted there from Bengel et al. 2020).
    c2c_bound_n_min: float = 0.6931471805599453
    c2c_bound_n_max: float = 0.1
    c2c_bound_l_disc: float = 0.1
    c2c_bound_r: float = 0.1
    v_read: float = 0.2
    noise: ReadNoise = ReadNoise()
    self_heating: bool = eqx.field(default=True, static=True)
    n_substeps: int = eqx.field(default=200, static=True)
    n_newton: int = eqx.field(default=30, static=True)
    n_grid: int = eqx.field(default=48, static=True)

    State: ClassVar[type] = JARTState
    default_spreads: ClassVar[Mapping[str, Spread]] = JART_D2D_SPREADS

    def __check_init__(self):
        for name in (
            "a_star", "m_eff", "z_vo", "t0", "eps_r", "eps_phib_r", "phi_bn0", "mu_n",
            "n_max", "n_min", "n_plug", "a_hop", "nu0", "dw_a", "r_th0", "r", "r_det",
            "l_cell", "l_disc", "r0",
        ):  # fmt: skip
            check_positive(name, getattr(self, name))
        for name in (
            "phi_n", "r_tiox", "r_th_line", "alpha_line", "c2c_sigma_n_min",
            "c2c_sigma_n_max", "c2c_sigma_l_disc", "c2c_sigma_r", "c2c_bound_n_min",
            "c2c_bound_n_max", "c2c_bound_l_disc", "c2c_bound_r",
        ):  # fmt: skip
            check_nonnegative(name, getattr(self, name))
        check_range("s_reset", self.s_reset, 0.0, 1.0, lo_open=True)
        check_less("n_min", self.n_min, "n_max", self.n_max, "1e26 m^-3")
        check_less("l_disc", self.l_disc, "l_cell", self.l_cell, "m")
        check_range("v_read", self.v_read, 0.0, 10.0, lo_open=True, unit="V")
        if self.n_substeps < 1:
            raise ValueError(f"n_substeps must be >= 1, got {self.n_substeps}")
        if self.n_newton < 1:
            raise ValueError(f"n_newton must be >= 1, got {self.n_newton}")

    # ---- state -------------------------------------------------------------------
    def state_defaults(self) -> dict[str, float]:
        """HRS: ``n = N_min`` (the source's ``N_init``); C2C factors 1."""
        return {"n": self.n_min, "f_l_disc": 1.0, "f_r": 1.0, "f_n_max": 1.0, "f_n_min": 1.0}

    def check_state_values(self, values: Mapping[str, object]) -> None:
        for name, value in values.items():
            check_positive(name, value)

    def _eff(self, state: JARTState) -> _Eff:
        return _Eff(
            l_disc=self.l_disc * state.f_l_disc,
            r=self.r * state.f_r,
            n_max=self.n_max * state.f_n_max,
            n_min=self.n_min * state.f_n_min,
        )

    # ---- electrical sub-model ------------------------------------------------------
    def _ohmic(self, n, p: _Eff):
        """(R_disc, R_plug, R_lin, c, area): linear resistances [Ohm] and cubic coefficient."""
        area = jnp.pi * p.r**2
        cond = self.z_vo * Q * self.mu_n * 1e26 * area
        r_disc = p.l_disc / (cond * n)
        r_plug = (self.l_cell - p.l_disc) / (cond * self.n_plug)
        r_lin = r_disc + r_plug + self.r_tiox + self.r0
        c = self.r0**2 * self.alpha_line * self.r_th_line if self.self_heating else 0.0
        return r_disc, r_plug, r_lin, c, area

    @staticmethod
    def _resistor_current(u, r_lin, c):
        """The one real root I of ``u = I r_lin + c I^3`` (c >= 0), in closed form.

        ``I = (u / r_lin) h(z)``, ``h(z) = 3 sinh(asinh(z) / 3) / z`` with
        ``z = (3 u / (2 r_lin)) sqrt(3 c / r_lin)`` (trigonometric-hyperbolic Cardano
        form, free of cancellation); ``h = 1 - 4 z^2 / 27`` for small ``|z|``."""
        z = 1.5 * u / r_lin * jnp.sqrt(3.0 * c / r_lin)
        small = jnp.abs(z) < 1e-3
        z_safe = jnp.where(small, 1.0, z)
        h = jnp.where(
            small, 1.0 - 4.0 * z**2 / 27.0, 3.0 * jnp.sinh(jnp.arcsinh(z_safe) / 3.0) / z_safe
        )
        return u / r_lin * h

    def _schottky(self, vs, n, t, area):
        """Schottky current (1.6)-(1.7) [A] for contact voltage ``vs`` [V] at ``t`` [K].

        Energies are carried in eV and the constants are combined in float64 before
        they meet the arrays (``q^3``, ``q h`` and ``1 / (z q A l)`` underflow in
        float32), so the expression is finite in both precisions."""
        psi = self.phi_bn0 - self.phi_n - vs
        lowered = psi > 0
        psi_safe = jnp.where(lowered, psi, 1.0)
        # image-force lowering [V]: (q^3 z N psi / (8 pi^2 eps_phiB^3))^(1/4)
        dphi = _C_DPHI * (self.z_vo * n * psi_safe / self.eps_phib_r**3) ** 0.25
        # max(., 0) as in the Verilog-A (barrier fully lowered at high N).
        phi_bn = jnp.where(lowered, jnp.maximum(self.phi_bn0 - dphi, 0.0), self.phi_bn0)
        kt = K_B_EV * t  # [eV]
        # Thermionic-field emission (SET direction, vs < 0); W00 = q h / (4 pi)
        # sqrt(z N / (m* eps)), here in eV.
        w00 = _C_W00 * jnp.sqrt(self.z_vo * n / (self.m_eff * self.eps_r))
        x = w00 / kt
        # x - tanh(x) loses all digits for small x: use its series there.
        x_small = x < 0.05
        x_big = jnp.where(x_small, 1.0, x)
        x_m_tanh = jnp.where(x_small, x**3 / 3.0 - 2.0 * x**5 / 15.0, x_big - jnp.tanh(x_big))
        w0 = w00 / jnp.tanh(x)
        eps_prime = w00 / x_m_tanh
        avs = jnp.abs(vs)
        sech2 = 1.0 / jnp.cosh(jnp.minimum(x, 40.0)) ** 2
        # A* T / k sqrt(pi W00 q (|V_S| + phi sech^2)) with W00 in J = (A* T / k_eV)
        # sqrt(pi W00[eV] (...)) (one factor q cancels against k = q k_eV).
        i_tfe = -(
            area
            * (self.a_star * t / K_B_EV)
            * jnp.sqrt(jnp.pi * w00 * (avs + phi_bn * sech2))
            * safe_exp(-phi_bn / w0)
            * jnp.expm1(jnp.minimum(avs / eps_prime, 80.0))
        )
        # Thermionic emission (RESET direction, vs >= 0).
        i_te = (
            area
            * self.a_star
            * t**2
            * safe_exp(-phi_bn / kt)
            * jnp.expm1(jnp.minimum(vs / kt, 80.0))
        )
        return jnp.where(vs < 0, i_tfe, i_te)

    def _temperature(self, i, v, u, r_lin, c, p: _Eff):
        """Filament temperature (1.9) [K]: power in Schottky + disc + plug times R_th,eff."""
        if not self.self_heating:
            return jnp.broadcast_to(jnp.asarray(self.t0, dtype=jnp.result_type(i)), i.shape)
        r_ser = self.r_tiox + self.r0 + c * i**2
        # V_S + V_disc + V_plug = V - I R_ser; the product is >= 0 (passive cell).
        power = jnp.maximum(i * (v - i * r_ser), 0.0)
        r_th = self.r_th0 * (self.r_det / p.r) ** 2 * jnp.where(v > 0, self.s_reset, 1.0)
        return self.t0 + power * r_th

    def _residual(self, vs, v, n, p: _Eff):
        """``I_S(V_S, T) - I_res(V - V_S)`` [A]: zero at the circuit solution (1.8)."""
        _, _, r_lin, c, area = self._ohmic(n, p)
        u = v - vs
        i_res = self._resistor_current(u, r_lin, c)
        t = self._temperature(i_res, v, u, r_lin, c, p)
        return self._schottky(vs, n, t, area) - i_res

    def _solve_vs(self, v, n, p: _Eff):
        """Schottky voltage V_S [V] solving (1.8): the root of smallest ``|V_S|``.

        A fixed grid on ``[0, V]`` (quadratically spaced, dense near 0 where the
        roots cluster around ``phi_Bn0 - phi_n``) locates the first sign change of the
        residual going out from ``V_S = 0``; a bracketed Newton iteration refines it.
        ``jax.lax.custom_root`` differentiates the root by the implicit function
        theorem (the iterations are not differentiated)."""
        n_arr = jnp.asarray(n)
        dtype = n_arr.dtype if jnp.issubdtype(n_arr.dtype, jnp.floating) else jnp.result_type(float)
        shape = jnp.broadcast_shapes(
            jnp.shape(v), jnp.shape(n), *(jnp.shape(x) for x in jax.tree.leaves(p))
        )
        v = jnp.broadcast_to(jnp.asarray(v, dtype), shape)
        n = jnp.broadcast_to(jnp.asarray(n, dtype), shape)

        def f(vs):
            return self._residual(vs, v, n, p)

        def solve(fun, x0):
            del x0
            vv = jax.lax.stop_gradient(v)
            s = jnp.where(vv < 0, -1.0, 1.0)
            frac = (jnp.arange(self.n_grid + 1, dtype=dtype) / self.n_grid) ** 2
            grid = frac.reshape((-1,) + (1,) * len(shape)) * vv  # (K+1, *shape)
            # s * residual is < 0 at V_S = 0 and > 0 at V_S = V.
            g = s * jax.lax.stop_gradient(fun(grid))
            crossed = g[1:] >= 0
            k = jnp.argmax(crossed, axis=0)  # first crossing (the last cell always crosses)
            x_near = jnp.take_along_axis(grid, k[None], axis=0)[0]
            x_far = jnp.take_along_axis(grid, k[None] + 1, axis=0)[0]
            lo = jnp.minimum(x_near, x_far)
            hi = jnp.maximum(x_near, x_far)

            def body(_, carry):
                x, lo, hi = carry
                fx, dfx = jax.jvp(fun, (x,), (jnp.ones_like(x),))
                # Keep the bracket: residual < 0 at lo, > 0 at hi.
                lo = jnp.where(fx < 0, x, lo)
                hi = jnp.where(fx > 0, x, hi)
                x_newton = x - fx / jnp.where(dfx != 0, dfx, 1.0)
                ok = (dfx > 0) & (x_newton > lo) & (x_newton < hi) & jnp.isfinite(x_newton)
                x_new = jnp.where(ok, x_newton, 0.5 * (lo + hi))
                return jnp.where(fx == 0, x, x_new), lo, hi

            x, _, _ = jax.lax.fori_loop(0, self.n_newton, body, (0.5 * (lo + hi), lo, hi))
            return x

        def tangent_solve(g, y):
            # Elementwise problem: the Jacobian is diagonal.
            return y / g(jnp.ones_like(y))

        return jax.lax.custom_root(f, jnp.zeros(shape, dtype), solve, tangent_solve)

    def operating_point(self, state: JARTState, v: Float[Array, "*shape"]) -> dict:
        """Circuit solution at applied ``v`` [V]: dict of ``vs`` (Schottky voltage) [V],
        ``i`` [A], ``t`` (filament temperature) [K], ``v_disc``, ``v_plug``, ``v_ser`` [V]."""
        return _operating_point_jit(self, state, check_voltage("JART.operating_point", v))

    def _operating_point(self, state: JARTState, v) -> dict:
        p = self._eff(state)
        n = state.n
        vs = self._solve_vs(v, n, p)
        r_disc, r_plug, r_lin, c, _ = self._ohmic(n, p)
        u = v - vs
        i = self._resistor_current(u, r_lin, c)
        t = self._temperature(i, jnp.broadcast_to(v, i.shape), u, r_lin, c, p)
        return {
            "vs": vs,
            "i": i,
            "t": t,
            "v_disc": i * r_disc,
            "v_plug": i * r_plug,
            "v_ser": u - i * (r_disc + r_plug),
        }

    def current(self, state: JARTState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Cell current [A] at applied ``v`` [V] (implicit circuit (1.5)-(1.9) solved exactly)."""
        return self.operating_point(state, v)["i"]

    # ---- ionic sub-model ------------------------------------------------------------
    def _dndt(self, n, v, p: _Eff):
        """(dN/dt [1e26 m^-3 / s], V_S) at state ``n`` under applied ``v`` (1.10)-(1.11)."""
        vs = self._solve_vs(v, n, p)
        r_disc, r_plug, r_lin, c, _ = self._ohmic(n, p)
        v = jnp.broadcast_to(v, vs.shape)
        u = v - vs
        i = self._resistor_current(u, r_lin, c)
        t = self._temperature(i, v, u, r_lin, c, p)
        reset = v > 0
        e_reset = (vs + i * (r_disc + r_plug)) / self.l_cell
        e_set = i * r_disc / p.l_disc
        e = jnp.where(reset, e_reset, e_set)
        dw = self.dw_a * Q
        gamma = jnp.clip(self.z_vo * Q * e * self.a_hop / (jnp.pi * dw), -1 + 1e-6, 1 - 1e-6)
        root = jnp.sqrt(1.0 - gamma**2)
        tail = gamma * jnp.arcsin(gamma)
        dw_min = dw * (root - gamma * jnp.pi / 2 + tail)
        dw_max = dw * (root + gamma * jnp.pi / 2 + tail)
        kt = K_B * t
        # (N_min/N)^10 and (N/N_max)^10 through exp(10 ln .) to keep them finite.
        f_reset = 1.0 - jnp.exp(jnp.minimum(10.0 * jnp.log(p.n_min / n), 80.0))
        f_set = 1.0 - jnp.exp(jnp.minimum(10.0 * jnp.log(n / p.n_max), 80.0))
        # F_lim <= 0 beyond a bound is the source's "I_ion := 0" rule.
        f_lim = jnp.maximum(jnp.where(reset, f_reset, f_set), 0.0)
        # I_ion / (z q A l_disc) / 1e26 with the factor z q A cancelled by hand (the
        # product underflows in float32): c_vo in units of 1e26 m^-3.
        c_vo = 0.5 * (self.n_plug + n)
        dndt = -(
            c_vo * (self.a_hop * self.nu0 / p.l_disc)
            * (jnp.exp(-dw_min / kt) - jnp.exp(-dw_max / kt)) * f_lim
        )  # fmt: skip
        return dndt, vs

    def dndt(self, state: JARTState, v: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Rate of change of the disc concentration (1.11) [1e26 m^-3 / s] under ``v`` [V]."""
        return _dndt_jit(self, state, check_voltage("JART.dndt", v))

    def apply_pulse(
        self,
        state: JARTState,
        v: Float[Array, "*shape"],
        width_s: float | Float[Array, "*shape"],
        key: PRNGKeyArray | None = None,
    ) -> JARTState:
        """State after a rectangular pulse ``v`` [V] of ``width_s`` [s].

        ``n_substeps`` explicit (Euler) steps under ``lax.scan``, ``N`` clamped to
        ``[N_min, N_max]`` after each (the source's bound rule); one circuit solve per
        sub-step.

        Cycle-to-cycle variability (``key`` given), after the rule of the Juelich JART
        v1b port in IBM aihwkit (``rpu_JART_v1b_device.cpp``, Z. Yu, FZ Juelich 2022):
        there every pulse that moves ``N`` changes each of ``N_max``, ``N_min``,
        ``l_disc`` and ``r`` by a bounded relative amount, ``p <- p (1 + std U(-1, 1)
        [+ ratio slope U(-1, 1)])``, ``ratio`` the fraction of the remaining window the
        pulse crossed, then clipped to ``p_device (1 + [lower, upper])``. A per-pulse rule
        depends on how a pulse is cut (ten half-pulses would draw ten times), so here
        the same bounded random walk runs in *switching progress* ``s = sum |d ln N| /
        ln(N_max / N_min)`` inside the sub-steps: each factor ``f`` (state fields
        ``f_*``, 1 = the device's own value) does ``ln f <- clip(ln f + sigma sqrt(ds)
        xi, -bound, bound)``, ``xi ~ N(0, 1)``. One full switching (``s = 1``) then has
        ``Var(ln f) = sigma^2``, aihwkit's variance ``std^2 / 3`` of one pulse that
        switches fully (``sigma = std / sqrt(3)``); gradual pulse trains accumulate the
        spread in proportion to the distance switched; pulses that do not move ``N``
        (reads, a cell at its bound) change nothing, as in aihwkit. ``N`` is kept in
        the moving window ``[N_min f_n_min, N_max f_n_max]``. Without a
        key the pulse is deterministic."""
        v, width_s = check_pulse("JART.apply_pulse", v, width_s, state.n.dtype, jnp.shape(state.n))
        if key is None:
            return _apply_pulse_jit(self, state, v, width_s)
        return _apply_pulse_key_jit(self, state, v, width_s, key)

    def _apply_pulse(self, state: JARTState, v, width_s, key) -> JARTState:
        p = self._eff(state)
        shape = jnp.broadcast_shapes(
            state.n.shape, jnp.shape(v), jnp.shape(width_s),
            *(jnp.shape(x) for x in jax.tree.leaves(p)),
        )  # fmt: skip
        dtype = state.n.dtype
        v = jnp.broadcast_to(jnp.asarray(v, dtype), shape)
        dt = jnp.broadcast_to(jnp.asarray(width_s, dtype), shape) / self.n_substeps
        factors = tuple(
            jnp.broadcast_to(getattr(state, f), shape).astype(dtype) for f in _C2C_FIELDS
        )
        n0 = jnp.broadcast_to(state.n, shape).astype(dtype)
        sigmas = jnp.asarray([getattr(self, "c2c_sigma_" + f[2:]) for f in _C2C_FIELDS], dtype)
        bounds = jnp.asarray([getattr(self, "c2c_bound_" + f[2:]) for f in _C2C_FIELDS], dtype)
        noisy = key is not None

        def step(carry, i):
            n, fs = carry
            st = JARTState(n, *fs)
            p = self._eff(st)
            rate, _ = self._dndt(n, v, p)
            n_new = jnp.clip(n + dt * rate, p.n_min, p.n_max)
            if noisy:
                # drawn inside the loop (no (n_substeps, 4, *shape) array in memory)
                xi = jax.random.normal(jax.random.fold_in(key, i), (4, *shape), dtype)
                # Cycle-to-cycle random walk of the four var parameters in "switching
                # progress" ds = |d ln N| / ln(N_max / N_min): the variance of each
                # ln-factor grows by sigma^2 ds, bounded to |ln f| <= bound.
                ds = jnp.abs(jnp.log(n_new / n)) / jnp.log(p.n_max / p.n_min)
                root = safe_sqrt(ds)
                fs = tuple(
                    jnp.exp(jnp.clip(jnp.log(f) + sigmas[k] * root * xi[k], -bounds[k], bounds[k]))
                    for k, f in enumerate(fs)
                )
                fs = _keep_physical(self, fs)
                n_new = jnp.clip(n_new, self.n_min * fs[3], self.n_max * fs[2])
            return (n_new, fs), None

        (n, fs), _ = jax.lax.scan(step, (n0, factors), jnp.arange(self.n_substeps))
        return JARTState(n, *fs)

    # ---- rest and reads -----------------------------------------------------------------
    def drift(self, state: JARTState, t_s) -> JARTState:
        """No relaxation at rest (the v1b model has no retention term): the state."""
        t_s = float_array("t_s", t_s, "JART.drift")
        ok = jnp.isfinite(t_s) & (t_s >= 0)
        return require_tree(state, ok, "JART.drift: t_s must be finite and >= 0 s", t_s)

    def read_noise(self, state: JARTState, key: PRNGKeyArray, v_read=None):
        """One noisy conductance read [S]: 1/f + RTN of ``noise`` (:class:`ReadNoise`)."""
        return standard_read_noise(self, state, key, v_read)

    def read_noise_moments(self, state: JARTState, v_read=None):
        """Mean [S] and variance [S^2] of :meth:`read_noise` (``None`` with RTN)."""
        return standard_read_noise_moments(self, state, v_read)


_C2C_FIELDS = ("f_l_disc", "f_r", "f_n_max", "f_n_min")


def _keep_physical(model: JART, fs):
    """Cap the factors so that ``l_disc < l_cell`` and ``N_min < N_max`` whatever the
    draw (no-ops for the default bounds)."""
    f_l, f_r, f_max, f_min = fs
    f_l = jnp.minimum(f_l, 0.99 * model.l_cell / model.l_disc)
    f_min = jnp.minimum(f_min, 0.5 * model.n_max * f_max / model.n_min)
    return f_l, f_r, f_max, f_min


# The public methods run through jit-compiled functions of (model, state, inputs): the
# model's float fields are traced leaves, so eager calls with new parameter values or
# new states reuse one compilation per shape instead of re-tracing the solver loops.
_operating_point_jit = jax.jit(lambda m, s, v: m._operating_point(s, v))
_dndt_jit = jax.jit(lambda m, s, v: m._dndt(s.n, v, m._eff(s))[0])
_apply_pulse_jit = jax.jit(lambda m, s, v, w: m._apply_pulse(s, v, w, None))
_apply_pulse_key_jit = jax.jit(lambda m, s, v, w, k: m._apply_pulse(s, v, w, k))

__all__ = ["JART", "JARTState", "JART_D2D_SPREADS"]
