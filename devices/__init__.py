"""devices: physics of one memristive cell (RRAM, PCM), variability, noise, faults.

The shared interface of every model is documented in ``devices.Device``.
"""

from ._base import Device
from .noise import ReadNoise, flicker_sigma, telegraph_trace
from .variability import Spread, parameter_names, sample_parameters

__all__ = [
    "Device",
    "ReadNoise",
    "Spread",
    "flicker_sigma",
    "parameter_names",
    "sample_parameters",
    "telegraph_trace",
]
