"""Pulse patterns on a crossbar: row/column biasing schemes and the pulses they apply.

* :func:`bias_scheme`: row and column voltages that select a set of cells for a write,
  with the half-select protection of the ``"V/2"`` and ``"V/3"`` schemes (e.g. Chen,
  "A review of emerging non-volatile memory (NVM) technologies and applications",
  Solid-State Electron. 125, 25 (2016); Burr et al., J. Vac. Sci. Technol. B 32, 040802
  (2014), section II: a selected cell sees ``V``, half-selected cells ``V/2`` or ``V/3``).
* :func:`apply_pulses`: one pulse pattern given by row and column voltages; every cell
  sees ``row_v[i] - col_v[j]``, or, with ``ir_drop=True``, the voltage of the solved
  circuit (:func:`xbar.solve` with the columns held at ``col_v``, full nonlinear cell
  I-V), and then evolves by its device dynamics, so half-selected cells are disturbed
  exactly as far as the device physics moves them.

The report carries a result code (:class:`PulseResult`); ``throw=True`` raises with its
message.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._inputs import as_float, check_key, is_concrete
from .solve import solve

_SCHEMES = ("V/2", "V/3", "float")


class PulseResult(eqx.Enumeration):
    """Outcome of :func:`apply_pulses` (one message per cause)."""

    successful = ""
    solve_failed = (
        "xbar.apply_pulses: the circuit solve of the pulse pattern (ir_drop=True) did not "
        "converge; the cell voltages are not trustworthy (see xbar.solve's result)"
    )
    nonfinite = (
        "xbar.apply_pulses: non-finite cell voltages, device state or energy (check the "
        "pulse amplitudes and width against the device model's range)"
    )


class PulseReport(eqx.Module):
    """Outcome of :func:`apply_pulses`: voltage across each cell (stack) [V], energy per
    cell [J], the energy dissipated in the wires, driver and sense resistances [J] (0
    without ``ir_drop``), and a :class:`PulseResult` item."""

    v_cell: Float[Array, "m p"]
    energy_j: Float[Array, "m p"]
    wire_energy_j: Float[Array, ""]
    result: PulseResult


def where_state(mask, a, b):
    """State ``a`` where ``mask``, else ``b`` (leafwise)."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(mask, x, y), a, b)


def pulse_cells(dev, stuck, state, v, width, key):
    """Pulse ``v`` (per cell, 0 = none) of ``width`` [s] on the cells of ``state`` with the
    device ``dev``; cells with a nonzero ``stuck`` mask keep their state. Returns
    ``(state, energy per cell)``, the energy ``|v| width (I_before + I_after) / 2``."""
    new = dev.apply_pulse(state, v, width, key)
    moves = v != 0
    if stuck is not None:
        moves = moves & (stuck == 0)
    new = where_state(moves, new, state)
    i_avg = 0.5 * (dev.current(state, v) + dev.current(new, v))
    return new, jnp.abs(v * i_avg) * width


def bias_scheme(
    shape: tuple[int, int],
    rows: Bool[Array, " m"],
    cols: Bool[Array, " p"],
    v_write: float,
    scheme: str = "V/2",
) -> tuple[Float[Array, " m"], Float[Array, " p"]]:
    """Row and column voltages selecting the cells ``rows x cols`` for a write of ``v_write``.

    ``"V/2"``: selected rows ``V``, selected columns 0, all other lines ``V/2``: half-
    selected cells see ``V/2``, unselected cells 0. ``"V/3"``: selected rows ``V``,
    selected columns 0, unselected rows ``V/3``, unselected columns ``2V/3``: every
    non-selected cell sees ``+-V/3``. ``"float"``: unselected lines at 0 V (no protection;
    a floating line is approximated by ground). ``shape``: positive ``(rows, columns)``;
    ``rows``/``cols``: boolean masks of those lengths; ``v_write`` [V] finite."""
    if not (
        isinstance(shape, (tuple, list))
        and len(shape) == 2
        and all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape)
    ):
        raise ValueError(f"shape must be two positive integers, got {shape!r}")
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme must be 'V/2', 'V/3' or 'float', got {scheme!r}")
    rows = jnp.asarray(rows, bool)
    cols = jnp.asarray(cols, bool)
    if rows.shape != (shape[0],) or cols.shape != (shape[1],):
        raise ValueError(f"rows/cols masks must have shapes ({shape[0]},) and ({shape[1]},)")
    v_write = as_float("v_write", v_write)
    if v_write.ndim != 0:
        raise ValueError(f"v_write must be a scalar voltage [V], got shape {v_write.shape}")
    if scheme == "V/2":
        return jnp.where(rows, v_write, v_write / 2), jnp.where(cols, 0.0, v_write / 2)
    if scheme == "V/3":
        return jnp.where(rows, v_write, v_write / 3), jnp.where(cols, 0.0, 2 * v_write / 3)
    return jnp.where(rows, v_write, 0.0), jnp.zeros(shape[1], v_write.dtype)


