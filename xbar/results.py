"""Result codes of the crossbar solve: one item, and one message, per cause of failure.

``Solution.result`` is an item of :class:`RESULTS` (an ``equinox.Enumeration``, in the
manner of lineax's ``RESULTS``): ``RESULTS.successful`` or the first cause found, in
this order of precedence:

1. ``nonfinite``: the cell law returned NaN or inf (nothing a solver can fix);
2. ``breakdown``: the linear solver produced non-finite values, or CG met a direction of
   non-positive curvature, from finite cell currents (e.g. an unplanned march whose
   rounding overflowed);
3. ``ill_conditioned``: the conditioning bound of the system times the machine epsilon of
   the working precision exceeds ``TRUST_LIMIT``: even a residual at rounding level leaves
   no trustworthy digit; use float64 (``jax.config.update("jax_enable_x64", True)``);
4. ``max_iterations``: the Kirchhoff residual of the returned node voltages, computed
   afresh with the exact wire operator, is above ``tol`` after the iteration budget;
5. ``max_principle``: node voltages lie outside the range of the drives (every node of a
   passive network with nondecreasing cell laws lies between the lowest and the highest
   source voltage).

``xbar.solve(..., throw=True)`` raises with the message of the item (``eqx.error_if``,
also under ``jit``; wrap a jitted caller in ``equinox.filter_jit`` for the message alone,
under ``jax.jit`` it appears inside a ``JaxRuntimeError``).
"""

from __future__ import annotations

import equinox as eqx

__all__ = ["RESULTS", "TRUST_LIMIT"]

TRUST_LIMIT = 1e-3
"""Largest ``condition bound x eps`` accepted (above it, fewer than ~3 digits survive)."""


class RESULTS(eqx.Enumeration):
    """Outcome of a crossbar solve (see the module docstring for the precedence)."""

    successful = ""
    max_iterations = (
        "xbar.solve did not converge within the iteration budget: the Kirchhoff residual "
        "of the returned node voltages exceeds tol; raise max_iter / max_newton or tol, "
        "or pass throw=False and inspect Solution.result / residual"
    )
    nonfinite = (
        "xbar.solve did not converge: the cell law returned NaN or inf at the iterates "
        "(check the law over the whole drive range, or its parameters)"
    )
    breakdown = (
        "xbar.solve did not converge: the linear solver broke down (non-finite values or "
        "non-positive curvature from finite cell currents); choose another solver, e.g. "
        "xbar.Direct() or xbar.CG()"
    )
    max_principle = (
        "xbar.solve: node voltages lie outside the range of the drive voltages, which a "
        "passive network cannot produce: the answer is wrong, or the cell law is not "
        "passive (it must be nondecreasing with iv(G, 0) = 0); tighten tol or use float64"
    )
    ill_conditioned = (
        "xbar.solve: the answer cannot be trusted in this precision (the conditioning "
        "bound times the machine epsilon exceeds 1e-3: wire resistances times cell "
        "conductances too large for the dtype); use float64 "
        "(jax.config.update('jax_enable_x64', True))"
    )
