"""Endurance (memory window closing with cycling) and retention (Arrhenius failure).

Endurance (form UNCONFIRMED: a power-law closing of the window, as commonly fitted): the ON conductance drifts
towards the OFF one as the device is cycled,

    G_on(n) = G_on,0 - dG (n / N_end)^k,   dG = (1 - w_fail) (G_on,0 - G_off),

i.e. the memory window, as a fraction of its initial value, is
``W(n) = 1 - (1 - w_fail) (n / N_end)^k``; it reaches the failure threshold ``w_fail``
at ``n = N_end`` cycles, after which the device is stuck (window closed at ``G_off``).
The cycle-to-cycle spread grows with wear: ``sigma(n) = sigma_0 (1 + g (n / N_end)^k)``.
Typical lifetimes: RRAM 1e6-1e12 cycles (HfOx arrays 1e6-1e9), PCM 1e6-1e9.

Retention (UNCONFIRMED numbers): the median time to failure
follows Arrhenius, ``t_ret(T) = tau0 exp(E_a / (k_B T))``, and device failure times
are lognormal around it with ``sigma`` (ln units), so the fraction of devices failed
after ``t`` at ``T`` is ``Phi((ln t - ln t_ret(T)) / sigma)``. Defaults: ``E_a`` =
1.5 eV (1-2 eV quoted for RRAM), ``tau0`` such that the median is 10 years at 85 C
(the usual specification), ``sigma`` = 1.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._checks import check_nonnegative, check_positive, check_range
from .constants import K_B_EV

_TEN_YEARS_S = 10 * 365.25 * 24 * 3600.0
_T85 = 358.15  # 85 C [K]


class Endurance(eqx.Module):
    """Memory-window closing with cycle count (see the module docstring).

    Fields:
        n_endurance: cycles to failure ``N_end`` [-] (UNCONFIRMED default 1e6).
        exponent: ``k`` of the power law [-] (UNCONFIRMED default 2).
        w_fail: window fraction at which the device fails [-] (UNCONFIRMED 0.1).
        sigma0: relative cycle-to-cycle sigma of a fresh device [-] (UNCONFIRMED 0.05).
        sigma_growth: growth ``g`` of that sigma at ``N_end`` [-] (UNCONFIRMED 1).
    """

    n_endurance: float = 1e6  # UNCONFIRMED
    exponent: float = 2.0  # UNCONFIRMED
    w_fail: float = 0.1  # UNCONFIRMED
    sigma0: float = 0.05  # UNCONFIRMED
    sigma_growth: float = 1.0  # UNCONFIRMED

    def __check_init__(self):
        check_positive("n_endurance", self.n_endurance)
        check_positive("exponent", self.exponent)
        check_range("w_fail", self.w_fail, 0.0, 1.0, hi_open=True)
        check_nonnegative("sigma0", self.sigma0)
        check_nonnegative("sigma_growth", self.sigma_growth)

    def _wear(self, n_cycles):
        return (jnp.maximum(jnp.asarray(n_cycles, jnp.result_type(float)), 0.0)
                / self.n_endurance) ** self.exponent  # fmt: skip

    def failed(self, n_cycles: Float[Array, "*shape"]) -> Bool[Array, "*shape"]:
        """True once the device has passed ``N_end`` cycles (window below ``w_fail``)."""
        return jnp.asarray(n_cycles) >= self.n_endurance

    def window(self, n_cycles: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Remaining memory window as a fraction of the fresh one [-]:
        ``1 - (1 - w_fail) (n / N_end)^k`` before failure, 0 after."""
        w = 1.0 - (1.0 - self.w_fail) * self._wear(n_cycles)
        return jnp.where(self.failed(n_cycles), 0.0, w)

    def apply(
        self,
        g_on: float | Float[Array, "*shape"],
        g_off: float | Float[Array, "*shape"],
        n_cycles: Float[Array, "*shape"],
    ) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
        """(G_on(n), G_off(n)) [S] after ``n_cycles``: ``G_on`` closes towards ``G_off``;
        a failed device has both at ``G_off`` (stuck OFF)."""
        g_on = jnp.asarray(g_on)
        g_off = jnp.asarray(g_off)
        g_on_n = g_off + self.window(n_cycles) * (g_on - g_off)
        return g_on_n, jnp.broadcast_to(g_off, g_on_n.shape)

    def c2c_sigma(self, n_cycles: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Relative cycle-to-cycle sigma after ``n_cycles``: ``sigma0 (1 + g (n/N_end)^k)``."""
        return self.sigma0 * (1.0 + self.sigma_growth * self._wear(n_cycles))


class Retention(eqx.Module):
    """Arrhenius retention failure with lognormal device spread (module docstring).

    Fields:
        tau0: Arrhenius prefactor [s].
        ea_ev: activation energy [eV].
        sigma: standard deviation of ``ln t_fail`` across devices [-].
    """

    tau0: float = _TEN_YEARS_S * math.exp(-1.5 / (K_B_EV * _T85))  # UNCONFIRMED
    ea_ev: float = 1.5  # UNCONFIRMED (1-2 eV for RRAM)
    sigma: float = 1.0  # UNCONFIRMED

    def __check_init__(self):
        check_positive("tau0", self.tau0, "s")
        check_positive("ea_ev", self.ea_ev, "eV")
        check_positive("sigma", self.sigma)

    def median_time(self, temp_k: float | Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """``t_ret(T) = tau0 exp(E_a / (k_B T))`` [s] at temperature ``temp_k`` [K]."""
        return self.tau0 * jnp.exp(self.ea_ev / (K_B_EV * jnp.asarray(temp_k)))

    def fraction_failed(
        self, t_s: Float[Array, "*shape"], temp_k: float | Float[Array, "*shape"]
    ) -> Float[Array, "*shape"]:
        """Fraction of devices failed after ``t_s`` [s] at ``temp_k`` [K] (lognormal CDF)."""
        log_ret = jnp.log(self.tau0) + self.ea_ev / (K_B_EV * jnp.asarray(temp_k))
        return ndtr((jnp.log(t_s) - log_ret) / self.sigma)

    def failure_time(
        self, key: PRNGKeyArray, shape: tuple[int, ...], temp_k: float | Float[Array, "*shape"]
    ) -> Float[Array, "*shape"]:
        """Per-device failure times [s] at ``temp_k``: ``t_ret(T) exp(sigma xi)``."""
        shape = jnp.broadcast_shapes(tuple(shape), jnp.shape(temp_k))
        return self.median_time(temp_k) * jnp.exp(self.sigma * jax.random.normal(key, shape))

    def sample_failed(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...],
        t_s: float | Float[Array, "*shape"],
        temp_k: float | Float[Array, "*shape"],
    ) -> Bool[Array, "*shape"]:
        """Which devices have failed after ``t_s`` [s] at ``temp_k`` [K]."""
        return self.failure_time(key, shape, temp_k) <= t_s


__all__ = ["Endurance", "Retention"]
