"""xbar: crossbar arrays of memristive devices (circuit solve, peripherals, programming).

Layers (bottom to top): ``xbar.devices`` (one cell's physics) -> ``xbar`` (arrays) ->
``xbar.networks`` (neurosynaptic cores) -> ``xbar.learning`` (on-chip learning).
``xbar.networks`` and ``xbar.learning`` sit above this package, so it does not import
them; ``xbar.networks`` / ``xbar.learning`` as attributes load them on first use.
"""

import importlib as _importlib

from . import cells, devices, presets
from .calibration import calibrate_columns
from .crossbar import Crossbar, Wiring
from .energy import ReadEnergy, array_power, read_energy, write_summary
from .host import tune_allocator
from .ir_drop import effective_matrix_first_order, ir_drop_fraction
from .mapping import AbstractMapping, DifferentialMapping, ReferenceMapping
from .open_loop import OpenLoop
from .peripherals import (
    ADC,
    DAC,
    AbstractADC,
    AbstractDAC,
    AbstractDACEncoding,
    AmplitudeEncoding,
    BitSerialEncoding,
    NoisyADC,
    NoisyDAC,
    PulseWidthEncoding,
    SenseAmp,
    ideal_adc,
    ideal_dac,
)
from .programming import AbstractScheme, ProgramReport, ProgramResult, program
from .pulses import PulseReport, PulseResult, apply_pulses, bias_scheme
from .read_modes import (
    AbstractNoiseDraw,
    AbstractWirePath,
    EffectiveMatrix,
    LinearSolve,
    NonlinearSolve,
    NoWires,
    PerCall,
    PerRead,
)
from .results import RESULTS
from .solve import Solution, effective_matrix, solve
from .solvers import (
    CG,
    AbstractPreconditioner,
    AbstractSolver,
    Auto,
    Direct,
    Jacobi,
    LinePreconditioner,
    March,
)
from .sweep import sweep
from .tiling import TiledCrossbar
from .write_verify import WriteVerify

__all__ = [
    "devices",
    "learning",
    "networks",
    "ADC",
    "AbstractADC",
    "AbstractDAC",
    "AbstractDACEncoding",
    "AmplitudeEncoding",
    "BitSerialEncoding",
    "PulseWidthEncoding",
    "AbstractMapping",
    "AbstractScheme",
    "DAC",
    "NoisyADC",
    "NoisyDAC",
    "ProgramResult",
    "PulseResult",
    "calibrate_columns",
    "cells",
    "presets",
    "Crossbar",
    "DifferentialMapping",
    "OpenLoop",
    "ProgramReport",
    "PulseReport",
    "ReadEnergy",
    "ReferenceMapping",
    "SenseAmp",
    "Solution",
    "RESULTS",
    "AbstractPreconditioner",
    "AbstractSolver",
    "Auto",
    "CG",
    "Direct",
    "Jacobi",
    "LinePreconditioner",
    "March",
    "TiledCrossbar",
    "AbstractNoiseDraw",
    "AbstractWirePath",
    "EffectiveMatrix",
    "LinearSolve",
    "NonlinearSolve",
    "NoWires",
    "PerCall",
    "PerRead",
    "Wiring",
    "WriteVerify",
    "apply_pulses",
    "array_power",
    "bias_scheme",
    "effective_matrix",
    "effective_matrix_first_order",
    "ideal_adc",
    "ideal_dac",
    "ir_drop_fraction",
    "program",
    "read_energy",
    "solve",
    "sweep",
    "tune_allocator",
    "write_summary",
]


def __getattr__(name):
    # the layers above this one load on first attribute access (PEP 562), so that
    # ``import xbar; xbar.networks`` works without an import that runs up the layers
    if name in ("networks", "learning"):
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
