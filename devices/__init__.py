"""devices: physics of one memristive cell (RRAM, PCM), variability, noise, faults.

The shared interface of every model is documented in ``devices.Device``.
"""

from . import plot
from ._base import Device
from .compensation import drift_compensation
from .endurance import Endurance, Retention
from .faults import StuckAtFaults
from .jart import JART, JART_D2D_SPREADS, JARTState
from .noise import ReadNoise, flicker_sigma, telegraph_trace
from .pcm import PCM, PCMState
from .pcm_statistical import (
    PCMStatistical,
    PCMStatisticalState,
    PCMTrainingUpdate,
)
from .rram import RRAMState, StanfordPKU
from .switching import LognormalSwitching, PoissonSwitching
from .variability import Spread, parameter_names, sample_parameters
from .vteam import VTEAM, VTEAMState

__all__ = [
    "Device",
    "Endurance",
    "Retention",
    "StuckAtFaults",
    "LognormalSwitching",
    "PoissonSwitching",
    "VTEAM",
    "VTEAMState",
    "JART",
    "JARTState",
    "JART_D2D_SPREADS",
    "PCM",
    "PCMState",
    "PCMStatistical",
    "PCMStatisticalState",
    "PCMTrainingUpdate",
    "RRAMState",
    "ReadNoise",
    "Spread",
    "StanfordPKU",
    "drift_compensation",
    "flicker_sigma",
    "parameter_names",
    "plot",
    "sample_parameters",
    "telegraph_trace",
]