def _check_width(width_s):
    w = as_float("width_s", width_s, finite=False)
    msg = "width_s (pulse width) must be finite and > 0 s"
    if is_concrete(w):
        a = np.asarray(w)
        if not np.all(np.isfinite(a) & (a > 0)):
            raise ValueError(f"{msg}, got {a if a.ndim == 0 else a.ravel()[0]}")
        return w
    return eqx.error_if(w, ~jnp.all(jnp.isfinite(w) & (w > 0)), msg)


def apply_pulses(
    xb,
    row_v: Float[Array, " m"],
    col_v: Float[Array, " p"],
    width_s: float,
    key: PRNGKeyArray | None = None,
    *,
    ir_drop: bool = False,
    throw: bool = False,
):
    """Apply one pulse pattern: rows driven to ``row_v``, columns to ``col_v`` [V], for
    ``width_s`` [s] (finite, ``> 0``).

    Without ``ir_drop`` cell ``(i, j)`` sees ``row_v[i] - col_v[j]``. With ``ir_drop=True``
    the line voltages come from :func:`xbar.solve` of the whole array with the wiring of
    ``xb`` (rows driven through ``r_src`` at their column-0 end, columns held at ``col_v``
    through ``r_sense`` at their row-``M-1`` end, every cell with its full nonlinear I-V
    at the pulse voltage, access element included): cells far from the drivers see less
    than the nominal voltage, and sneak currents load the lines. The operating point is
    that of the cell states at the start of the pulse and is held for the pulse (a cell
    that switches during the pulse changes the drop it causes; split a long pulse into
    shorter calls to follow that).

    Every cell then evolves by the device dynamics (``device.apply_pulse``) at its
    voltage. Returns the new crossbar (no cached effective matrix) and a
    :class:`PulseReport`; with ``ir_drop`` its ``wire_energy_j`` is the power delivered by
    the row and column drivers minus the power taken by the cells, times ``width_s``.
    ``throw``: raise unless the result is ``successful``."""
    m, p = xb.physical_shape
    row_v = as_float("row_v", row_v)
    col_v = as_float("col_v", col_v)
    if row_v.shape != (m,) or col_v.shape != (p,):
        raise ValueError(
            f"row_v and col_v must have shapes ({m},) and ({p},); got {row_v.shape} and "
            f"{col_v.shape}"
        )
    width_s = _check_width(width_s)
    key = check_key("key", key)
    dtype = jnp.result_type(row_v, col_v, float)
    wire_e = jnp.zeros((), dtype)
    solved = jnp.array(True)
    if ir_drop:
        state = xb.state

        def iv(_g, x):
            return xb.device.current(state, x)

        g = xb.device.conductance(state, xb.dac.v_read)
        sol = solve(
            g, row_v, v_col=col_v, iv=iv, cell=xb.cell, throw=False, **xb.wiring.solve_kwargs()
        )
        v = sol.v_wl - sol.v_bl
        p_src = row_v @ jnp.sum(sol.i_cell, axis=-1) - col_v @ sol.i_out
        wire_e = (p_src - jnp.sum(v * sol.i_cell)) * width_s
        solved = sol.converged
    else:
        v = row_v[:, None] - col_v[None, :]
    state, energy = pulse_cells(xb.device, xb.stuck, xb.state, v, width_s, key)
    new = xb.with_state(state)
    finite = jnp.all(jnp.isfinite(v)) & jnp.all(jnp.isfinite(energy))
    for leaf in jax.tree_util.tree_leaves(state):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            finite = finite & jnp.all(jnp.isfinite(leaf))
    result = PulseResult.where(
        ~finite,
        PulseResult.nonfinite,
        PulseResult.where(solved, PulseResult.successful, PulseResult.solve_failed),
    )
    if throw:
        energy = result.error_if(energy, result != PulseResult.successful)
    return new, PulseReport(v_cell=v, energy_j=energy, wire_energy_j=wire_e, result=result)


__all__ = [
    "PulseReport",
    "PulseResult",
    "apply_pulses",
    "bias_scheme",
    "pulse_cells",
    "where_state",
]
