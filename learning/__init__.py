"""xbar.learning: surrogate-gradient and hardware-aware training, local learning rules.

The top layer: it trains networks of :mod:`xbar.networks` whose synapses are crossbars of
:mod:`xbar` built from the devices of :mod:`xbar.devices`.
"""

from .datasets import (
    AbstractEncoding,
    LatencyEncoding,
    RateEncoding,
    Split,
    load_digits,
    spike_patterns,
)
from .surrogate import ATan, Boxcar, FastSigmoid, StraightThrough, SuperSpike, Triangular

__all__ = [
    "ATan",
    "Boxcar",
    "FastSigmoid",
    "StraightThrough",
    "SuperSpike",
    "Triangular",
    "AbstractEncoding",
    "LatencyEncoding",
    "RateEncoding",
    "Split",
    "load_digits",
    "spike_patterns",
]
