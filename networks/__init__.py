"""xbar.networks: hybrid CMOS-memristor neurosynaptic cores, spiking networks, NIR.

* neurons (:mod:`.neurons`): ``LIF``, ``IF``, ``LI``, ``CubaLIF``, ``CubaLI``,
  ``Integrator`` in physical units, with reset, integrator and precision objects and CMOS
  mismatch (``sample``); spike functions (:mod:`.spikes`);
* the crossbar configuration of synaptic layers (:class:`CrossbarConfig`);
* synaptic layers and cores (:mod:`.core`): ``IdealSynapses``, ``CrossbarSynapses``,
  ``ConvSynapses``, ``Core``; other graph nodes (:mod:`.nodes`);
* networks with address-event routing (:class:`Network`, ``net.run(x, key)``);
* NIR import and export (:func:`from_nir`, :func:`to_nir`, :mod:`.nir_io`);
* neuromorphic metrics and hardware figures (:func:`measure`, :mod:`.metrics`).
"""

from .config import CrossbarConfig, DeviceProgramming
from .core import AbstractSynapses, ConvSynapses, Core, CrossbarSynapses, IdealSynapses
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
from .metrics import DIGITAL_CHIPS, EnergyModel, Metrics, measure
from .network import Network
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
from .nir_io import crossbar_from_metadata, from_nir, to_nir
from .nodes import Delay, Flatten, Identity, NeuronLayer, Pool2d, Scale, Threshold
from .spikes import AbstractSpikeFunction, Heaviside
from .wta import AdaptiveLIF, AdaptiveState, WTALayer

__all__ = [
    "AdaptiveLIF",
    "AdaptiveState",
    "WTALayer",
    "AbstractIRDrop",
    "AbstractSynapseNoise",
    "CrossbarLinear",
    "ExactIRDrop",
    "FirstOrderIRDrop",
    "GaussianNoise",
    "NoIRDrop",
    "NoNoise",
    "DIGITAL_CHIPS",
    "EnergyModel",
    "Metrics",
    "measure",
    "AbstractIntegrator",
    "AbstractNeuron",
    "AbstractReset",
    "AbstractSpikeFunction",
    "AbstractSynapses",
    "ConvSynapses",
    "Core",
    "CrossbarConfig",
    "CrossbarSynapses",
    "Delay",
    "Flatten",
    "Identity",
    "IdealSynapses",
    "Network",
    "NeuronLayer",
    "Pool2d",
    "Scale",
    "Threshold",
    "crossbar_from_metadata",
    "from_nir",
    "to_nir",
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
