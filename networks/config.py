"""The crossbar configuration of a network: which arrays its synaptic layers are mapped onto.

:class:`CrossbarConfig` is a plain module naming every choice that turns a weight matrix
into programmed hardware: the device model and its device-to-device variability, the
weight-to-conductance mapping, the wiring (IR drop), the peripherals (DAC: read-pulse
amplitude ``dac.v_read`` [V] and width ``dac.t_read_s`` [s]; ADC; sense amplifier), the
largest tile, the programming method and whether reads draw device read noise.

Weight scaling. Crossbar weights are bounded by ``mapping.w_max``; a layer's matrix
``W`` is stored as ``W / s`` with ``s = max|W| / w_max`` (per layer, so its largest weight
sits at the top of the conductance window) and the digital result is multiplied by
``s`` again (the usual per-layer output scale of analog inference, e.g. aihwkit's
``weight_scaling_omega``; Rasch et al., Nat. Commun. 14:5282, 2023). Inputs are clipped
to ``[-1, 1]`` by the DAC (spikes are 0 or 1); ``input_scale`` divides analog inputs
before the DAC and multiplies the result after the ADC.

Programming. :class:`xbar.WriteVerify` / :class:`xbar.OpenLoop` program every tile
through :func:`xbar.program` with the device's pulse physics; :class:`DeviceProgramming`
uses the device's own statistical programming model (``device.program(key, g_target)``,
e.g. ``devices.PCMStatistical``'s write-verify statistics of Joshi et al., Nat. Commun.
11:2473, 2020), with ``noise=False`` giving exact conductances (the ideal limit).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx

import xbar
from xbar import devices

from ._checks import check_positive
from .layers import AbstractIRDrop, ExactIRDrop


class DeviceProgramming(eqx.Module):
    """Program with the device model's own ``program(key, g_target)`` (module docstring).

    Fields: ``noise``: draw the device's programming noise (False: every cell lands on its
    target conductance exactly).

    A target beyond a cell's own conductance bounds (the device's ``g_min`` / ``g_max``,
    which device-to-device variability spreads per cell) is clipped to them: that cell
    saturates at its bound, as it would under any programming scheme."""

    noise: bool = eqx.field(default=True, static=True)


class CrossbarConfig(eqx.Module):
    """How synaptic layers are put on crossbars (module docstring).

    Fields:
        device: a ``devices.Device`` (default ``devices.PCMStatistical()``).
        variability: ``{parameter: sigma or devices.Spread}`` drawn per cell, or None.
        mapping: :class:`xbar.DifferentialMapping` (default) or :class:`xbar.ReferenceMapping`.
        wiring: :class:`xbar.Wiring` (default NeuroSim 22 nm wires; ``Wiring.ideal()``
            switches IR drop off). Non-zero wires are read through the effective matrix.
        ir_drop: how the effective matrix of each tile is computed once after programming:
            ``ExactIRDrop()`` (default, :func:`xbar.effective_matrix`, the nodal solve) or
            ``FirstOrderIRDrop()`` (:func:`xbar.effective_matrix_first_order`, O(MN), for
            large networks), or ``NoIRDrop()``.
        dac, adc, sense: peripherals (defaults of ``xbar``: 8-bit DAC at 0.2 V, 250 ns;
            8-bit ADC; ideal sense amplifier). ``xbar.ideal_dac()`` / ``xbar.ideal_adc()``
            switch quantisation off.
        tile_shape: largest tile ``(rows, logical columns)``; a layer larger than a tile is
            split evenly over the fewest tiles (no padding rows) with digital partial sums.
            Default (256, 256).
        programming: ``xbar.WriteVerify()``, ``xbar.OpenLoop(...)`` or
            :class:`DeviceProgramming` (default ``DeviceProgramming()``).
        read_noise: whether and how reads draw device read noise when the network is run
            with a key: ``True`` or ``xbar.PerRead()`` (default; every read, i.e. every
            time step and sample, draws its own noise), ``xbar.PerCall()`` (one draw of
            every tile per ``Network.run`` call, shared by all its time steps and samples:
            the low-frequency limit of 1/f read noise, and aihwkit's convention of
            drawing read noise into the weights once per evaluation; one matrix product
            per read instead of two), or ``False`` (none).
        state_values: initial device state values by name before programming (e.g.
            ``{"gap": 1.7e-9}`` for a Stanford-PKU RRAM in its high-resistance state), or
            None for the device's defaults.
        input_scale: analog inputs are divided by it before the DAC (module docstring).
    """

    device: Any = devices.PCMStatistical()
    variability: dict | None = None
    mapping: Any = xbar.DifferentialMapping()
    wiring: xbar.Wiring = xbar.Wiring()
    ir_drop: AbstractIRDrop = ExactIRDrop()
    dac: xbar.DAC = xbar.DAC()
    adc: xbar.ADC = xbar.ADC()
    sense: xbar.SenseAmp = xbar.SenseAmp()
    tile_shape: tuple[int, int] = eqx.field(default=(256, 256), static=True)
    programming: Any = DeviceProgramming()
    read_noise: bool | xbar.AbstractNoiseDraw = eqx.field(default=True, static=True)
    input_scale: float = 1.0
    state_values: dict | None = None

    def __check_init__(self):
        ts = self.tile_shape
        if not (len(ts) == 2 and all(isinstance(t, int) and t >= 1 for t in ts)):
            raise ValueError(f"tile_shape must be two positive integers, got {ts!r}")
        if not isinstance(self.programming, (xbar.WriteVerify, xbar.OpenLoop, DeviceProgramming)):
            raise ValueError(
                "programming must be xbar.WriteVerify, xbar.OpenLoop or DeviceProgramming, "
                f"got {type(self.programming).__name__}"
            )
        if isinstance(self.programming, DeviceProgramming) and not hasattr(self.device, "program"):
            raise ValueError(
                f"DeviceProgramming needs a device with a program(key, g_target) method; "
                f"{type(self.device).__name__} has none (use xbar.WriteVerify())"
            )
        check_positive("input_scale", self.input_scale)
        if not isinstance(self.read_noise, (bool, xbar.AbstractNoiseDraw)):
            raise ValueError(
                "read_noise must be True, False, xbar.PerRead() or xbar.PerCall(), "
                f"got {self.read_noise!r}"
            )

    @property
    def noise_draw(self) -> xbar.AbstractNoiseDraw | None:
        """How reads draw device read noise (``xbar.PerRead()``, ``xbar.PerCall()``), or
        None when they draw none."""
        if self.read_noise is True:
            return xbar.PerRead()
        return None if self.read_noise is False else self.read_noise

    @property
    def pulse_amplitude(self):
        """Read-pulse amplitude for an input spike [V] (``dac.v_read``)."""
        return self.dac.v_read

    @property
    def pulse_width_s(self):
        """Read-pulse width [s] (``dac.t_read_s``)."""
        return self.dac.t_read_s

    @property
    def has_wires(self) -> bool:
        w = self.wiring
        return any(float(r) != 0.0 for r in (w.r_wl, w.r_bl, w.r_src, w.r_sense))

    def ideal(self) -> CrossbarConfig:
        """The same configuration with every non-ideality off: ideal wires and converters,
        no read noise, no variability, exact programming (needs a device with
        ``program``)."""
        return CrossbarConfig(
            device=self.device,
            variability=None,
            mapping=self.mapping,
            wiring=eqx.tree_at(
                lambda w: (w.r_wl, w.r_bl, w.r_src, w.r_sense), self.wiring, (0.0, 0.0, 0.0, 0.0)
            ),
            dac=xbar.ideal_dac(self.dac.v_read),
            adc=xbar.ideal_adc(),
            sense=xbar.SenseAmp(),
            ir_drop=self.ir_drop,
            tile_shape=self.tile_shape,
            programming=DeviceProgramming(noise=False),
            read_noise=False,
            input_scale=self.input_scale,
            state_values=self.state_values,
        )


__all__ = ["CrossbarConfig", "DeviceProgramming"]
