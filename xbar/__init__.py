"""xbar: crossbar arrays of memristive devices (circuit solve, peripherals, programming).

Layers (bottom to top): ``devices`` (one cell's physics) -> ``xbar`` (arrays) ->
``networks`` (neurosynaptic cores) -> ``learning`` (on-chip learning).
"""

from .crossbar import Crossbar, Wiring
from .energy import ReadEnergy, array_power, read_energy, write_summary
from .mapping import DifferentialMapping, ReferenceMapping
from .peripherals import ADC, DAC, SenseAmp, ideal_adc, ideal_dac
from .programming import (
    OpenLoop,
    ProgramReport,
    PulseReport,
    WriteVerify,
    apply_pulses,
    bias_scheme,
    program,
)
from .solve import Solution, effective_matrix, solve
from .tiling import TiledCrossbar

__all__ = [
    "ADC",
    "DAC",
    "Crossbar",
    "DifferentialMapping",
    "OpenLoop",
    "ProgramReport",
    "PulseReport",
    "ReadEnergy",
    "ReferenceMapping",
    "SenseAmp",
    "Solution",
    "TiledCrossbar",
    "Wiring",
    "WriteVerify",
    "apply_pulses",
    "array_power",
    "bias_scheme",
    "effective_matrix",
    "ideal_adc",
    "ideal_dac",
    "program",
    "read_energy",
    "solve",
    "write_summary",
]
