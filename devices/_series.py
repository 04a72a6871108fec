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

This module is the one place where the series equation of a cell stack is solved; the
cell stacks of ``xbar.cells`` use it.  It depends on nothing above ``xbar.devices``.

Reference: safeguarded Newton iteration (Newton-bisection hybrid), e.g. Press et al.,
"Numerical Recipes", 3rd ed. (2007), section 9.4 (``rtsafe``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

Law = Callable[[jax.Array], jax.Array]

MAX_STEPS = 200
"""Safeguarded Newton steps at most (bisection alone needs ~60 in float64)."""


def device_voltage(f: Law, u, r=0.0, s: Law | None = None) -> jax.Array:
    """Voltage [V] over the device ``f`` of a stack at total voltage ``u`` [V].

    Arguments:
        f: device law ``i = f(x)`` [A] (elementwise, nondecreasing, ``f(0) = 0``).
        u: stack voltage [V], any shape.
        r: series resistance [Ohm], ``>= 0``, broadcastable against ``u``.
        s: optional element law ``i = s(w)`` [A] in series (nondecreasing, ``s(0) = 0``).

    Returns ``x`` with the shape of ``broadcast(u, r)``; the stack current is ``f(x)``.
    Differentiable (implicit function theorem) in ``u``, ``r`` and what ``f``/``s`` close
    over.
    """
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
    x = lax.stop_gradient(x)
    hv, hp = h_and_slope(x, r, u)
    hp = lax.stop_gradient(hp)
    return x - jnp.where(hp > 0, hv / jnp.where(hp > 0, hp, 1), 0)


def stack_current(f: Law, u, r=0.0, s: Law | None = None) -> jax.Array:
    """Current [A] through the stack of :func:`device_voltage` at stack voltage ``u``."""
    return f(device_voltage(f, u, r, s))
