"""Hardware-aware training: the forward pass sees the crossbar the weights will be programmed on.

A synapse layer :class:`CrossbarSynapse` wraps ``xbar.networks.CrossbarLinear`` for
:class:`~xbar.learning.SpikingMLP`. Per forward pass (``realise``) it draws one programming
noise realisation and computes the read matrices once (conductance bounds, noise, the
first-order IR drop ``xbar.effective_matrix_first_order``); per time step it reads with
DAC/ADC quantisation (straight-through gradients) and read noise. Gradients flow through the
whole crossbar model to the weights.

What the layer sees is a :class:`HardwareSpec`. Its noise levels come from the target device
model, not from hand-set numbers:

* :meth:`HardwareSpec.pcm`: ``devices.PCMStatistical`` at the target time ``t_s`` after
  programming (Joshi et al., Nat. Commun. 11:2473, 2020, Eqs. 3.1-3.3 as in
  ``devices.pcm_statistical``): programming noise ``sigma_prog(G)`` (Eq. 3.1); the spread of
  the drift exponent, which global drift compensation cannot remove
  (``G_prog ((t + t0)/t0)^(-nu)``, ``nu ~ N(mu_nu, sigma_nu)``: relative spread
  ``~ sigma_nu(G) ln((t + t0)/t0)``, Eq. 3.2); and the 1/f read noise at ``t``
  (``Q_s(G) sqrt(ln((t + t_read)/(2 t_read)))``, Eq. 3.3), each at the mapped conductance;
* :meth:`HardwareSpec.measured`: the programming error of a crossbar programmed with the
  target programming scheme (``xbar.program`` with ``xbar.WriteVerify`` / ``xbar.OpenLoop``),
  its standard deviation tabulated against the target conductance
  (:func:`measured_programming_noise`), plus the device's own read noise
  (``device.read_noise_moments``) -- for any device, e.g. ``devices.StanfordPKU`` with
  device-to-device spread;
* :meth:`HardwareSpec.aihwkit_hwa`: the baseline, aihwkit's ``StandardHWATrainingPreset``
  (Rasch et al., Nat. Commun. 14:5282, 2023): forward weight noise of the "PCM read" type,
  ``y_j += w_noise sqrt(sum_i |W_ij| x_i^2) xi`` with ``w_noise = 0.0175`` (weights
  normalised to ``w_max = 1``), additive output noise 0.04, 8-bit DAC and ADC (out bound
  10), tiles of at most 512 inputs, weights clipped at 1, IR drop on, and global drift
  compensation at evaluation (:mod:`xbar.learning.evaluate`). Differences: the preset maps
  weights per column (``CHANNELWISE_SYMMETRIC`` remap with learned output scales); here one
  digital scale per layer (``out_scale``); IR drop here is the first-order model of
  ``xbar.ir_drop`` instead of aihwkit's own.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from xbar.networks import (
    AbstractIRDrop,
    AbstractSynapseNoise,
    CrossbarLinear,
    FirstOrderIRDrop,
    NoIRDrop,
    NoNoise,
)

import xbar
from xbar import devices

from .model import AbstractSynapse

__all__ = [
    "AIHWKitPCMReadNoise",
    "CombinedNoise",
    "CrossbarSynapse",
    "HardwareSpec",
    "PCMDriftSpread",
    "PCMProgrammingNoise",
    "PCMReadNoise",
    "TabulatedNoise",
    "measured_programming_noise",
]

DAY_S = 86400.0


# ---- device-derived noise sources ----------------------------------------------------------
class PCMProgrammingNoise(AbstractSynapseNoise):
    """Programming noise of ``devices.PCMStatistical`` (Joshi 2020, Eq. 3.1):
    ``sigma(G) = device.prog_sigma(G)`` [S]."""

    device: devices.PCMStatistical

    def sigma(self, g):
        return self.device.prog_sigma(jnp.clip(g, 0.0, self.device.g_max))


class PCMDriftSpread(AbstractSynapseNoise):
    """Conductance spread left by the per-device drift exponent at ``t_s`` after programming,
    after global drift compensation has removed the mean drift (Joshi 2020, Eq. 3.2):
    ``G ((t + t0)/t0)^(-nu)`` with ``nu ~ N(mu_nu(G), sigma_nu(G))`` scaled by
    ``((t + t0)/t0)^(mu_nu)`` has relative spread ``sigma_nu(G) ln((t + t0)/t0)`` to first
    order: ``sigma(G) = G sigma_nu(G) ln((t + t0)/t0) drift_scale`` [S]."""

    device: devices.PCMStatistical
    t_s: float = DAY_S

    def sigma(self, g):
        d = self.device
        _, s_nu = d.nu_stats(jnp.maximum(g, 1e-12))
        return g * s_nu * d.drift_scale * jnp.log((self.t_s + d.t0_s) / d.t0_s)


class PCMReadNoise(AbstractSynapseNoise):
    """1/f read noise of ``devices.PCMStatistical`` at ``t_s`` after programming (Joshi
    2020, Eq. 3.3): ``sigma(G) = G Q_s(G) sqrt(ln((t + t_read)/(2 t_read))) read_noise_scale``,
    ``t = t_s + t0`` [S] (relative to the conductance read, so it holds after drift
    compensation as well)."""

    device: devices.PCMStatistical
    t_s: float = DAY_S

    def sigma(self, g):
        d = self.device
        return g * d.q_s(g) * d.noise_growth(self.t_s) * d.read_noise_scale


class AIHWKitPCMReadNoise(AbstractSynapseNoise):
    """aihwkit's forward weight noise of the "PCM read" type (``WeightNoiseType.PCM_READ``):
    per read, output ``j`` gets ``w_noise sqrt(sum_i |W_ij| x_i^2) xi`` for weights
    normalised to 1. Per cell of a differential pair (``g_min = 0``, one device carries
    ``|W| = G / scale``) that is a variance ``w_noise^2 G / scale`` in weight units, i.e.
    ``sigma(G) = w_noise sqrt(G scale)`` [S], ``scale = g_max / w_max`` [S per weight unit]."""

    w_noise: float = 0.0175
    scale: float = 25e-6

    def sigma(self, g):
        return self.w_noise * jnp.sqrt(jnp.maximum(g, 0.0) * self.scale)


class CombinedNoise(AbstractSynapseNoise):
    """Independent Gaussian sources added: ``sigma = sqrt(sum_k sigma_k^2)``."""

    parts: tuple[AbstractSynapseNoise, ...]

    def sigma(self, g):
        return jnp.sqrt(sum(p.sigma(g) ** 2 for p in self.parts))


class TabulatedNoise(AbstractSynapseNoise):
    """``sigma(G)`` [S] interpolated linearly in a table ``(g_grid, sigma_grid)`` [S, S]
    (constant beyond its ends), e.g. measured by :func:`measured_programming_noise`."""

    g_grid: Float[Array, " k"]
    sigma_grid: Float[Array, " k"]

    def sigma(self, g):
        return jnp.interp(g, self.g_grid, self.sigma_grid)


class DeviceReadNoise(AbstractSynapseNoise):
    """Read noise of a device model at conductance ``G``, from its per-cell moments
    (``device.read_noise_moments`` of a state at ``G``); ``rel`` is
    ``sqrt(Var) / G`` measured on a probe grid and interpolated."""

    g_grid: Float[Array, " k"]
    rel_grid: Float[Array, " k"]

    def sigma(self, g):
        return g * jnp.interp(g, self.g_grid, self.rel_grid)


def measured_programming_noise(
    xb: xbar.Crossbar,
    targets: Float[Array, "m n"],
    *,
    n_bins: int = 8,
    t_s: float | None = None,
) -> TabulatedNoise:
    """Programming error of a programmed crossbar, tabulated against the target conductance.

    ``targets`` are the logical weights the crossbar was programmed to; the error of every
    physical cell is ``G - G_target`` (``xb.conductances(t_s)``, noiseless read, at time
    ``t_s`` after programming, default as programmed) [S]. Cells are put in ``n_bins`` bins
    of equal width over the conductance window; ``sigma`` per bin is the root mean square
    error (bias included: a calibrated scheme has none). Concrete arrays only (not under
    ``jit``)."""
    if not (isinstance(n_bins, int) and n_bins >= 1):
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    g_t = np.asarray(xb.mapping.to_conductance(targets)).ravel()
    g = np.asarray(xb.conductances(t_s)).ravel()
    lo, hi = float(xb.mapping.g_min), float(xb.mapping.g_max)
    edges = np.linspace(lo, hi, n_bins + 1)
    idx = np.clip(np.digitize(g_t, edges) - 1, 0, n_bins - 1)
    err2 = (g - g_t) ** 2
    centres, sig = [], []
    for b in range(n_bins):
        sel = idx == b
        if sel.sum() >= 5:
            centres.append(float(np.mean(g_t[sel])))
            sig.append(float(np.sqrt(np.mean(err2[sel]))))
    if not centres:
        raise ValueError("measured_programming_noise: fewer than 5 cells in every bin")
    return TabulatedNoise(jnp.asarray(centres), jnp.asarray(sig))


def device_read_noise(device, mapping, state_at=None, n: int = 33) -> AbstractSynapseNoise:
    """The read noise of ``device`` as :class:`DeviceReadNoise` (relative standard deviation
    of ``device.read_noise`` from ``device.read_noise_moments``) on ``n`` conductances over
    the mapping's window; for a device with a ``devices.ReadNoise`` field its 1/f
    ``sigma(G)`` tabulated. ``state_at(g)`` builds a device state of conductance ``g`` [S]
    (default ``device.program(None, g)`` when the device has ``program``); returns
    :class:`~xbar.networks.NoNoise` when the device has no closed-form moments."""
    g = jnp.linspace(max(float(mapping.g_min), 1e-3 * float(mapping.g_max)), mapping.g_max, n)
    noise = getattr(device, "noise", None)
    if state_at is None and isinstance(noise, devices.ReadNoise):
        # devices with a ReadNoise field (RRAM models): its 1/f sigma at the conductance,
        # the Gaussian part of device.read_noise (random telegraph noise is not included)
        return TabulatedNoise(g, noise.sigma(g))
    if state_at is None:
        if not hasattr(device, "program"):
            return NoNoise()
        state = device.program(None, g)
    else:
        state = state_at(g)
    moments = device.read_noise_moments(state)
    if moments is None:
        return NoNoise()
    mean, var = moments
    g_read = device.conductance(state)
    rel = jnp.sqrt(jnp.maximum(var, 0.0)) / jnp.maximum(g_read, 1e-30)
    return DeviceReadNoise(g_read, rel)


# ---- what a layer sees -----------------------------------------------------------------------
class HardwareSpec(eqx.Module):
    """The crossbar model a hardware-aware layer trains against (module docstring).

    Fields: ``mapping``, ``wiring``, ``dac``, ``adc`` (``xbar`` components), ``ir_drop`` (an
    ``xbar.networks.AbstractIRDrop``; default first order), ``prog_noise``,
    ``read_noise`` (``xbar.networks.AbstractSynapseNoise``), ``out_noise`` [normalised
    output units], ``max_inputs`` (largest tile height; a layer with more inputs is
    refused, split it), ``remap`` (layer-wise weight remapping onto the full window,
    ``CrossbarLinear.remap``; default True), ``noise_draw`` (``xbar.PerRead()``, default:
    read noise drawn per read at the outputs; ``xbar.PerCall()``: drawn into the weights
    once per forward pass, the reads of a pass, i.e. its batch and time steps, share it;
    ``CrossbarLinear``), ``name`` (for tables)."""

    mapping: Any = xbar.DifferentialMapping()
    wiring: xbar.Wiring = xbar.Wiring.ideal()
    dac: xbar.DAC = xbar.ideal_dac()
    adc: xbar.ADC = xbar.ideal_adc()
    ir_drop: AbstractIRDrop = NoIRDrop()
    prog_noise: AbstractSynapseNoise = NoNoise()
    read_noise: AbstractSynapseNoise = NoNoise()
    out_noise: float = 0.0
    max_inputs: int = eqx.field(default=512, static=True)
    remap: bool = eqx.field(default=True, static=True)
    noise_draw: Any = eqx.field(default=xbar.PerRead(), static=True)
    name: str = eqx.field(default="ideal", static=True)

    @classmethod
    def ideal(cls, mapping=None) -> HardwareSpec:
        """No non-ideality: the layer is exactly ``x @ W + b`` (weights clipped to w_max)."""
        return cls(mapping=mapping or xbar.DifferentialMapping(), name="ideal")

    @classmethod
    def pcm(
        cls,
        device: devices.PCMStatistical | None = None,
        *,
        t_s: float = DAY_S,
        mapping=None,
        wiring: xbar.Wiring | None = None,
        dac: xbar.DAC | None = None,
        adc: xbar.ADC | None = None,
        name: str = "HWA (device-derived)",
    ) -> HardwareSpec:
        """Training against ``devices.PCMStatistical`` at ``t_s`` [s] after programming:
        programming noise, drift-exponent spread and read noise at the mapped conductances
        (module docstring), 8-bit converters, NeuroSim wires with the first-order IR drop."""
        device = devices.PCMStatistical() if device is None else device
        mapping = xbar.DifferentialMapping(0.0, device.g_max) if mapping is None else mapping
        wiring = xbar.Wiring() if wiring is None else wiring
        prog = CombinedNoise((PCMProgrammingNoise(device), PCMDriftSpread(device, t_s)))
        return cls(
            mapping=mapping,
            wiring=wiring,
            dac=xbar.DAC() if dac is None else dac,
            adc=xbar.ADC() if adc is None else adc,
            ir_drop=FirstOrderIRDrop(),
            prog_noise=prog,
            read_noise=PCMReadNoise(device, t_s),
            name=name,
        )

    @classmethod
    def measured(
        cls,
        xb: xbar.Crossbar,
        targets: Float[Array, "m n"],
        *,
        read_noise: AbstractSynapseNoise | None = None,
        n_bins: int = 8,
        name: str = "HWA (measured)",
    ) -> HardwareSpec:
        """Training against the programming error measured on ``xb``, a crossbar programmed
        to ``targets`` with the target scheme (:func:`measured_programming_noise`), with its
        mapping, wiring and converters, the first-order IR drop, and the device's read
        noise (:func:`device_read_noise`, unless given)."""
        if read_noise is None:
            state_at = None
            read_noise = device_read_noise(xb.device, xb.mapping, state_at)
        return cls(
            mapping=xb.mapping,
            wiring=xb.wiring,
            dac=xb.dac,
            adc=xb.adc,
            ir_drop=FirstOrderIRDrop(),
            prog_noise=measured_programming_noise(xb, targets, n_bins=n_bins),
            read_noise=read_noise,
            name=name,
        )

    @classmethod
    def aihwkit_hwa(
        cls, *, mapping=None, wiring: xbar.Wiring | None = None, name: str = "aihwkit HWA"
    ) -> HardwareSpec:
        """aihwkit's ``StandardHWATrainingPreset`` (Rasch et al. 2023; module docstring):
        PCM-read weight noise 0.0175, output noise 0.04, 8-bit DAC/ADC with out bound 10,
        weights clipped at 1, tiles of <= 512 inputs, IR drop on (first order here)."""
        mapping = xbar.DifferentialMapping(0.0, 25e-6, 1.0) if mapping is None else mapping
        return cls(
            mapping=mapping,
            wiring=xbar.Wiring() if wiring is None else wiring,
            dac=xbar.DAC(bits=8),
            adc=xbar.ADC(bits=8, out_bound=10.0),
            ir_drop=FirstOrderIRDrop(),
            prog_noise=NoNoise(),
            read_noise=AIHWKitPCMReadNoise(0.0175, float(mapping.scale)),
            out_noise=0.04,
            max_inputs=512,
            name=name,
        )

    def layer(self, weight, bias=None, **fields) -> CrossbarLinear:
        """A ``CrossbarLinear`` with this spec, weights ``(n_in, n_out)``."""
        if weight.shape[0] > self.max_inputs:
            raise ValueError(
                f"HardwareSpec {self.name!r}: a layer of {weight.shape[0]} inputs exceeds "
                f"max_inputs={self.max_inputs}; split it over tiles"
            )
        return CrossbarLinear(
            weight=weight,
            bias=bias,
            mapping=self.mapping,
            wiring=self.wiring,
            ir_drop=self.ir_drop,
            dac=self.dac,
            adc=self.adc,
            prog_noise=self.prog_noise,
            read_noise=self.read_noise,
            out_noise=self.out_noise,
            remap=self.remap,
            noise_draw=self.noise_draw,
            **fields,
        )

    def synapse_factory(self, *, scale: float = 1.0, bias: bool = True):
        """``synapse(n_in, n_out, key=..., i_unit=...)`` for ``SpikingMLP.build``:
        :class:`CrossbarSynapse` layers with weights uniform in ``+-scale/sqrt(n_in)``."""

        def make(n_in, n_out, *, key, i_unit=1.0):
            bound = scale / np.sqrt(n_in)
            w = jax.random.uniform(key, (n_in, n_out), minval=-bound, maxval=bound)
            b = jnp.zeros((n_out,), w.dtype) if bias else None
            return CrossbarSynapse(self.layer(w, b), i_unit=i_unit)

        return make


class CrossbarSynapse(AbstractSynapse):
    """A :class:`~xbar.learning.SpikingMLP` synapse layer on a crossbar:
    ``i = i_unit * layer(x)`` [A] with ``layer`` an ``xbar.networks.CrossbarLinear``
    (weights ``(n_in, n_out)``). ``realise(key)`` draws the programming noise of one pass
    and caches the read matrices; each call draws read noise with its key."""

    layer: CrossbarLinear
    i_unit: float = eqx.field(static=True, default=1.0)
    n_in: int = eqx.field(static=True, default=0)
    n_out: int = eqx.field(static=True, default=0)

    def __init__(self, layer: CrossbarLinear, *, i_unit: float = 1.0):
        if not (np.isfinite(i_unit) and i_unit > 0):
            raise ValueError(f"i_unit must be positive and finite (0, inf) A, got {i_unit}")
        self.layer = layer
        self.i_unit = float(i_unit)
        self.n_in, self.n_out = (int(n) for n in layer.shape)

    def realise(self, key: PRNGKeyArray | None) -> CrossbarSynapse:
        return eqx.tree_at(lambda s: s.layer, self, self.layer.realise(key))

    @property
    def draws_per_read(self) -> bool:
        return self.layer.draws_per_read

    def __call__(self, x, *, key=None, spikes=False):
        return self.i_unit * self.layer(x, key=key, spikes=spikes)

    def with_spec(self, spec: HardwareSpec, **fields) -> CrossbarSynapse:
        """The same weights and bias under another hardware spec (e.g. to fine-tune an
        ideally trained network, or to evaluate it)."""
        layer = spec.layer(self.layer.weight, self.layer.bias, **fields)
        return CrossbarSynapse(layer, i_unit=self.i_unit)


def with_spec(model, spec: HardwareSpec, **fields):
    """``model`` (a ``SpikingMLP`` of :class:`CrossbarSynapse` layers) with every synapse
    moved onto ``spec`` (weights kept)."""
    syn = tuple(s.with_spec(spec, **fields) for s in model.synapses)
    return eqx.tree_at(lambda m: m.synapses, model, syn)


__all__ += ["DeviceReadNoise", "device_read_noise", "with_spec"]
