"""xbar.learning: surrogate-gradient and hardware-aware training, local learning rules.

The top layer: it trains networks of :mod:`xbar.networks` whose synapses are crossbars of
:mod:`xbar` built from the devices of :mod:`xbar.devices`.

Gradient learning:

* surrogate spike functions (:mod:`.surrogate`): ``FastSigmoid`` (``SuperSpike``), ``ATan``,
  ``Triangular``, ``Boxcar``, ``StraightThrough``, for the ``spike_fn`` of any neuron;
* a feed-forward spiking network with pluggable synapse layers (:mod:`.model`):
  ``SpikingMLP.build(sizes, key=..., neuron=..., readout=..., synapse=...)``,
  ``AbstractSynapse`` (``realise(key)`` once per pass, ``layer(x, key=...)`` per step),
  ``DenseSynapse``, ``unit_current``;
* losses, regularisers and metrics (:mod:`.losses`): ``SpikeCountCrossEntropy``,
  ``MembraneCrossEntropy`` (``MaxOverTime``, ``LastStep``, ``MeanOverTime``),
  ``FirstSpikeCrossEntropy``, ``ActivityRegulariser``, ``Regularised``, ``Accuracy``,
  ``SpikeRate``;
* training (:mod:`.train`): ``fit`` (optax, mini-batches, tqdm progress, history,
  ``EarlyStopping``, resumable checkpoints of :mod:`.checkpoint`), its compiled step
  ``train_step`` (for loops of one's own) and ``score``;
* offline data (:mod:`.datasets`): ``load_digits``, ``spike_patterns``, ``RateEncoding``,
  ``LatencyEncoding``.

Example::

    train, test = learning.load_digits()
    model = learning.SpikingMLP.build((64, 128, 10), key=jax.random.key(0))
    run = learning.fit(model, train, optax.adam(2e-3), epochs=10, batch_size=64,
                       key=jax.random.key(1), encoding=learning.RateEncoding(num_steps=25),
                       validation=test, checkpoint_dir="ckpt")
"""

from . import evaluate, hardware_aware
from .checkpoint import load_checkpoint, save_checkpoint
from .datasets import (
    AbstractEncoding,
    LatencyEncoding,
    RateEncoding,
    Split,
    load_digits,
    spike_patterns,
)
from .hardware_aware import CrossbarSynapse, HardwareSpec
from .losses import (
    AbstractLoss,
    AbstractMetric,
    AbstractTimeReduction,
    Accuracy,
    ActivityRegulariser,
    FirstSpikeCrossEntropy,
    LastStep,
    MaxOverTime,
    MeanOverTime,
    MembraneCrossEntropy,
    Regularised,
    SpikeCountCrossEntropy,
    SpikeRate,
    first_spike_times,
)
from .model import AbstractSynapse, DenseSynapse, SpikingMLP, Trace, unit_current
from .rules import AbstractRule, Chain, HardBound, Scale, SoftBound, chain, run_rule
from .srm import SRMNeuron, SRMState
from .stdp import (
    DiehlCookSTDP,
    PairSTDP,
    PairTraces,
    ReducedNearestSTDP,
    ReducedTraces,
    RewardModulatedSTDP,
    StochasticSTDP,
    TripletSTDP,
    TripletTraces,
)
from .surrogate import ATan, Boxcar, FastSigmoid, StraightThrough, SuperSpike, Triangular
from .train import EarlyStopping, FitResult, fit, score, train_step
from .transfer import (
    Coincidence,
    Delivery,
    LinearSynapse,
    LinearSynapseState,
    calibrate,
    deliver,
)
from .unsupervised import (
    HiddenPattern,
    LearningStats,
    PatternRun,
    PatternScores,
    PulsedSynapses,
    WTATrainer,
    assign_labels,
    detect_pattern,
    pattern_scores,
    predict,
    window_latencies,
)
from .waveforms import SpikeWaveform, learning_window, overlap_voltage, pair_learning_window

__all__ = [
    "CrossbarSynapse",
    "HardwareSpec",
    "evaluate",
    "hardware_aware",
    "AbstractRule",
    "Chain",
    "HardBound",
    "Scale",
    "SoftBound",
    "chain",
    "run_rule",
    "DiehlCookSTDP",
    "PairSTDP",
    "PairTraces",
    "ReducedNearestSTDP",
    "ReducedTraces",
    "RewardModulatedSTDP",
    "StochasticSTDP",
    "TripletSTDP",
    "TripletTraces",
    "Coincidence",
    "Delivery",
    "LinearSynapse",
    "LinearSynapseState",
    "calibrate",
    "deliver",
    "LearningStats",
    "WTATrainer",
    "assign_labels",
    "predict",
    "HiddenPattern",
    "PatternRun",
    "PatternScores",
    "PulsedSynapses",
    "detect_pattern",
    "pattern_scores",
    "window_latencies",
    "SRMNeuron",
    "SRMState",
    "SpikeWaveform",
    "learning_window",
    "overlap_voltage",
    "pair_learning_window",
    "EarlyStopping",
    "FitResult",
    "fit",
    "score",
    "train_step",
    "save_checkpoint",
    "load_checkpoint",
    "AbstractLoss",
    "AbstractMetric",
    "AbstractTimeReduction",
    "Accuracy",
    "ActivityRegulariser",
    "FirstSpikeCrossEntropy",
    "LastStep",
    "MaxOverTime",
    "MeanOverTime",
    "MembraneCrossEntropy",
    "Regularised",
    "SpikeCountCrossEntropy",
    "SpikeRate",
    "first_spike_times",
    "AbstractSynapse",
    "DenseSynapse",
    "SpikingMLP",
    "Trace",
    "unit_current",
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
