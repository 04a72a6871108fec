"""xbar.networks: hybrid CMOS-memristor neurosynaptic cores, spiking networks, NIR.

* neurons (:mod:`.neurons`): ``LIF``, ``IF``, ``LI``, ``CubaLIF``, ``CubaLI``,
  ``Integrator`` in physical units, with reset, integrator and precision objects and CMOS
  mismatch (``sample``); spike functions (:mod:`.spikes`);
* the crossbar configuration of synaptic layers (:class:`CrossbarConfig`).
"""

from .config import CrossbarConfig, DeviceProgramming
from .layers import (
    AbstractIRDrop,
    AbstractSynapseNoise,
    CrossbarLinear,
    ExactIRDrop,
    FirstOrderIRDrop,
    GaussianNoise,
    NoIRDrop,
    NoNoise,
)
from .neurons import (
    IF,
    LI,
    LIF,
    AbstractIntegrator,
    AbstractNeuron,
    AbstractReset,
    CubaLI,
    CubaLIF,
    ExactDecay,
    FixedPoint,
    ForwardEuler,
    Integrator,
    NeuronState,
    ResetBySubtraction,
    ResetToValue,
)
from .spikes import AbstractSpikeFunction, Heaviside

__all__ = [
    "AbstractIRDrop",
    "AbstractSynapseNoise",
    "CrossbarLinear",
    "ExactIRDrop",
    "FirstOrderIRDrop",
    "GaussianNoise",
    "NoIRDrop",
    "NoNoise",
    "AbstractIntegrator",
    "AbstractNeuron",
    "AbstractReset",
    "AbstractSpikeFunction",
    "CrossbarConfig",
    "CubaLI",
    "CubaLIF",
    "DeviceProgramming",
    "ExactDecay",
    "FixedPoint",
    "ForwardEuler",
    "Heaviside",
    "IF",
    "Integrator",
    "LI",
    "LIF",
    "NeuronState",
    "ResetBySubtraction",
    "ResetToValue",
]
