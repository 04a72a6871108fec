"""Numerically guarded elementary functions shared by the device models.

Device laws are full of ``exp`` and ``sinh`` of large arguments (Arrhenius rates,
field-accelerated hopping). These helpers keep values finite in float32 and
float64 and keep gradients finite where a bound is crossed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# exp(80) ~ 5.5e34 stays finite in float32 (max ~3.4e38) with room for a prefactor.
EXP_ARG_MAX = 80.0


def safe_exp(x):
    """``exp(x)`` with the argument clipped to ``EXP_ARG_MAX`` (no overflow to inf).

    The clip is the documented guard: rates beyond ``exp(80)`` are physically
    saturated anyway (a device switches within one sub-step)."""
    return jnp.exp(jnp.minimum(x, EXP_ARG_MAX))


def safe_sinh(x):
    """``sinh(x)`` with ``|x|`` clipped to ``EXP_ARG_MAX`` so it never overflows."""
    return jnp.sinh(jnp.clip(x, -EXP_ARG_MAX, EXP_ARG_MAX))


def softplus(x, width=1.0):
    """Smooth ``max(x, 0)`` with transition width ``width`` (same units as ``x``)."""
    return width * jax.nn.softplus(x / width)


def smooth_clip(x, lo, hi, width):
    """Clamp ``x`` to ``[lo, hi]`` smoothly (softplus corners of size ``width``).

    Used where a gradient must pass a physical bound; the result stays inside
    ``[lo, hi]`` up to ``width * ln 2``, and equals ``x`` well inside."""
    y = lo + softplus(x - lo, width)
    return hi - softplus(hi - y, width)


def saturate(x, lo, hi):
    """``x`` held within ``[lo, hi]``, with derivative 1 on the closed interval and 0
    outside. ``jnp.clip`` gives 1/2 at a bound (a tie of ``max``/``min``), which halves the
    gradient of a value sitting exactly on it: a 0/1 spike at a DAC's full scale, the
    largest weight after remapping."""
    return jnp.where(x < lo, lo, jnp.where(x > hi, hi, x))


def smooth_step(x, width):
    """Logistic step ``1 / (1 + exp(-x / width))``: a differentiable gate."""
    return jax.nn.sigmoid(x / width)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def solve_linear_sinh(v, v0, b, n_iter):
    """Root ``x >= 0`` of ``g(x) = v0 x + b sinh(x) - v`` for ``v >= 0``, ``v0, b > 0``.

    ``g`` is increasing and convex, so the root lies in ``[0, x_u]`` with the upper bound
    ``x_u = min(v / v0, v / b, ln(1 + 2 v / b))`` (each term is ``>= asinh(v / b)``).
    Halley's method from ``x_u`` (cubic convergence; the correction term is capped at
    twice the Newton step), ``n_iter`` (static) iterations clamped to ``[0, x_u]``.
    ``sinh`` and ``cosh`` come from one ``expm1`` (accurate for small ``x``); ``b sinh x
    <= v`` on ``[0, x_u]`` keeps every term finite. Derivatives are those of the exact
    root (implicit function theorem), not of the iterations."""
    b = jnp.maximum(b, jnp.finfo(jnp.result_type(b)).tiny)
    y = v / b
    x_u = jnp.minimum(jnp.minimum(v / v0, y), jnp.log(1.0 + 2.0 * y))

    def halley(_, x):
        sh, ch = _sinh_cosh(x)
        g2 = b * sh  # g''
        g1 = v0 + b * ch  # g'
        g = v0 * x + g2 - v
        den = jnp.maximum(2.0 * g1 * g1 - g * g2, g1 * g1)
        return jnp.clip(x - 2.0 * g * g1 / den, 0.0, x_u)

    return jax.lax.fori_loop(0, n_iter, halley, x_u, unroll=n_iter <= 2)


def _sinh_cosh(x):
    """``(sinh x, cosh x)`` for ``x >= 0`` from one ``expm1`` (argument capped at
    ``EXP_ARG_MAX``)."""
    em = jnp.expm1(jnp.minimum(x, EXP_ARG_MAX))
    q = em / (em + 1.0)  # 1 - exp(-x)
    return 0.5 * (em + q), 1.0 + 0.5 * em * q


@solve_linear_sinh.defjvp
def solve_linear_sinh_jvp(n_iter, primals, tangents):
    v, v0, b = primals
    dv, dv0, db = tangents
    x = solve_linear_sinh(v, v0, b, n_iter)
    sh, ch = _sinh_cosh(x)
    # g(x; v, v0, b) = 0:  (v0 + b cosh x) dx = dv - x dv0 - sinh(x) db
    return x, (dv - x * dv0 - sh * db) / (v0 + b * ch)


def clamped_normal_moments(mu, s):
    """Mean and variance of ``max(mu + s xi, 0)``, ``xi ~ N(0, 1)``, ``s >= 0`` (the
    rectified normal: ``E = s (z Phi(z) + phi(z))``, ``E[X^2] = s^2 ((1 + z^2) Phi(z) +
    z phi(z))``, ``z = mu / s``)."""
    z_cut = 6.0  # beyond, P(clamp) < 1e-9: the plain normal moments (and no cancellation)
    pos = s > 0
    z = jnp.where(pos, mu / jnp.where(pos, s, 1.0), jnp.sign(mu) * 2 * z_cut)
    zc = jnp.clip(z, -2 * z_cut, z_cut)
    cdf = jax.scipy.special.ndtr(zc)
    pdf = jnp.exp(-0.5 * zc * zc) / jnp.sqrt(2 * jnp.pi).astype(zc.dtype)
    m1 = zc * cdf + pdf
    var1 = (1 + zc * zc) * cdf + zc * pdf - m1 * m1
    far = z >= z_cut
    mean = jnp.where(far, mu, jnp.where(pos, s * m1, jnp.maximum(mu, 0.0)))
    var = jnp.where(far, s * s, jnp.where(pos, s * s * jnp.maximum(var1, 0.0), 0.0))
    return mean, var


def safe_sqrt(x):
    """``sqrt(max(x, 0))`` with a zero (not NaN) derivative at ``x = 0`` (noise
    amplitudes that vanish where nothing moves)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)
