"""Series solve of a two-terminal stack: a device in series with a resistor and an element.

A cell stack carries one current ``i`` through a device of law ``i = f(x)`` (``x``: the
voltage over the device), a series resistance ``r`` (e.g. an access transistor in its
on state) and, optionally, a second element of law ``i = s(w)`` (e.g. a selector), all
at a total voltage ``u`` over the stack.  The device voltage ``x`` is the root of

    h(x) = x + r f(x) - u                      (no element),
    h(x) = f(x) - s(u - x - r f(x))            (with an element).

For passive laws (``f``, ``s`` nondecreasing, ``f(0) = s(0) = 0``) ``h`` increases with
``x`` and the root lies between 0 and ``u``.  It is found elementwise by Newton's method
safeguarded by bisection on that bracket (every iterate stays in it, so a steep law
cannot overflow); the resistance form of the first equation keeps ``r = 0`` exact (no
conductance ``1/r`` anywhere).  The derivative is that of the exact root (implicit
function theorem): the iteration runs without gradients, and one last Newton step
``x* - h(x*) / h'(x*)`` with ``h'`` held constant carries ``dx = -dh / h'``.

Fast path for a sinh law.  When the device law is :class:`SinhLaw`, ``f(x) = i0
sinh(x / v0)``, and no element is in series, the equation is ``x + r i0 sinh(x / v0) =
u``: odd in ``x`` and, for ``x > 0``, increasing and convex.  It is solved on ``|u|`` by a
fixed number of Halley iterations from an upper bound of the root
(:func:`xbar.devices._math.solve_linear_sinh`; cubic convergence, three iterations
reach rounding for ``|u| <= 4 V`` and ``r i0`` from 1e-7 to 1e3 V) instead of the
safeguarded loop: a static iteration count, no data-dependent loop, as inside the gap
steps of a pulse.  The derivative is the same implicit one as above.

This module is the one place where the series equation of a cell stack is solved; the
cell stacks of ``xbar.cells`` and the access element of ``StanfordPKU`` use it.  It
depends on nothing above ``xbar.devices``.

References: safeguarded Newton iteration (Newton-bisection hybrid), e.g. Press et al.,
"Numerical Recipes", 3rd ed. (2007), section 9.4 (``rtsafe``); Halley's method, e.g.
Press et al., section 9.4 (Halley's rational correction).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from ._math import safe_sinh, solve_linear_sinh

Law = Callable[[jax.Array], jax.Array]

MAX_STEPS = 200
"""Safeguarded Newton steps at most (bisection alone needs ~60 in float64)."""


class SinhLaw(eqx.Module):
    """Device law ``i = i0 sinh(x / v0)`` (tunnelling or hopping conduction).

    Fields: ``i0`` [A] (``>= 0``, an array broadcastable against the stack voltage),
    ``v0`` [V] (``> 0``).  :func:`device_voltage` solves a stack of this law and a series
    resistance by Halley's method (module docstring)."""

    i0: jax.Array | float
    v0: jax.Array | float

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.i0 * safe_sinh(x / self.v0)


def _sinh_root(f: SinhLaw, u, r, halley_steps: int):
    """Root of ``x + r i0 sinh(x / v0) = u`` (no gradient), shape ``broadcast(u, r, i0)``."""
    u, r, i0, v0 = (lax.stop_gradient(jnp.asarray(a)) for a in (u, r, f.i0, f.v0))
    z = solve_linear_sinh(jnp.abs(u), v0, r * i0, halley_steps)
    return jnp.sign(u) * v0 * z


