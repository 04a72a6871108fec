"""Programming a crossbar to target weights: the common entry point and its report.

:func:`program` takes a programming scheme, a member of :class:`AbstractScheme`:

* :class:`xbar.WriteVerify` (:mod:`xbar.write_verify`): closed loop, iterative
  program-and-verify with incremental step pulses;
* :class:`xbar.OpenLoop` (:mod:`xbar.open_loop`): one calibrated pulse train per cell,
  no verification.

Arbitrary pulse patterns (half-select biasing, write disturb) are in :mod:`xbar.pulses`.

:func:`program` addresses cells as if isolated (1T1R access, or sequential row-by-row
writes whose disturb and line drop are studied separately with :func:`xbar.apply_pulses`):
its pulses reach each cell at their nominal amplitude. Write-verify compensates a line
drop by construction (it steps the amplitude until the verify read is on target), so the
wire resistance changes its pulse count and energy, not its final accuracy. Pulse energy is
``|V| * width * (I_before + I_after) / 2`` per pulse (trapezoid over the state change
during the pulse, at the applied voltage); verify reads cost ``v_read^2 G t_read``.

The report carries a result code (:class:`ProgramResult`, an ``equinox.Enumeration``):
``successful`` when every cell ended within tolerance, else the first cause in the order
``nonfinite``, ``stuck_cells``, ``out_of_tolerance``. ``program(..., throw=True)`` raises
with its message (``eqx.error_if``, also under ``jit``).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._inputs import as_float, check_key, is_concrete
from .cells import Passive


class ProgramResult(eqx.Enumeration):
    """Outcome of :func:`program` (one message per cause)."""

    successful = ""
    out_of_tolerance = (
        "xbar.program: some cells ended outside the tolerance (write-verify: the pulse "
        "budget max_pulses was spent; open loop: no verification); see ProgramReport.success"
    )
    stuck_cells = (
        "xbar.program: some stuck cells (Crossbar.stuck) cannot reach their targets; "
        "see ProgramReport.success"
    )
    nonfinite = (
        "xbar.program: the device model returned a non-finite conductance, state or "
        "energy while programming (check the device parameters and the pulse amplitudes)"
    )


class ProgramReport(eqx.Module):
    """Outcome of programming.

    Attributes:
        pulses: pulses applied to each physical cell ``(M, P)``.
        error: final ``G - G_target`` [S] per cell (noiseless read at ``v_read``).
        rel_error: ``error / (g_max - g_min)``.
        success: ``|rel_error| <= tol`` per cell.
        energy_j: programming energy per cell [J] (pulses + verify reads).
        time_s: programming time [s] if rows are written one after another and all cells
            of a row in parallel, in lock-step: for each row, the sum over pulse numbers
            ``k`` of the longest pulse ``k`` (plus its verify read) among the row's cells.
        result: a :class:`ProgramResult` item.
    """

    pulses: Int[Array, "m p"]
    error: Float[Array, "m p"]
    rel_error: Float[Array, "m p"]
    success: Bool[Array, "m p"]
    energy_j: Float[Array, "m p"]
    time_s: Float[Array, ""]
    result: ProgramResult

    @property
    def success_rate(self):
        return jnp.mean(self.success)

    @property
    def total_energy_j(self):
        return jnp.sum(self.energy_j)


class AbstractScheme(eqx.Module):
    """A programming scheme for :func:`program`.

    Abstract field:
        tol: tolerance on ``|G - G_target|`` as a fraction of ``g_max - g_min`` of the
            mapping (reporting, and the stop rule of closed-loop schemes), in ``(0, 1]``.

    Abstract method: :meth:`run` programs the cells of a crossbar to target conductances."""

    tol: eqx.AbstractVar[float]

    def __check_init__(self):
        if is_concrete(self.tol):
            t = np.asarray(self.tol, dtype=float)
            if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(t <= 1)):
                raise ValueError(f"tol must lie in (0, 1] (fraction of the window), got {self.tol}")

    @abc.abstractmethod
    def run(self, xb, g_target: Float[Array, "m p"], key: PRNGKeyArray):
        """``(state, pulses, energy_j, time_s)`` after programming the cells of ``xb``
        towards ``g_target`` [S] (arrays of the physical shape; ``time_s`` a scalar)."""


def _targets(xb, targets, conductance_targets: bool):
    """Target conductances [S] of the physical cells, validated."""
    name = "targets"
    t = as_float(name, targets)
    mp = xb.mapping
    if conductance_targets:
        if t.shape != xb.physical_shape:
            raise ValueError(
                f"conductance targets must have the physical shape {xb.physical_shape}, "
                f"got {t.shape}"
            )
        msg = "conductance targets must be >= 0 S"

        def bad_of(xp, a):
            return a < 0
    else:
        if t.shape != xb.shape:
            raise ValueError(f"targets must have the logical shape {xb.shape}, got {t.shape}")
        msg = (
            f"targets must lie in the representable range [-w_max, w_max] of the mapping "
            f"(w_max = {mp.w_max if is_concrete(mp.w_max) else 'traced'}); scale the weights"
        )

        def bad_of(xp, a):
            return xp.abs(a) > mp.w_max * (1 + 1e-9)

    if is_concrete((t, mp.w_max)):
        a = np.asarray(t)
        bad = bad_of(np, a)
        if np.any(bad):
            raise ValueError(f"{msg}, got {a[bad].ravel()[0]}")
    else:
        t = eqx.error_if(t, jnp.any(bad_of(jnp, t)), msg)
    return t if conductance_targets else mp.to_conductance(t)


def program(
    xb,
    targets: Float[Array, "m n"],
    scheme: AbstractScheme,
    key: PRNGKeyArray,
    *,
    conductance_targets: bool = False,
    throw: bool = False,
):
    """Program ``xb`` to logical weights ``targets`` (``(M, N)``, finite, within
    ``[-w_max, w_max]`` of the mapping) or, with ``conductance_targets``, to physical
    conductances [S] of shape ``(M, P)`` (finite, ``>= 0``). Returns ``(crossbar, report)``.

    ``scheme``: an :class:`AbstractScheme` (``xbar.WriteVerify(...)``, ``xbar.OpenLoop(...)``).
    ``key``: legacy ``PRNGKey`` or ``jax.random.key``. ``throw``: raise unless the report's
    result is ``successful`` (default False: partial success is an outcome to inspect).
    The new crossbar has no cached effective matrix (conductances changed)."""
    if isinstance(scheme, type) or not isinstance(scheme, AbstractScheme):
        raise ValueError(
            f"scheme must be a programming scheme instance (xbar.WriteVerify(...), "
            f"xbar.OpenLoop(...)), got {scheme!r}"
        )
    key = check_key("key", key)
    if key is None:
        raise ValueError("key must be a PRNG key (programming draws device noise), got None")
    g_t = _targets(xb, targets, conductance_targets)
    state, pulses, energy, time_s = scheme.run(xb, g_t, key)
    new = xb.with_state(state)
    span = xb.mapping.g_max - xb.mapping.g_min
    g_final = eqx.tree_at(lambda c: c.cell, new, Passive()).conductances()
    err = g_final - g_t
    rel = err / span
    success = jnp.abs(rel) <= scheme.tol
    nonfinite = ~(jnp.all(jnp.isfinite(g_final)) & jnp.all(jnp.isfinite(energy)))
    stuck = xb.stuck is not None and jnp.any((xb.stuck != 0) & ~success)
    result = ProgramResult.where(
        nonfinite,
        ProgramResult.nonfinite,
        ProgramResult.where(
            jnp.asarray(stuck),
            ProgramResult.stuck_cells,
            ProgramResult.where(
                jnp.all(success), ProgramResult.successful, ProgramResult.out_of_tolerance
            ),
        ),
    )
    if throw:
        pulses = result.error_if(pulses, result != ProgramResult.successful)
    report = ProgramReport(
        pulses=pulses,
        error=err,
        rel_error=rel,
        success=success,
        energy_j=energy,
        time_s=time_s,
        result=result,
    )
    return new, report


__all__ = ["AbstractScheme", "ProgramReport", "ProgramResult", "program"]
