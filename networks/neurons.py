"""CMOS neuron circuits as discrete-time models: LIF, IF, LI, CubaLIF, CubaLI, Integrator.

Physics. A leaky integrate-and-fire neuron is a membrane capacitance ``C`` [F] charged
by the input current ``i`` [A] and discharged through a leak conductance ``g_L`` [S]
towards ``v_leak`` [V]:

    C dv/dt = g_L (v_leak - v) + i        <=>   tau dv/dt = (v_leak - v) + r i,

with ``tau = C / g_L`` [s] and ``r = 1 / g_L`` [Ohm] (Lapicque's model; e.g. Gerstner,
Kistler, Naud & Paninski, *Neuronal Dynamics*, CUP 2014, Eq. 1.5). When ``v`` exceeds
``v_threshold`` (strictly) the neuron emits a spike, the membrane is reset and held for a
refractory period ``t_ref``. The fields use NIR's names (``tau``, ``r``, ``v_leak``,
``v_threshold``, ``v_reset``; Pedersen et al., Nat. Commun. 15:8122, 2024), so the same
model serves a circuit in SI units and a dimensionless graph from a training framework
(where ``i`` is a weighted spike count and ``v`` a number); :meth:`LIF.from_circuit`
builds one from ``C`` and ``g_L``, and ``c_m`` / ``g_leak`` read them back.

Other models: IF/Integrator ``dv/dt = r i`` (``r = 1/C`` [1/F]); LI is the LIF without
threshold (its output is ``v``); CubaLI/CubaLIF add a first-order synaptic current
``tau_syn dI/dt = -I + w_in i`` that drives the membrane (``tau_mem dv/dt = v_leak - v +
r I``) (current-based synapse, Gerstner et al. 2014, section 5.7).

Discretisation with a fixed step ``dt`` (the convention of NIR importers in snnTorch and
Norse; see :mod:`xbar.networks.nir_io`), per step:

* leaky membranes: ``v <- v + a (v_leak - v + r i)`` with ``a = dt / tau``
  (:class:`ForwardEuler`) or ``a = 1 - exp(-dt/tau)`` (:class:`ExactDecay`, exact for an
  input held constant over the step);
* current-based: the synaptic current first, ``I <- I + a_syn (-I + w_in i)``, then the
  membrane with the new ``I``;
* IF/Integrator: ``v <- v + dt r i``;
* optional finite membrane precision (:class:`FixedPoint`, a ``bits``-bit register);
* spike ``z = spike_fn((v - v_threshold) / v_scale)``, ``v_scale = |v_threshold - v_reset|``
  (1 in the units of ``v`` where the two coincide): ``z = 1`` iff ``v > v_threshold``;
* reset in the same step: :class:`ResetToValue` ``v <- v_reset`` or
  :class:`ResetBySubtraction` ``v <- v - (v_threshold - v_reset)``, both written with
  ``z`` as a factor so that a surrogate spike derivative passes through them;
* refractory period: for ``round(t_ref / dt)`` steps after a spike the membrane is held at
  ``v_reset`` and no spike is emitted (the synaptic current of Cuba models keeps
  integrating). ``t_ref = 0`` (the default) gives NIR's semantics exactly.

The state starts at zero (``v = 0``, ``I = 0``), as NIR prescribes. A constant input
``i`` makes an LIF with ``v_inf = v_leak + r i > v_threshold`` fire at the rate
``1 / (t_ref + tau ln((v_inf - v_reset) / (v_inf - v_threshold)))`` in the limit of small
``dt`` (Gerstner et al. 2014, Eq. 1.12 with a refractory period).

CMOS mismatch: ``neuron.sample(key, shape, spread)`` draws per-neuron parameters (e.g.
``{"v_threshold": devices.Spread(0.01, "absolute"), "tau": 0.05}``), with the
distributions of :func:`xbar.devices.sample_parameters` (threshold mismatch of CMOS
comparators is Gaussian in the offset voltage, Pelgrom, Duinmaijer & Welbers, IEEE JSSC
24(5), 1989; leak-current mismatch of subthreshold transistors is lognormal).

Default parameter values are orders of magnitude for a silicon neuron driven by a
crossbar column (C ~ 10 pF, tau ~ 20 ms; Indiveri et al., Front. Neurosci. 5:73, 2011),
UNCONFIRMED as the values of any one circuit.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from xbar import devices

from ._checks import check_dt, check_finite, check_nonnegative, check_positive
from .spikes import AbstractSpikeFunction, Heaviside

# Defaults (UNCONFIRMED orders of magnitude, module docstring).
_C_M = 10e-12  # membrane capacitance [F]
_TAU = 20e-3  # membrane time constant [s]
_TAU_SYN = 5e-3  # synaptic time constant [s]
_V_TH = 0.5  # threshold above the leak/reset level [V]


# ---- reset, integrator, precision: choices as objects ---------------------------------
class AbstractReset(eqx.Module):
    """How a spike resets the membrane: ``__call__(v, z, v_threshold, v_reset) -> v``."""

    @abc.abstractmethod
    def __call__(self, v, z, v_threshold, v_reset):
        raise NotImplementedError


class ResetToValue(AbstractReset):
    """``v <- v_reset`` where a spike occurred, written ``(1 - z) v + z v_reset`` (exact
    for ``z`` in {0, 1}, and differentiable in ``z``)."""

    def __call__(self, v, z, v_threshold, v_reset):
        return (1.0 - z) * v + z * v_reset


class ResetBySubtraction(AbstractReset):
    """``v <- v - (v_threshold - v_reset)`` where a spike occurred (keeps the overshoot;
    with ``v_reset = 0`` this subtracts the threshold, as Spyx and Rockpool do)."""

    def __call__(self, v, z, v_threshold, v_reset):
        return v - z * (v_threshold - v_reset)


class AbstractIntegrator(eqx.Module):
    """Discretisation of a first-order decay ``tau dy/dt = target - y`` over one step:
    ``y <- y + a (target - y)``; ``fraction(dt, tau)`` returns ``a``."""

    @abc.abstractmethod
    def fraction(self, dt, tau):
        raise NotImplementedError


class ForwardEuler(AbstractIntegrator):
    """``a = dt / tau`` (forward Euler; snnTorch's and Norse's NIR import)."""

    def fraction(self, dt, tau):
        return dt / tau


class ExactDecay(AbstractIntegrator):
    """``a = 1 - exp(-dt / tau)`` (exact for an input constant over the step; Rockpool)."""

    def fraction(self, dt, tau):
        return -jnp.expm1(-dt / jnp.asarray(tau))


class FixedPoint(eqx.Module):
    """A membrane register of ``bits`` bits spanning ``[v_min, v_max]`` [V]: after each
    update ``v`` is clipped to the range and rounded to the nearest of ``2**bits`` levels
    (step ``(v_max - v_min) / (2**bits - 1)``; straight-through gradient)."""

    bits: int = eqx.field(static=True)
    v_min: float = -1.0
    v_max: float = 1.0

    def __check_init__(self):
        if not (isinstance(self.bits, int) and 1 <= self.bits <= 32):
            raise ValueError(f"bits must be an integer in [1, 32], got {self.bits!r}")
        check_finite("v_min", self.v_min, "V")
        check_finite("v_max", self.v_max, "V")
        if not float(self.v_min) < float(self.v_max):
            raise ValueError(f"v_min ({self.v_min} V) must be below v_max ({self.v_max} V)")

    @property
    def step(self):
        return (self.v_max - self.v_min) / (2.0**self.bits - 1)

    def __call__(self, v):
        v = jnp.clip(v, self.v_min, self.v_max)
        u = (v - self.v_min) / self.step
        u = u + jax.lax.stop_gradient(jnp.round(u) - u)
        return self.v_min + self.step * u


# ---- state -------------------------------------------------------------------------
class NeuronState(eqx.Module):
    """State of a layer of neurons (arrays of the layer shape).

    Fields: ``v`` membrane voltage [V]; ``i_syn`` synaptic current [A] (current-based
    models, else None); ``refractory`` remaining refractory time [s] (spiking models,
    else None)."""

    v: Float[Array, "*shape"]
    i_syn: Float[Array, "*shape"] | None = None
    refractory: Float[Array, "*shape"] | None = None


# ---- the interface -----------------------------------------------------------------
class AbstractNeuron(eqx.Module):
    """Interface every neuron model meets.

    * ``init_state(shape, dtype=None) -> NeuronState`` (all zeros);
    * ``step(state, i_in, dt) -> (state, out)``: one step of ``dt`` [s] with input current
      ``i_in`` [A] of the layer shape; ``out`` are spikes in {0, 1} for spiking models
      (``spiking = True``) and the membrane voltage [V] for the others;
    * ``sample(key, shape, spread)``: a copy with per-neuron parameters (CMOS mismatch).

    Abstract fields: ``spike_fn`` (an :class:`AbstractSpikeFunction`; non-spiking models
    carry it for a uniform interface and do not call it) and ``precision`` (a
    :class:`FixedPoint` or None). ``n_ops`` is the count of arithmetic operations per
    membrane update used by the neuron-ops metric."""

    spike_fn: eqx.AbstractVar[AbstractSpikeFunction]
    precision: eqx.AbstractVar[FixedPoint | None]
    spiking: ClassVar[bool]
    current_based: ClassVar[bool] = False
    n_ops: ClassVar[int]

    def init_state(self, shape: tuple[int, ...], dtype=None) -> NeuronState:
        dtype = jnp.result_type(float) if dtype is None else dtype
        shape = tuple(shape)
        zeros = jnp.zeros(shape, dtype)
        return NeuronState(
            v=zeros,
            i_syn=zeros if self.current_based else None,
            refractory=zeros if self.spiking else None,
        )

    def step(
        self, state: NeuronState, i_in: Float[Array, "*shape"], dt: float
    ) -> tuple[NeuronState, Float[Array, "*shape"]]:
        dt = check_dt(dt)
        i_in = jnp.asarray(i_in)
        if i_in.shape != state.v.shape:
            raise ValueError(
                f"i_in must have the shape of the neuron state {state.v.shape}, got {i_in.shape}"
            )
        return self._step(state, i_in.astype(state.v.dtype), dt)

    @abc.abstractmethod
    def _step(self, state, i_in, dt):
        raise NotImplementedError

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...], spread):
        """A copy with the parameters named in ``spread`` (name -> sigma or
        ``devices.Spread``) drawn per neuron of ``shape``; see
        :func:`xbar.devices.sample_parameters` for the distributions."""
        return devices.sample_parameters(self, key, shape, spread)

    def _quantise(self, v):
        return v if self.precision is None else self.precision(v)


class _Spiking(AbstractNeuron):
    """Shared threshold, reset and refractory logic of the spiking models."""

    v_threshold: eqx.AbstractVar[float | Array]
    v_reset: eqx.AbstractVar[float | Array]
    t_ref: eqx.AbstractVar[float | Array]
    reset: eqx.AbstractVar[AbstractReset]
    spiking: ClassVar[bool] = True

    @property
    def v_scale(self):
        """Scale of the spike function's argument [V]: ``|v_threshold - v_reset|``, or 1
        where the two coincide."""
        d = jnp.abs(jnp.asarray(self.v_threshold) - jnp.asarray(self.v_reset))
        return jnp.where(d > 0, d, 1.0)

    def _fire(self, v_new, refractory, dt):
        """Hold refractory neurons, threshold, reset; returns ``(v, refractory, z)``."""
        active = refractory <= 0.5 * dt
        v_new = jnp.where(active, v_new, self.v_reset)
        z = self.spike_fn((v_new - self.v_threshold) / self.v_scale)
        z = jnp.where(active, z, 0.0).astype(v_new.dtype)
        v_new = self.reset(v_new, z, self.v_threshold, self.v_reset)
        ref = jnp.where(z > 0, self.t_ref, jnp.maximum(refractory - dt, 0.0))
        return v_new, ref.astype(v_new.dtype), z

    def _check_spiking(self):
        check_finite("v_threshold", self.v_threshold, "V")
        check_finite("v_reset", self.v_reset, "V")
        check_nonnegative("t_ref", self.t_ref, "s")


class LIF(_Spiking):
    """Leaky integrate-and-fire neuron (module docstring).

    Fields: ``tau`` membrane time constant ``C/g_L`` [s]; ``r`` membrane resistance
    ``1/g_L`` [Ohm]; ``v_leak``, ``v_threshold``, ``v_reset`` [V]; ``t_ref`` refractory
    period [s]; ``reset`` (:class:`ResetToValue` or :class:`ResetBySubtraction`);
    ``integrator`` (:class:`ForwardEuler` or :class:`ExactDecay`); ``precision``
    (:class:`FixedPoint` or None); ``spike_fn``."""

    tau: float | Array = _TAU
    r: float | Array = _TAU / _C_M
    v_leak: float | Array = 0.0
    v_threshold: float | Array = _V_TH
    v_reset: float | Array = 0.0
    t_ref: float | Array = 0.0
    reset: AbstractReset = ResetToValue()
    integrator: AbstractIntegrator = ForwardEuler()
    precision: FixedPoint | None = None
    spike_fn: AbstractSpikeFunction = Heaviside()
    n_ops: ClassVar[int] = 4  # NeuroBench's count for a leaky (snnTorch Leaky) neuron

    def __check_init__(self):
        check_positive("tau", self.tau, "s")
        check_finite("r", self.r, "Ohm")
        check_finite("v_leak", self.v_leak, "V")
        self._check_spiking()

    @classmethod
    def from_circuit(cls, c_m: float = _C_M, g_leak: float = _C_M / _TAU, **fields) -> LIF:
        """An LIF from its membrane capacitance ``c_m`` [F] and leak conductance ``g_leak``
        [S]: ``tau = c_m / g_leak``, ``r = 1 / g_leak``; other fields by name."""
        check_positive("c_m", c_m, "F")
        check_positive("g_leak", g_leak, "S")
        return cls(tau=c_m / g_leak, r=1.0 / g_leak, **fields)

    @property
    def c_m(self):
        """Membrane capacitance ``tau / r`` [F]."""
        return self.tau / self.r

    @property
    def g_leak(self):
        """Leak conductance ``1 / r`` [S]."""
        return 1.0 / self.r

    def _step(self, state, i_in, dt):
        a = self.integrator.fraction(dt, self.tau)
        v = self._quantise(state.v + a * (self.v_leak - state.v + self.r * i_in))
        v, ref, z = self._fire(v, state.refractory, dt)
        return NeuronState(v=v, refractory=ref), z


class IF(_Spiking):
    """Integrate-and-fire neuron without leak: ``v <- v + dt r i`` (``r = 1 / C`` [1/F]),
    then threshold, reset and refractory period as :class:`LIF`."""

    r: float | Array = 1.0 / _C_M
    v_threshold: float | Array = _V_TH
    v_reset: float | Array = 0.0
    t_ref: float | Array = 0.0
    reset: AbstractReset = ResetToValue()
    precision: FixedPoint | None = None
    spike_fn: AbstractSpikeFunction = Heaviside()
    n_ops: ClassVar[int] = 3  # add input, compare, reset (our count; NeuroBench has none)

    def __check_init__(self):
        check_finite("r", self.r, "1/F")
        self._check_spiking()

    @classmethod
    def from_circuit(cls, c_m: float = _C_M, **fields) -> IF:
        """An IF neuron of membrane capacitance ``c_m`` [F] (``r = 1 / c_m``)."""
        check_positive("c_m", c_m, "F")
        return cls(r=1.0 / c_m, **fields)

    def _step(self, state, i_in, dt):
        v = self._quantise(state.v + dt * self.r * i_in)
        v, ref, z = self._fire(v, state.refractory, dt)
        return NeuronState(v=v, refractory=ref), z


class CubaLIF(_Spiking):
    """Current-based LIF: ``I <- I + a_syn (-I + w_in i)``, then ``v <- v + a_mem (v_leak -
    v + r I)``, threshold and reset (module docstring). Fields as :class:`LIF` with
    ``tau_syn``, ``tau_mem`` [s] and the dimensionless input gain ``w_in``."""

    tau_syn: float | Array = _TAU_SYN
    tau_mem: float | Array = _TAU
    r: float | Array = _TAU / _C_M
    v_leak: float | Array = 0.0
    v_threshold: float | Array = _V_TH
    v_reset: float | Array = 0.0
    w_in: float | Array = 1.0
    t_ref: float | Array = 0.0
    reset: AbstractReset = ResetToValue()
    integrator: AbstractIntegrator = ForwardEuler()
    precision: FixedPoint | None = None
    spike_fn: AbstractSpikeFunction = Heaviside()
    current_based: ClassVar[bool] = True
    n_ops: ClassVar[int] = 6  # NeuroBench's count for a synaptic (snnTorch Synaptic) neuron

    def __check_init__(self):
        check_positive("tau_syn", self.tau_syn, "s")
        check_positive("tau_mem", self.tau_mem, "s")
        check_finite("r", self.r, "Ohm")
        check_finite("v_leak", self.v_leak, "V")
        check_finite("w_in", self.w_in)
        self._check_spiking()

    def _step(self, state, i_in, dt):
        a_s = self.integrator.fraction(dt, self.tau_syn)
        a_m = self.integrator.fraction(dt, self.tau_mem)
        i_syn = state.i_syn + a_s * (self.w_in * i_in - state.i_syn)
        v = self._quantise(state.v + a_m * (self.v_leak - state.v + self.r * i_syn))
        v, ref, z = self._fire(v, state.refractory, dt)
        return NeuronState(v=v, i_syn=i_syn, refractory=ref), z


class _NonSpiking(AbstractNeuron):
    spiking: ClassVar[bool] = False


class LI(_NonSpiking):
    """Leaky integrator (LIF without threshold); the output is ``v`` [V]."""

    tau: float | Array = _TAU
    r: float | Array = _TAU / _C_M
    v_leak: float | Array = 0.0
    integrator: AbstractIntegrator = ForwardEuler()
    precision: FixedPoint | None = None
    spike_fn: AbstractSpikeFunction = Heaviside()
    n_ops: ClassVar[int] = 3  # our count: leak, add input, scale

    def __check_init__(self):
        check_positive("tau", self.tau, "s")
        check_finite("r", self.r, "Ohm")
        check_finite("v_leak", self.v_leak, "V")

    def _step(self, state, i_in, dt):
        a = self.integrator.fraction(dt, self.tau)
        v = self._quantise(state.v + a * (self.v_leak - state.v + self.r * i_in))
        return NeuronState(v=v), v


class CubaLI(_NonSpiking):
    """Current-based leaky integrator (CubaLIF without threshold); the output is ``v``."""

    tau_syn: float | Array = _TAU_SYN
    tau_mem: float | Array = _TAU
    r: float | Array = _TAU / _C_M
    v_leak: float | Array = 0.0
    w_in: float | Array = 1.0
    integrator: AbstractIntegrator = ForwardEuler()
    precision: FixedPoint | None = None
    spike_fn: AbstractSpikeFunction = Heaviside()
    current_based: ClassVar[bool] = True
    n_ops: ClassVar[int] = 5  # our count: two decays, two adds, scale

    def __check_init__(self):
        check_positive("tau_syn", self.tau_syn, "s")
        check_positive("tau_mem", self.tau_mem, "s")
        check_finite("r", self.r, "Ohm")
        check_finite("v_leak", self.v_leak, "V")
        check_finite("w_in", self.w_in)

    def _step(self, state, i_in, dt):
        a_s = self.integrator.fraction(dt, self.tau_syn)
        a_m = self.integrator.fraction(dt, self.tau_mem)
        i_syn = state.i_syn + a_s * (self.w_in * i_in - state.i_syn)
        v = self._quantise(state.v + a_m * (self.v_leak - state.v + self.r * i_syn))
        return NeuronState(v=v, i_syn=i_syn), v


class Integrator(_NonSpiking):
    """Perfect integrator ``v <- v + dt r i`` (NIR's ``I`` node; ``r = 1/C`` [1/F]); the
    output is ``v``."""

    r: float | Array = 1.0 / _C_M
    precision: FixedPoint | None = None
    spike_fn: AbstractSpikeFunction = Heaviside()
    n_ops: ClassVar[int] = 2  # our count: scale, add

    def __check_init__(self):
        check_finite("r", self.r, "1/F")

    def _step(self, state, i_in, dt):
        v = self._quantise(state.v + dt * self.r * i_in)
        return NeuronState(v=v), v


NEURON_MODELS = (LIF, IF, LI, CubaLIF, CubaLI, Integrator)

__all__ = [
    "AbstractIntegrator",
    "AbstractNeuron",
    "AbstractReset",
    "CubaLI",
    "CubaLIF",
    "ExactDecay",
    "FixedPoint",
    "ForwardEuler",
    "IF",
    "Integrator",
    "LI",
    "LIF",
    "NeuronState",
    "ResetBySubtraction",
    "ResetToValue",
]