def device_voltage(f: Law, u, r=0.0, s: Law | None = None, *, halley_steps: int = 3) -> jax.Array:
    """Voltage [V] over the device ``f`` of a stack at total voltage ``u`` [V].

    Arguments:
        f: device law ``i = f(x)`` [A] (elementwise, nondecreasing, ``f(0) = 0``).
        u: stack voltage [V], any shape.
        r: series resistance [Ohm], ``>= 0``, broadcastable against ``u``.
        s: optional element law ``i = s(w)`` [A] in series (nondecreasing, ``s(0) = 0``).

        halley_steps: Halley iterations of the sinh-law fast path (static, ``>= 1``;
            used when ``f`` is a :class:`SinhLaw` and ``s`` is None).

    Returns ``x`` with the shape of ``broadcast(u, r)`` (and of ``f.i0`` on the fast
    path); the stack current is ``f(x)``.  Differentiable (implicit function theorem) in
    ``u``, ``r`` and what ``f``/``s`` close over.
    """
    if isinstance(f, SinhLaw) and s is None:
        if not (isinstance(halley_steps, int) and halley_steps >= 1):
            raise ValueError(f"halley_steps must be an int >= 1, got {halley_steps!r}")
        u = jnp.asarray(u)
        r = jnp.asarray(r, u.dtype)
        return _sinh_implicit_step(f, u, r, _sinh_root(f, u, r, halley_steps))
    u = jnp.asarray(u)
    r = jnp.asarray(r, u.dtype)
    u, r = jnp.broadcast_arrays(u, r)

    def h(x, r, u):
        fx = f(x)
        if s is None:
            return x + r * fx - u
        return fx - s(u - x - r * fx)

    def h_and_slope(x, r, u):
        return jax.jvp(lambda x: h(x, r, u), (x,), (jnp.ones_like(x),))

    rs, us = lax.stop_gradient(r), lax.stop_gradient(u)
    lo, hi = jnp.minimum(us, 0), jnp.maximum(us, 0)
    tiny = jnp.finfo(us.dtype).tiny
    eps = 8 * jnp.finfo(us.dtype).eps * jnp.maximum(jnp.abs(us), tiny)

    def cond(state):
        _, _, _, dx, k = state
        return (k < MAX_STEPS) & jnp.any(jnp.abs(dx) > eps)

    def body(state):
        x, lo, hi, _, k = state
        hv, hp = h_and_slope(x, rs, us)
        lo = jnp.where(hv < 0, x, lo)
        hi = jnp.where(hv > 0, x, hi)
        xn = x - hv / jnp.where(hp > 0, hp, 1)
        ok = (hp > 0) & (xn > lo) & (xn < hi)
        xn = jnp.where(hv == 0, x, jnp.where(ok, xn, 0.5 * (lo + hi)))
        # a bisection step counts as converged once the bracket is below rounding
        dx = jnp.where(ok | (hv == 0), xn - x, hi - lo)
        return xn, lo, hi, dx, k + 1

    x0 = 0.5 * (lo + hi)
    x, *_ = lax.while_loop(cond, body, (x0, lo, hi, hi - lo, jnp.array(0)))
    return _implicit_step(lambda x: h(x, r, u), x)


def _sinh_implicit_step(f: SinhLaw, u, r, x):
    """:func:`_implicit_step` for ``h(x) = x + r i0 sinh(x / v0) - u``, with its slope
    ``h' = 1 + r i0 cosh(x / v0) / v0 >= 1`` written out (no guard needed)."""
    x = lax.stop_gradient(x)
    a = r * f.i0
    hp = lax.stop_gradient(1.0 + a * jnp.cosh(x / f.v0) / f.v0)
    # |x| / v0 stays below the overflow of sinh: a sinh(|x| / v0) <= |u| at the root
    return x - (x + a * jnp.sinh(x / f.v0) - u) / hp


def _implicit_step(h: Law, x: jax.Array) -> jax.Array:
    """``x* - h(x*) / h'(x*)`` at the root ``x*`` with ``h'`` held constant: the value
    ``x*`` and the derivative ``dx = -dh / h'`` of the exact root."""
    x = lax.stop_gradient(x)
    hv, hp = jax.jvp(h, (x,), (jnp.ones_like(x),))
    hp = lax.stop_gradient(hp)
    return x - jnp.where(hp > 0, hv / jnp.where(hp > 0, hp, 1), 0)


def stack_current(f: Law, u, r=0.0, s: Law | None = None, *, halley_steps: int = 3) -> jax.Array:
    """Current [A] through the stack of :func:`device_voltage` at stack voltage ``u``."""
    return f(device_voltage(f, u, r, s, halley_steps=halley_steps))
