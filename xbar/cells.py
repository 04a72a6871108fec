"""Cell stacks: what sits between a word-line node and a bit-line node of a crossbar.

A crossbar cell is a *stack*: one memristive device in series with nothing (passive
array, "0T1R"), with an access transistor (1T1R), with a two-terminal selector (1S1R),
or with any other two-terminal element.  One current ``i`` flows through the whole
stack at the stack voltage ``v`` (word-line node minus bit-line node):

    passive:  i = f(v)
    1T1R:     i = f(x),   x + r_access f(x) = v                 (transistor on, linear)
    1S1R:     i = f(x) = s(v - x - r_series f(x)),  s(w) = i0 sinh(w / v0)
    series:   i = f(x) = s(v - x - r_series f(x))  with any element law s

with ``f`` the device law ``i = f(x)`` at device voltage ``x``.  The stack equation is
solved elementwise by ``xbar.devices._series`` (safeguarded Newton on the bracket
``[0, v]``, implicit derivative), the one solver of this equation in the project.  For a
linear device ``f(x) = g x`` a stack of linear elements is again linear, of conductance
``g / (1 + r g)`` (:meth:`AbstractCell.linear_conductance`), which ``xbar.solve`` uses to
keep its linear fast path.

The 1T1R transistor is modelled in its on state (full gate drive, triode region) as a
resistance ``r_access`` (e.g. Yu, "Neuro-inspired computing with emerging nonvolatile
memory", Proc. IEEE 106, 260 (2018), Fig. 6; Chen et al., "NeuroSim", IEEE TCAD 37, 3067
(2018), section III).  The selector law ``i0 sinh(v / v0)`` is the generic symmetric
threshold-less selector of crossbar studies (Burr et al., "Access devices for 3D
crossbar memory", J. Vac. Sci. Technol. B 32, 040802 (2014), section II); its defaults
are UNCONFIRMED (they give a half-select ratio ``I(V)/I(V/2)`` of 10-100 near 1 V).

How a stack is used:

* ``xbar.solve(G, v_in, ..., iv=..., cell=xbar.cells.OneTOneR(r_access=2e3))``: the
  cell law of the nodal solve is ``cell.current(lambda x: iv(G, x), v)`` (``iv=None``:
  linear devices ``G x``, solved as linear cells of conductance
  ``cell.linear_conductance(G)`` where that is not ``None``).
* ``xbar.Crossbar`` holds one stack (a field ``cell: AbstractCell``, default
  ``Passive()``; ``Wiring`` holds only wires).  Its cell current is
  ``cell.current(lambda x: device.current(state, x), v)``; its chord conductance at
  the read voltage is that current over ``v``; a nonlinear read passes the device law
  as ``iv`` and the stack as ``cell=`` to ``xbar.solve`` (never a folded law of its own).

Stacks are ``equinox`` modules; their parameters may be arrays broadcastable to the
array shape ``(M, N)`` (per-cell access resistances), and they are differentiable.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from xbar.devices._math import safe_sinh
from xbar.devices._series import stack_current

__all__ = ["AbstractCell", "OneSOneR", "OneTOneR", "Passive", "Series"]

Law = Callable[[Array], Array]


def _check(name: str, value, unit: str, positive: bool) -> None:
    """Concrete values: finite and ``> 0`` (``positive``) or ``>= 0``; else ValueError."""
    if isinstance(value, jax.core.Tracer):
        return
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{name} must be a real number [{unit}]; got {value!r}")
    bad = ~np.isfinite(a) | ((a <= 0) if positive else (a < 0))
    if np.any(bad):
        rng = "finite and > 0" if positive else "finite and >= 0"
        raise ValueError(f"{name} must be {rng} [{unit}]; got {a[bad].ravel()[0] if a.ndim else a}")


class AbstractCell(eqx.Module):
    """A cell stack: a device in series with its access element(s).

    Subclasses implement :meth:`current` and :meth:`linear_conductance`.
    """

    @abc.abstractmethod
    def current(self, device_current: Law, v: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Stack current [A] at stack voltage ``v`` [V] for the device law
        ``device_current(x) -> i`` [A] (elementwise, nondecreasing, zero at 0)."""

    @abc.abstractmethod
    def linear_conductance(self, g: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"] | None:
        """Conductance [S] of the stack around a linear device of conductance ``g`` [S],
        or ``None`` if the stack is then still nonlinear."""


class Passive(AbstractCell):
    """The device alone (passive crossbar): ``i = f(v)``."""

    def current(self, device_current, v):
        return device_current(jnp.asarray(v))

    def linear_conductance(self, g):
        return jnp.asarray(g)


class OneTOneR(AbstractCell):
    """1T1R: the device in series with an access transistor in its on state.

    Fields:
        r_access: transistor on-resistance [Ohm], ``>= 0``, scalar or broadcastable to
            the array shape. Default 1 kOhm (UNCONFIRMED: typical of a minimum-size
            transistor at full gate drive).
    """

    r_access: float | Array = 1e3

    def __check_init__(self):
        _check("r_access", self.r_access, "Ohm", positive=False)

    def current(self, device_current, v):
        return stack_current(device_current, v, self.r_access)

    def linear_conductance(self, g):
        g = jnp.asarray(g)
        return g / (1 + jnp.asarray(self.r_access, g.dtype) * g)


class OneSOneR(AbstractCell):
    """1S1R: the device in series with a selector ``i = i0 sinh(w / v0)`` (and an
    optional series resistance ``r_series``).

    Fields:
        i0: selector current prefactor [A], ``> 0``. Default 1e-7 A (UNCONFIRMED).
        v0: selector voltage scale [V], ``> 0``. Default 0.1 V (UNCONFIRMED).
        r_series: extra series resistance [Ohm], ``>= 0``. Default 0.
    """

    i0: float | Array = 1e-7
    v0: float | Array = 0.1
    r_series: float | Array = 0.0

    def __check_init__(self):
        _check("i0", self.i0, "A", positive=True)
        _check("v0", self.v0, "V", positive=True)
        _check("r_series", self.r_series, "Ohm", positive=False)

    def selector(self, w):
        """Selector current [A] at selector voltage ``w`` [V] (``sinh`` argument clipped
        so that it never overflows)."""
        return self.i0 * safe_sinh(w / self.v0)

    def current(self, device_current, v):
        return stack_current(device_current, v, self.r_series, self.selector)

    def linear_conductance(self, g):
        return None


class Series(AbstractCell):
    """The device in series with a generic two-terminal element ``i = element(w)``
    (elementwise, nondecreasing, ``element(0) = 0``) and a series resistance.

    Fields:
        element: the element law [A] of its voltage [V] (a Python callable; static).
        r_series: series resistance [Ohm], ``>= 0``. Default 0.
    """

    element: Law = eqx.field(static=True)
    r_series: float | Array = 0.0

    def __check_init__(self):
        if not callable(self.element):
            raise ValueError(f"element must be a callable i = element(w); got {self.element!r}")
        _check("r_series", self.r_series, "Ohm", positive=False)

    def current(self, device_current, v):
        return stack_current(device_current, v, self.r_series, self.element)

    def linear_conductance(self, g):
        return None
