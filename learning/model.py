"""A feed-forward spiking network with pluggable synapse layers, run by BPTT through ``lax.scan``.

Per time step ``t`` (``dt`` [s]) and layer ``l`` the synapse layer turns the spikes (or, for
the first layer, the input) of the layer below into a current and the neurons integrate it:

    i_l[t] = synapse_l(z_{l-1}[t])                    [A]
    (s_l[t], z_l[t]) = neuron_l.step(s_l[t-1], i_l[t], dt)

with the neuron models of :mod:`xbar.networks` (forward Euler or exact decay, threshold,
same-step reset; the spike nonlinearity is the neuron's ``spike_fn``, a surrogate of
:mod:`xbar.learning.surrogate` for training). Every layer sees the current time step of the
layer below (no synaptic delay), the states start at zero, and the time loop is a
``lax.scan``, so ``jax.grad`` of a loss of the outputs is backpropagation through time
(Werbos, Proc. IEEE 78(10):1550, 1990) with surrogate spike derivatives (Neftci, Mostafa &
Zenke, IEEE Signal Process. Mag. 36(6), 2019).

Synapse layers follow a small protocol (:class:`AbstractSynapse`): ``realise(key)`` returns
the layer as it is during one forward pass (draws once per pass, such as programming noise,
and precomputations, such as an effective conductance matrix with IR drop, are done here,
once, outside the time loop), and ``layer(x, key=key)`` maps inputs of shape ``(..., n_in)``
to currents [A] of shape ``(..., n_out)``, every entry of the leading axes one read, with
independent read noise drawn from ``key``. The input layer does not depend on the state of
the network, so it is read once for all time steps (``x`` of shape ``(T, *batch, n_in)``, one
key): one large matrix product instead of ``T`` small ones; the deeper layers are read per
step inside the scan, each step with its own key. :class:`DenseSynapse` is the ideal layer:
``i = i_unit (x W^T + b)``.

Weights are dimensionless; ``i_unit`` [A] converts them to current. The default is the
*unit current* of the receiving neuron (:func:`unit_current`): the current that, held for
one step from rest, raises the membrane by one ``v_scale`` (``|v_threshold - v_reset|``;
1 V for non-spiking neurons). With it a weight of 1 from a single input spike moves the
membrane by one threshold distance, the normalisation in which snnTorch and Spyx state their
weights, so that the initialisation and learning rates of the literature carry over while
the neurons keep their physical parameters.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from xbar.networks import LIF, AbstractNeuron, Heaviside

from .surrogate import FastSigmoid

__all__ = [
    "AbstractSynapse",
    "DenseSynapse",
    "SpikingMLP",
    "Trace",
    "unit_current",
]


def unit_current(neuron: AbstractNeuron, dt: float) -> float:
    """The input current [A] that, held for one step ``dt`` [s] from the zero state, raises the
    membrane potential of ``neuron`` by ``v_scale`` (spiking neurons) or by 1 V (others).

    Computed from the neuron's own update as ``v_scale / (dv/di)`` at rest (for forward-Euler
    LIF ``dv/di = r dt / tau``, so the unit current is ``v_scale C / dt``). Per-neuron
    parameters (mismatch) are averaged: the result is one float.
    """
    probe = eqx.tree_at(lambda n: n.spike_fn, neuron, Heaviside())
    state = probe.init_state((), jnp.result_type(float))

    def v_after(i):
        new, _ = probe.step(state, i * jnp.ones_like(state.v), dt)
        return new.v

    _, gain = jax.jvp(v_after, (jnp.zeros((), state.v.dtype),), (jnp.ones((), state.v.dtype),))
    scale = neuron.v_scale if neuron.spiking else 1.0
    unit = np.mean(np.asarray(scale) / np.asarray(gain))
    if not (np.isfinite(unit) and unit > 0):
        raise ValueError(
            f"the neuron {type(neuron).__name__} has no positive finite response to an input "
            f"current at dt = {dt} s (dv/di = {np.asarray(gain)}); give i_unit explicitly"
        )
    return float(unit)


class AbstractSynapse(eqx.Module):
    """A synapse layer: ``n_in`` inputs to ``n_out`` currents [A].

    * ``realise(key) -> AbstractSynapse``: the layer as it is for one forward pass (per-pass
      random draws from ``key``, which may be None for a deterministic pass; precomputations
      that do not depend on the input);
    * ``layer(x, key=None, spikes=False)``: currents ``(..., n_out)`` [A] for inputs
      ``(..., n_in)`` (spikes or values); each entry of the leading axes (time steps,
      samples) is one read, with independent noise drawn from ``key`` (or none for None).
      ``spikes=True`` tells the layer that ``x`` holds 0/1 spikes (a hardware layer may
      then drive its rows with plain read pulses instead of converting the input).

    Abstract fields: ``n_in``, ``n_out`` (static integers). ``draws_per_read`` (property,
    default True): whether a call uses its key; False lets a network skip drawing keys for
    every time step.
    """

    n_in: eqx.AbstractVar[int]
    n_out: eqx.AbstractVar[int]

    @property
    def draws_per_read(self) -> bool:
        return True

    @abc.abstractmethod
    def realise(self, key: PRNGKeyArray | None) -> AbstractSynapse:
        raise NotImplementedError

    @abc.abstractmethod
    def __call__(
        self,
        x: Float[Array, "*batch n_in"],
        *,
        key: PRNGKeyArray | None = None,
        spikes: bool = False,
    ) -> Float[Array, "*batch n_out"]:
        raise NotImplementedError


class DenseSynapse(AbstractSynapse):
    """Ideal dense synapses: ``i = i_unit (x W^T + b)`` [A].

    Fields: ``weight`` ``(n_out, n_in)`` and ``bias`` ``(n_out,)`` (or None), dimensionless;
    ``i_unit`` [A] the current of a unit weight (a static float, not trained).
    """

    weight: Float[Array, "n_out n_in"]
    bias: Float[Array, " n_out"] | None
    i_unit: float = eqx.field(static=True)
    n_in: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)

    def __init__(self, weight, bias=None, *, i_unit: float = 1.0):
        weight = jnp.asarray(weight)
        if weight.ndim != 2:
            raise ValueError(f"weight must be a matrix (n_out, n_in), got shape {weight.shape}")
        if bias is not None:
            bias = jnp.asarray(bias)
            if bias.shape != weight.shape[:1]:
                raise ValueError(f"bias must have shape {weight.shape[:1]}, got {bias.shape}")
        if not (np.isfinite(i_unit) and i_unit > 0):
            raise ValueError(f"i_unit must be positive and finite (0, inf) A, got {i_unit}")
        self.weight = weight
        self.bias = bias
        self.i_unit = float(i_unit)
        self.n_out, self.n_in = (int(n) for n in weight.shape)

    @classmethod
    def init(
        cls,
        n_in: int,
        n_out: int,
        *,
        key: PRNGKeyArray,
        i_unit: float = 1.0,
        scale: float = 1.0,
        bias: bool = True,
        dtype=None,
    ) -> DenseSynapse:
        """Weights uniform in ``[-scale/sqrt(n_in), scale/sqrt(n_in)]`` (the default of
        PyTorch's ``nn.Linear``, He et al.'s fan-in scaling), bias zero (or none)."""
        for name, n in (("n_in", n_in), ("n_out", n_out)):
            if not (isinstance(n, int | np.integer) and n >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
        dtype = dtype or jnp.result_type(float)
        bound = scale / np.sqrt(n_in)
        w = jax.random.uniform(key, (n_out, n_in), dtype, -bound, bound)
        return cls(w, jnp.zeros((n_out,), dtype) if bias else None, i_unit=i_unit)

    def realise(self, key):
        return self

    @property
    def draws_per_read(self) -> bool:
        return False

    def __call__(self, x, *, key=None, spikes=False):
        y = jnp.asarray(x) @ self.weight.T
        if self.bias is not None:
            y = y + self.bias
        return self.i_unit * y


class Trace(eqx.Module):
    """What a forward pass records, time first.

    Fields: ``spikes``, the spikes of every spiking layer (a tuple of ``(T, *batch, n_l)``
    arrays, 0.0/1.0 forward); ``output``, the last layer's output ``(T, *batch, n_out)``
    (spikes, or the membrane potential [V] of a non-spiking readout); ``output_spiking``
    (static bool); ``dt`` [s] (static).
    """

    spikes: tuple[Array, ...]
    output: Array
    output_spiking: bool = eqx.field(static=True)
    dt: float = eqx.field(static=True)


class SpikingMLP(eqx.Module):
    """A feed-forward spiking network: synapse layers and neuron layers in turn (module
    docstring for the update).

    Fields: ``synapses`` (tuple of :class:`AbstractSynapse`), ``neurons`` (tuple of
    :class:`xbar.networks.AbstractNeuron`, one per synapse layer; every layer but the last
    must spike; the last may be a non-spiking readout such as ``LI``), ``dt`` [s] (static),
    ``train_neurons`` (static; False stops gradients into neuron parameters),
    ``input_spikes`` (static; True: the inputs are 0/1 spike trains, passed to the first
    synapse layer with ``spikes=True``, as the hidden layers' spikes always are).

    ``model(x, key=None) -> Trace`` for ``x`` of shape ``(T, *batch, n_in)`` (time first).
    Build one with :meth:`build`.
    """

    synapses: tuple[AbstractSynapse, ...]
    neurons: tuple[AbstractNeuron, ...]
    dt: float = eqx.field(static=True)
    train_neurons: bool = eqx.field(static=True, default=False)
    input_spikes: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if len(self.synapses) == 0 or len(self.synapses) != len(self.neurons):
            raise ValueError(
                f"synapses and neurons must be non-empty tuples of one length, got "
                f"{len(self.synapses)} and {len(self.neurons)}"
            )
        for l, (a, b) in enumerate(zip(self.synapses[:-1], self.synapses[1:], strict=True)):
            if a.n_out != b.n_in:
                raise ValueError(
                    f"layer {l} has {a.n_out} outputs but layer {l + 1} takes {b.n_in} inputs"
                )
        for l, n in enumerate(self.neurons[:-1]):
            if not n.spiking:
                raise ValueError(f"hidden layer {l} must spike, got {type(n).__name__}")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be positive and finite (0, inf) s, got {self.dt}")

    @classmethod
    def build(
        cls,
        sizes: Sequence[int],
        *,
        key: PRNGKeyArray,
        dt: float = 1e-3,
        neuron: AbstractNeuron | None = None,
        readout: AbstractNeuron | None = None,
        synapse: Callable[..., AbstractSynapse] = DenseSynapse.init,
        train_neurons: bool = False,
        input_spikes: bool = False,
    ) -> SpikingMLP:
        """A network of layer sizes ``sizes = (n_in, n_1, ..., n_out)``.

        ``neuron``: the hidden neurons (default ``LIF(spike_fn=FastSigmoid())``, tau 20 ms);
        ``readout``: the output layer's neurons (default: the same as ``neuron``; a
        non-spiking model such as ``LI()`` for membrane-potential losses); ``synapse``: a
        factory ``synapse(n_in, n_out, key=..., i_unit=...)`` called per layer with the unit
        current of the receiving neurons (:func:`unit_current`); ``dt`` [s];
        ``input_spikes``: the inputs will be 0/1 spike trains (class docstring).
        """
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and output sizes, got {sizes}")
        neuron = LIF(spike_fn=FastSigmoid()) if neuron is None else neuron
        readout = neuron if readout is None else readout
        n_layers = len(sizes) - 1
        neurons = tuple([neuron] * (n_layers - 1) + [readout])
        keys = jax.random.split(key, n_layers)
        synapses = tuple(
            synapse(n_in, n_out, key=k, i_unit=unit_current(nrn, dt))
            for n_in, n_out, k, nrn in zip(sizes[:-1], sizes[1:], keys, neurons, strict=True)
        )
        return cls(synapses, neurons, dt, train_neurons, bool(input_spikes))

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.synapses[0].n_in,) + tuple(s.n_out for s in self.synapses)

    def __call__(self, x: Float[Array, "T *batch n_in"], *, key: PRNGKeyArray | None = None):
        x = jnp.asarray(x)
        if x.ndim < 2 or x.shape[-1] != self.synapses[0].n_in:
            raise ValueError(
                f"x must have shape (T, *batch, {self.synapses[0].n_in}), got {x.shape}"
            )
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
        x = x.astype(dtype)
        n_steps, batch = x.shape[0], x.shape[1:-1]
        n_layers = len(self.synapses)
        neurons = self.neurons
        if not self.train_neurons:
            neurons = jax.tree_util.tree_map(
                lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, neurons
            )
        if key is None:
            synapses = tuple(s.realise(None) for s in self.synapses)
            k_in, step_keys = None, None
        else:
            k_pass, k_in, k_steps = jax.random.split(key, 3)
            synapses = tuple(
                s.realise(k)
                for s, k in zip(self.synapses, jax.random.split(k_pass, n_layers), strict=True)
            )
            keyed = any(s.draws_per_read for s in synapses[1:])
            step_keys = jax.random.split(k_steps, n_steps) if keyed else None
        # the input layer does not depend on the network state: all its reads at once
        i_in = synapses[0](x, key=k_in, spikes=self.input_spikes).astype(dtype)
        states = tuple(
            n.init_state(batch + (s.n_out,), dtype) for n, s in zip(neurons, synapses, strict=True)
        )

        def one_step(states, inputs):
            i_t, k_t = inputs
            keys = (None,) * (n_layers - 1) if k_t is None else jax.random.split(k_t, n_layers - 1)
            st, h = neurons[0].step(states[0], i_t, self.dt)
            new_states, outs = [st], [h]
            for syn, nrn, st, k in zip(synapses[1:], neurons[1:], states[1:], keys, strict=True):
                st, h = nrn.step(st, syn(h, key=k, spikes=True).astype(dtype), self.dt)
                new_states.append(st)
                outs.append(h)
            return tuple(new_states), tuple(outs)

        _, outs = jax.lax.scan(one_step, states, (i_in, step_keys))
        spiking = self.neurons[-1].spiking
        spikes = outs if spiking else outs[:-1]
        return Trace(tuple(spikes), outs[-1], spiking, self.dt)
