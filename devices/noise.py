"""Read noise of memristive devices: 1/f (flicker) noise and random telegraph noise.

1/f noise: the conductance power spectral density follows ``S_G / G^2 = Q / f``.
Integrated over a measurement band ``[f_min, f_max]`` the relative standard
deviation of one read is ``sigma_G / G = sqrt(Q ln(f_max / f_min))``; ``f_max`` is
set by the read bandwidth (about ``1 / (2 t_read)``) and ``f_min`` by the time over
which the device has been observed (Hooge-type noise; the integrated form is the
one used for PCM by Joshi et al., Nat. Commun. 11, 2473 (2020), and for RRAM in
e.g. Ambrogio et al., IEEE TED 62(11), 2015).

Random telegraph noise (RTN): a single two-level fluctuator (a trap near the
filament) switches between a low and a high state with mean dwell times
``tau_low_s`` and ``tau_high_s``; the conductance is ``G0 (1 + a s)``,
``s in {0, 1}`` (e.g. Ielmini et al., Appl. Phys. Lett. 96, 053503 (2010)). The
stationary occupancy of the high state is ``tau_high / (tau_low + tau_high)``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._checks import check_nonnegative, check_positive, check_range


def flicker_sigma(g, q, f_min_hz, f_max_hz):
    """Standard deviation [S] of one read of conductance ``g`` [S] with 1/f noise.

    ``sigma = |g| sqrt(q ln(f_max / f_min))`` (integral of ``q / f`` over the band)."""
    return jnp.abs(g) * jnp.sqrt(q * jnp.log(f_max_hz / f_min_hz))


class ReadNoise(eqx.Module):
    """Read noise of one device read: 1/f noise over a band plus one RTN fluctuator.

    Fields:
        q_flicker: 1/f coefficient ``Q`` in ``S_G/G^2 = Q/f`` [-]. 0 disables it.
            Default 1e-4 is typical of filamentary HfOx LRS (UNCONFIRMED: order of
            magnitude from the RRAM noise literature, not one paper's fit).
        f_min_hz: lower edge of the band [Hz] (1 / observation time).
        f_max_hz: upper edge of the band [Hz] (read bandwidth, ~1/(2 t_read)).
        rtn_amplitude: relative conductance jump ``a = dG/G`` of the fluctuator [-].
        tau_low_s, tau_high_s: mean dwell times in the low and high state [s].
    """

    q_flicker: float = 1e-4
    f_min_hz: float = 1.0
    f_max_hz: float = 1e6
    rtn_amplitude: float = 0.0
    tau_low_s: float = 1e-3
    tau_high_s: float = 1e-3

    def __check_init__(self):
        check_nonnegative("q_flicker", self.q_flicker)
        check_positive("f_min_hz", self.f_min_hz, "Hz")
        check_positive("f_max_hz", self.f_max_hz, "Hz")
        check_range("rtn_amplitude", self.rtn_amplitude, -1.0, 10.0)
        check_positive("tau_low_s", self.tau_low_s, "s")
        check_positive("tau_high_s", self.tau_high_s, "s")

    @property
    def p_high(self):
        """Stationary probability that the fluctuator is in its high state."""
        return self.tau_high_s / (self.tau_low_s + self.tau_high_s)

    def sigma(self, g):
        """1/f standard deviation [S] of a read of conductance ``g`` [S]."""
        return flicker_sigma(g, self.q_flicker, self.f_min_hz, self.f_max_hz)

    def moments(self, g, sigma=None):
        """Mean [S] and variance [S^2] of :meth:`sample` at conductance ``g`` [S] (1/f
        standard deviation ``sigma``, default :meth:`sigma`), or ``None`` unless
        ``rtn_amplitude`` is known to be 0: the 1/f part is Gaussian (mean ``g``,
        variance ``sigma^2``); random telegraph noise is two-level, not Gaussian."""
        if not is_known_zero(self.rtn_amplitude):
            return None
        return g, (self.sigma(g) if sigma is None else sigma) ** 2

    def sample(self, key: PRNGKeyArray, g: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """One noisy read of conductances ``g`` [S]: independent per device and per call.

        The RTN state is drawn from its stationary distribution (reads far apart
        compared with the dwell times); use :func:`telegraph_trace` for a time series."""
        k_f, k_r = jax.random.split(key)
        g = jnp.asarray(g)
        noisy = g + self.sigma(g) * jax.random.normal(k_f, g.shape, g.dtype)
        s = jax.random.bernoulli(k_r, self.p_high, g.shape).astype(g.dtype)
        return noisy * (1.0 + self.rtn_amplitude * s)


def is_known_zero(x) -> bool:
    """True when ``x`` is known (a concrete value, not traced) to be 0."""
    if isinstance(x, (int, float)):
        return x == 0
    if isinstance(x, jax.core.Tracer):
        return False
    try:
        return bool(jnp.all(jnp.asarray(x) == 0))
    except (TypeError, jax.errors.ConcretizationTypeError):
        return False


def telegraph_trace(
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    n_steps: int,
    dt_s: float,
    tau_low_s: float,
    tau_high_s: float,
) -> Float[Array, " n_steps *shape"]:
    """Time series of a two-state telegraph process ``s(t) in {0, 1}``.

    Exact sampling of the continuous-time Markov chain at times ``k dt``: with rates
    ``a = 1/tau_low`` (low -> high) and ``b = 1/tau_high`` (high -> low), the
    transition probabilities over ``dt`` are ``P(low->high) = a/(a+b) (1 - e^{-(a+b)dt})``
    and ``P(high->low) = b/(a+b) (1 - e^{-(a+b)dt})`` (matrix exponential of the
    generator). Starts from the stationary distribution ``P(high) = a / (a + b)``.
    Returns ``(n_steps, *shape)`` values 0.0 / 1.0."""
    if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 0):
        raise ValueError(f"telegraph_trace: n_steps must be an int >= 0, got {n_steps!r}")
    check_positive("dt_s", dt_s, "s")
    check_positive("tau_low_s", tau_low_s, "s")
    check_positive("tau_high_s", tau_high_s, "s")
    a, b = 1.0 / tau_low_s, 1.0 / tau_high_s
    relax = 1.0 - jnp.exp(-(a + b) * dt_s)
    p_up = a / (a + b) * relax
    p_down = b / (a + b) * relax
    k0, k_steps = jax.random.split(key)
    s0 = jax.random.bernoulli(k0, tau_high_s / (tau_low_s + tau_high_s), shape)

    def step(s, k):
        u = jax.random.uniform(k, shape)
        flip = jnp.where(s, u < p_down, u < p_up)
        s_new = jnp.logical_xor(s, flip)
        return s_new, s_new

    _, trace = jax.lax.scan(step, s0, jax.random.split(k_steps, n_steps))
    return trace.astype(jnp.result_type(float))
