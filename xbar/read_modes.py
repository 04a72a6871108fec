"""The choices of a crossbar read (``Crossbar.mvm``): how it treats the wires, how it draws noise.

Wires (``ir_drop=``):

* ``None`` (default): the cached effective matrix when the crossbar carries one
  (``Crossbar.with_effective_matrix``), else :class:`EffectiveMatrix` when the wires are
  resistive and :class:`NoWires` when they are ideal;
* :class:`NoWires`: wire resistance ignored (the cell conductances are read directly);
* :class:`EffectiveMatrix`: a linear read through the effective matrix (cached, or computed
  for this read with ``xbar.effective_matrix``); exact for linear cells;
* :class:`LinearSolve`: ``xbar.solve`` per read with linear (chord) cells;
* :class:`NonlinearSolve`: ``xbar.solve`` per read with the full cell I-V in the cell stack
  (for pulse-width encoding the chord at ``v_read`` is used, exact without wires).

Device read noise (``read_noise=``; :mod:`xbar.read_noise`):

* :class:`PerRead` (default): every read (input vector, bit-serial phase) draws its own
  noise, independent of the other reads, as the devices' read-noise models describe one
  read. With ``per_cell=False`` a linear read of a device with known per-cell moments
  draws the noise at the outputs from those moments (exact in distribution for Gaussian
  cells); otherwise, or with ``per_cell=True``, every cell of every read is drawn;
* :class:`PerCall`: one draw of every cell, shared by all reads of the call: the limit of
  noise whose correlation time is long against the reads (the low-frequency part of 1/f
  noise), and the convention of aihwkit's inference tiles, which draw PCM read noise into
  the weights once per evaluation (Rasch et al., Nat. Commun. 14:5282, 2023).
  ``Crossbar.with_read_noise_frozen`` keeps such a draw across calls.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx


class AbstractWirePath(eqx.Module):
    """How a read treats the wires (module docstring)."""

    mode: ClassVar[str]


class NoWires(AbstractWirePath):
    """Ignore wire resistance."""

    mode: ClassVar[str] = "none"


class EffectiveMatrix(AbstractWirePath):
    """Linear read through the (cached or freshly computed) effective matrix."""

    mode: ClassVar[str] = "effective"


class LinearSolve(AbstractWirePath):
    """``xbar.solve`` per read with linear cells."""

    mode: ClassVar[str] = "solve"


class NonlinearSolve(AbstractWirePath):
    """``xbar.solve`` per read with the full cell I-V of the cell stack."""

    mode: ClassVar[str] = "nonlinear"


class AbstractNoiseDraw(eqx.Module):
    """How device read noise is drawn over the reads of a call (module docstring)."""

    mode: ClassVar[str]


class PerRead(AbstractNoiseDraw):
    """Independent noise per read; ``per_cell`` forces a draw of every cell (exact for any
    noise model, e.g. random telegraph noise) instead of the output moments."""

    per_cell: bool = eqx.field(default=False, static=True)

    @property
    def mode(self) -> str:  # type: ignore[override]
        return "cells" if self.per_cell else "auto"


class PerCall(AbstractNoiseDraw):
    """One draw of every cell shared by all reads of the call."""

    mode: ClassVar[str] = "snapshot"


def wire_mode(ir_drop) -> str:
    """The internal mode of an ``ir_drop`` choice; ValueError naming the classes for
    anything else (strings included)."""
    if ir_drop is None:
        return "auto"
    if isinstance(ir_drop, AbstractWirePath):
        return ir_drop.mode
    raise ValueError(
        "ir_drop must be None (the crossbar's choice) or one of xbar.NoWires(), "
        f"xbar.EffectiveMatrix(), xbar.LinearSolve(), xbar.NonlinearSolve(); got {ir_drop!r}"
    )


def noise_mode(read_noise) -> str:
    """The internal mode of a ``read_noise`` choice; ValueError naming the classes for
    anything else (strings included)."""
    if isinstance(read_noise, AbstractNoiseDraw):
        return read_noise.mode
    raise ValueError(
        "read_noise must be xbar.PerRead(), xbar.PerRead(per_cell=True) or xbar.PerCall(); "
        f"got {read_noise!r}"
    )


__all__ = [
    "AbstractNoiseDraw",
    "AbstractWirePath",
    "EffectiveMatrix",
    "LinearSolve",
    "NoWires",
    "NonlinearSolve",
    "PerCall",
    "PerRead",
    "noise_mode",
    "wire_mode",
]
