"""Iterative refinement of an approximate inverse against the exact crossbar operator.

With an approximate inverse ``inv`` of ``K`` (a factorisation with floored
zero-resistance segments, or a march with amplified rounding), ``z += inv(b - K z)``
converges to the exact solution whenever ``||I - inv K|| < 1``; the residual test applies
the exact operator, so an inexact ``inv`` can slow the answer down but never make it
silently wrong (Golub & Van Loan, "Matrix Computations", 4th ed. (2013), section 3.5.3).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from . import _wires


def refine(inv, op, b, tol, max_iter):
    """Iterative refinement ``z += inv(b - K z)`` until ``||b - K z|| <= tol ||b||``.

    ``op(z)`` returns ``(K z, aux)``; the ``aux`` of the returned ``z`` is returned too
    (the wire drops ``A S z``, which the caller would otherwise compute again).
    """
    thresh = (tol * tol) * _wires.dot(b, b)

    def cond(state):
        _, r, _, k = state
        return (k < max_iter) & jnp.any(_wires.dot(r, r) > thresh)

    def residual(z):
        Kz, aux = op(z)
        return b - Kz, aux

    def body(state):
        z, r, _, k = state
        z = z + inv(r)
        return (z, *residual(z), k + 1)

    z = inv(b)
    z, r, aux, k = lax.while_loop(cond, body, (z, *residual(z), jnp.array(1, jnp.int32)))
    return z, k, (_wires.dot(r, r) <= thresh)[..., 0, 0], aux
