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

__all__ = [
    "AbstractEncoding",
    "LatencyEncoding",
    "RateEncoding",
    "Split",
    "load_digits",
    "spike_patterns",
]
