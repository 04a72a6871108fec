"""Crossbar peripherals: input DACs, the sense amplifier, output ADCs.

Normalised units (as in aihwkit's ``IOParameters``): inputs ``x`` lie in ``[-1, 1]``
(one unit = the full read voltage ``v_read``), outputs ``y`` are in units of
"full input times one weight unit", i.e. the logical column current divided by
``i_unit = v_read * scale`` (``scale`` from the mapping, S per weight unit). An ideal
read therefore returns ``y = x @ W``.

Quantisers are differentiable by straight-through estimates (Bengio, Leonard & Courville,
arXiv:1308.3432, 2013): the forward pass rounds, the backward pass is the identity
inside the range and zero where the value is clipped.

Two families, each an abstract base with declared fields and final members:

* :class:`AbstractDAC`: :class:`DAC` (exact levels), :class:`NoisyDAC` (levels plus
  Gaussian drive noise). ``phases(x, key)`` gives the row drives of one input.
* :class:`AbstractDACEncoding`, how a DAC puts a quantised input on the word lines:
  :class:`AmplitudeEncoding` (a voltage proportional to the input),
  :class:`PulseWidthEncoding` (a fixed voltage for a time proportional to it),
  :class:`BitSerialEncoding` (one read per magnitude bit, shift-and-add after the ADC).
* :class:`AbstractADC`: :class:`ADC` (uniform quantiser), :class:`NoisyADC` (with
  input-referred Gaussian noise). ``adc(y, key)`` converts and applies the per-column
  calibration; :func:`xbar.calibrate_columns` measures that calibration from reads.

A crossbar calls ``dac.phases(x, key)`` and ``adc(y, key)`` with keys of their own, so a new
member of either family (one final subclass implementing the abstract methods) needs no
change to :mod:`xbar.crossbar`.

Defaults:
* DAC 8 bits and ADC 8 bits, ADC bound 10: the hardware-aware training preset of
  Rasch et al., Nat. Commun. 14, 5282 (2023) (aihwkit ``StandardHWATrainingPreset``);
  aihwkit's ``PresetIOParameters`` uses 7/9 bits and bound 20. Resolution convention of
  aihwkit: step ``= range / (2**bits - 2)``.
* Read voltage 0.2 V: middle of the 0.1-0.3 V range used for analog matrix-vector
  products to stay below the PCM threshold and RRAM disturb (UNCONFIRMED as a single
  source).
* Read pulse 250 ns: the PCM read time of Joshi et al., Nat. Commun. 11, 2473 (2020).
* Converter energies: Walden figure of merit ``E = FOM * 2**bits`` per conversion
  (R. H. Walden, IEEE JSAC 17(4), 539 (1999)); FOM values are UNCONFIRMED orders of
  magnitude from B. Murmann, "ADC Performance Survey 1997-2024" (SAR ADCs ~1-50 fJ/step).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from xbar.devices._checks import check_finite, check_nonnegative, check_positive
from xbar.devices._math import saturate

_ENCODING_CLASSES = {
    "amplitude": "AmplitudeEncoding",
    "pulse_width": "PulseWidthEncoding",
    "bit_serial": "BitSerialEncoding",
}


def ste_round(x):
    """``round(x)`` forward, identity gradient (straight-through estimate)."""
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def quantize(x, step, bound, clip=True):
    """Uniform mid-tread quantiser with step ``step`` on ``[-bound, bound]`` (STE gradient).

    In range the error is at most ``step / 2``; with ``clip`` values beyond ``bound`` are
    saturated (zero gradient there, as the hardware output does not move)."""
    if clip:
        x = saturate(x, -bound, bound)
    return step * ste_round(x / step)


def _check_bits(kind: str, bits) -> None:
    if bits is not None and not (isinstance(bits, int) and 2 <= bits <= 24):
        raise ValueError(f"{kind} bits must be an integer in [2, 24] or None, got {bits!r}")


def _normal(key, shape, dtype):
    return jax.random.normal(key, shape, dtype)


# ---- input encodings -------------------------------------------------------------------------
class AbstractDACEncoding(eqx.Module):
    """How a DAC drives the word lines with a quantised input ``q = q(x)`` in ``[-1, 1]``.

    Two views of one read:

    * :meth:`phases`: the logical read phases ``(u, w)``, normalised drives ``u[k]``
      (row voltage ``u[k] v_read``) and digital weights ``w[k]``, with
      ``sum_k w[k] u[k] = q`` exactly; the crossbar reads each phase and combines the
      converted outputs as ``sum_k w[k] y_k``.
    * :meth:`schedule`: the physical drive, row voltages ``v[s]`` [V] held for ``dt[s]``
      [s] in time slots ``s``, with per-slot digital weights ``w[s]``; the charge balance
      ``sum_s w[s] v[s] dt[s] = q v_read t_read`` holds for every encoding, and the slots
      last ``n_phases * t_read`` in all (energy and latency, ``xbar.read_energy``).

    Abstract class variables:
        needs_bits: the encoding needs a DAC with a finite number of bits.
        phases_are_drives: the logical phases are the physical row voltages (the cells
            see ``u[k] v_read``); False where the drive is a train of time slots whose
            time integral the phase stands for (pulse width).
    """

    needs_bits: eqx.AbstractClassVar[bool]
    phases_are_drives: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def n_phases(self, dac: AbstractDAC) -> int:
        """Read phases (ADC conversions) per input."""

    @abc.abstractmethod
    def phases(
        self, dac: AbstractDAC, xq: Float[Array, "*b m"]
    ) -> tuple[Float[Array, "k *b m"], Float[Array, " k"]]:
        """``(u, w)`` of the quantised input ``xq`` (gradient: identity onto ``xq``)."""

    @abc.abstractmethod
    def schedule(
        self, dac: AbstractDAC, xq: Float[Array, "*b m"]
    ) -> tuple[Float[Array, "s *b m"], Float[Array, " s"], Float[Array, " s"]]:
        """``(v [V], dt [s], w)``: row voltages, durations and digital weights of the
        time slots of the quantised input ``xq``."""


class AmplitudeEncoding(AbstractDACEncoding):
    """One read at row voltage ``q v_read`` for ``t_read`` (the DAC output is the
    analog level): one phase ``u = q``, weight 1."""

    needs_bits: ClassVar[bool] = False
    phases_are_drives: ClassVar[bool] = True

    def n_phases(self, dac):
        return 1

    def phases(self, dac, xq):
        return xq[None], jnp.ones((1,), xq.dtype)

    def schedule(self, dac, xq):
        one = jnp.ones((1,), xq.dtype)
        return xq[None] * dac.v_read, one * dac.t_read_s, one


class PulseWidthEncoding(AbstractDACEncoding):
    """Rows at ``sign(q) v_read`` for a time ``|q| t_read`` (the cells only ever see
    ``0`` or ``+-v_read``; the column integrates the charge).

    Schedule: ``L = 2**(bits-1) - 1`` slots of ``t_read / L``; row ``i`` is on in the first
    ``round(|q_i| L)`` of them.  An ideal DAC (``bits=None``) is resolved in ``L = 255``
    slots (the on-time within half a slot, ``t_read / 510``, of ``|q| t_read``).  One logical phase
    ``u = q`` (the integrated drive), weight 1, one conversion."""

    needs_bits: ClassVar[bool] = False
    phases_are_drives: ClassVar[bool] = False

    def n_phases(self, dac):
        return 1

    def phases(self, dac, xq):
        return xq[None], jnp.ones((1,), xq.dtype)

    def schedule(self, dac, xq):
        n = dac.n_levels if dac.bits is not None else 255
        slots = jnp.arange(1, n + 1).reshape((-1,) + (1,) * xq.ndim)
        on = jnp.round(jnp.abs(xq) * n)[None] >= slots
        v = jnp.where(on, jnp.sign(xq)[None] * dac.v_read, 0.0).astype(xq.dtype)
        return v, jnp.full((n,), dac.t_read_s / n, xq.dtype), jnp.ones((n,), xq.dtype)


class BitSerialEncoding(AbstractDACEncoding):
    """One read per magnitude bit: ``bits - 1`` phases of ``sign(q) b_k`` (``b_k`` bit
    ``k`` of ``round(|q| L)``, ``L = 2**(bits-1) - 1``), each at ``0`` or ``+-v_read`` for
    ``t_read``, combined after the ADC with weights ``2**k / L`` (shift and add).  Needs a
    finite number of DAC bits."""

    needs_bits: ClassVar[bool] = True
    phases_are_drives: ClassVar[bool] = True

    def n_phases(self, dac):
        return dac.bits - 1

    def phases(self, dac, xq):
        n_bits = dac.bits - 1
        mag = jax.lax.stop_gradient(jnp.round(jnp.abs(xq) * dac.n_levels)).astype(jnp.int32)
        sign = jax.lax.stop_gradient(jnp.sign(xq))
        ks = jnp.arange(n_bits)
        bits = ((mag[None] >> ks.reshape((-1,) + (1,) * xq.ndim)) & 1).astype(xq.dtype)
        weights = (2.0**ks / dac.n_levels).astype(xq.dtype)
        u = sign[None] * bits
        # Straight-through: the weighted sum of phases equals q(x); put its gradient on
        # phase 0 so d(sum_k w_k u_k)/dx = 1.
        u = u.at[0].add((xq - jax.lax.stop_gradient(xq)) / weights[0])
        return u, weights

    def schedule(self, dac, xq):
        u, weights = self.phases(dac, jax.lax.stop_gradient(xq))
        return u * dac.v_read, jnp.full(weights.shape, dac.t_read_s, xq.dtype), weights


# ---- DACs ------------------------------------------------------------------------------------
class AbstractDAC(eqx.Module):
    """Input digital-to-analog converter: normalised inputs -> word-line drives.

    Abstract fields:
        bits: resolution incl. sign (None = ideal). Levels ``k / (2**(bits-1) - 1)``.
        v_read: read voltage [V] for input 1.
        t_read_s: read pulse width [s] (full-scale width for pulse-width encoding, width of
            each bit for bit-serial).
        encoding: an :class:`AbstractDACEncoding`: :class:`AmplitudeEncoding` (voltage
            proportional to x), :class:`PulseWidthEncoding` (+-v_read for a time
            proportional to |x|: the cells only ever see v_read), :class:`BitSerialEncoding`
            (one read per magnitude bit, shift-and-add after the ADC).
        fom_j: energy per conversion step [J]; energy per conversion ``fom_j * 2**bits``.

    Abstract method: :meth:`drive_noise` (what the analog drive adds to the ideal levels)."""

    bits: eqx.AbstractVar[int | None]
    v_read: eqx.AbstractVar[float]
    t_read_s: eqx.AbstractVar[float]
    encoding: eqx.AbstractVar[AbstractDACEncoding]
    fom_j: eqx.AbstractVar[float]

    def __check_init__(self):
        _check_bits("DAC", self.bits)
        enc = self.encoding
        if not isinstance(enc, AbstractDACEncoding):
            choices = (
                "xbar.AmplitudeEncoding(), xbar.PulseWidthEncoding(), xbar.BitSerialEncoding()"
            )
            new = _ENCODING_CLASSES.get(enc) if isinstance(enc, str) else None
            hint = f"use encoding=xbar.{new}()" if new else f"use one of {choices}"
            raise ValueError(f"DAC encoding must be an encoding object; got {enc!r}: {hint}")
        if enc.needs_bits and self.bits is None:
            raise ValueError(
                f"DAC encoding {type(enc).__name__}() needs a finite number of bits; got bits=None"
            )
        check_positive("v_read", self.v_read, "V")
        check_positive("t_read_s", self.t_read_s, "s")
        check_nonnegative("fom_j", self.fom_j, "J")

    @abc.abstractmethod
    def drive_noise(self, u: Float[Array, "k *b m"], key: PRNGKeyArray) -> Float[Array, "k *b m"]:
        """The normalised drives ``u`` of every phase with the converter's analog noise added."""

    @property
    def n_levels(self) -> int | None:
        """Positive levels ``2**(bits-1) - 1`` (None when ideal)."""
        return None if self.bits is None else 2 ** (self.bits - 1) - 1

    @property
    def n_phases(self) -> int:
        """Read phases (ADC conversions) per input (``bits - 1`` for bit-serial, else 1)."""
        return self.encoding.n_phases(self)

    def quantize(self, x: Float[Array, "*b m"]) -> Float[Array, "*b m"]:
        """Inputs clipped to ``[-1, 1]`` and rounded to the DAC levels (STE gradient)."""
        if self.bits is None:
            return saturate(x, -1.0, 1.0)
        return quantize(x, 1.0 / self.n_levels, 1.0)

    def phases(
        self, x: Float[Array, "*b m"], key: PRNGKeyArray | None = None
    ) -> tuple[Float[Array, "k *b m"], Float[Array, " k"]]:
        """The read phases of one input: ``(u, weights)``.

        ``u[k]`` are normalised row drives (``v = u * v_read``) of phase ``k``, and the
        digital result is ``sum_k weights[k] * y_k``. Amplitude and pulse-width encodings
        have a single phase ``u = q(x)``; bit-serial has ``bits - 1`` phases of
        ``sign(x) * bit_k`` with weights ``2**k / (2**(bits-1) - 1)``. With ``key`` the
        drives carry the converter's noise (:meth:`drive_noise`)."""
        u, weights = self.encoding.phases(self, self.quantize(x))
        if key is not None:
            u = self.drive_noise(u, key)
        return u, weights

    def schedule(
        self, x: Float[Array, "*b m"]
    ) -> tuple[Float[Array, "s *b m"], Float[Array, " s"], Float[Array, " s"]]:
        """The noiseless physical drive of input ``x``: row voltages [V], slot durations
        [s] and digital weights (:meth:`AbstractDACEncoding.schedule`), no gradient."""
        return self.encoding.schedule(self, jax.lax.stop_gradient(self.quantize(x)))

    def energy_per_conversion_j(self) -> float:
        """Energy of one conversion [J] (Walden form; 0 when ideal)."""
        return 0.0 if self.bits is None else self.fom_j * 2.0**self.bits


class DAC(AbstractDAC):
    """Input DAC with exact levels (fields: :class:`AbstractDAC`).

    Defaults: 8 bits (Rasch 2023 preset), ``v_read`` 0.2 V (UNCONFIRMED), ``t_read_s``
    250 ns (Joshi 2020), amplitude encoding, ``fom_j`` 1 fJ (UNCONFIRMED)."""

    bits: int | None = eqx.field(default=8, static=True)
    v_read: float = 0.2
    t_read_s: float = 250e-9
    encoding: AbstractDACEncoding = AmplitudeEncoding()
    fom_j: float = 1e-15

    def drive_noise(self, u, key):
        """None: the levels are exact."""
        return u


class NoisyDAC(AbstractDAC):
    """Input DAC whose drive voltages carry independent Gaussian noise.

    Every row drive of every phase (and every read) gets ``noise_v * xi`` [V] added,
    ``xi ~ N(0, 1)``, also on rows driven at 0 V (driver output noise, e.g. thermal and
    supply noise of the row driver; an input-referred description, UNCONFIRMED magnitude).

    Fields: those of :class:`AbstractDAC` (same defaults as :class:`DAC`) and
        noise_v: RMS drive noise [V], ``>= 0``. Default 1 mV (UNCONFIRMED)."""

    bits: int | None = eqx.field(default=8, static=True)
    v_read: float = 0.2
    t_read_s: float = 250e-9
    encoding: AbstractDACEncoding = AmplitudeEncoding()
    fom_j: float = 1e-15
    noise_v: float = 1e-3

    def __check_init__(self):
        check_nonnegative("noise_v", self.noise_v, "V")

    def drive_noise(self, u, key):
        """``u + (noise_v / v_read) xi`` (normalised units)."""
        return u + (self.noise_v / self.v_read) * _normal(key, u.shape, u.dtype)


# ---- sense amplifier ----------------------------------------------------------------------
class SenseAmp(eqx.Module):
    """Column sense amplifier (virtual ground, transimpedance): ``gain * (i + offset + noise)``.

    Fields:
        gain: analog gain [-] (1 = ideal; a column-to-column spread can be given as an
            array of shape (N,)), finite and ``> 0``.
        offset_a: input-referred offset current [A] (scalar or per column), finite. Default 0.
        noise_a: input-referred RMS noise current [A] per read, ``>= 0``. Default 0.
    """

    gain: float | Array = 1.0
    offset_a: float | Array = 0.0
    noise_a: float = 0.0

    def __check_init__(self):
        check_positive("gain", self.gain)
        check_finite("offset_a", self.offset_a)
        check_nonnegative("noise_a", self.noise_a, "A")

    @property
    def noiseless(self) -> bool:
        """Whether ``noise_a`` is a concrete zero (reads then draw nothing here)."""
        return isinstance(self.noise_a, (int, float)) and self.noise_a == 0

    def __call__(self, i: Float[Array, "*b n"], key: PRNGKeyArray | None = None):
        out = i + self.offset_a
        if key is not None and not self.noiseless:
            out = out + self.noise_a * jax.random.normal(key, i.shape, i.dtype)
        return self.gain * out


# ---- ADCs ------------------------------------------------------------------------------------
class AbstractADC(eqx.Module):
    """Column analog-to-digital converter in normalised output units.

    Abstract fields:
        bits: resolution incl. sign (None = ideal); step ``2 * out_bound / (2**bits - 2)``.
        out_bound: full scale ``+-out_bound`` [normalised units], ``> 0``. In current:
            ``I_fs = out_bound * v_read * scale``.
        clip: saturate beyond full scale (True in hardware).
        col_gain, col_offset: per-column digital calibration applied after conversion,
            ``y = (code - col_offset) * col_gain`` (finite scalars or arrays of shape (N,),
            gain ``> 0``); :func:`xbar.calibrate_columns` measures them from reads.
        rate_hz: conversions per second, ``> 0``.
        fom_j: Walden FOM [J per conversion step], ``>= 0``.
        cols_per_adc: columns multiplexed onto one ADC (positive integer).

    Abstract method: :meth:`input_noise` (what the converter adds before quantising)."""

    bits: eqx.AbstractVar[int | None]
    out_bound: eqx.AbstractVar[float]
    clip: eqx.AbstractVar[bool]
    col_gain: eqx.AbstractVar[float | Array]
    col_offset: eqx.AbstractVar[float | Array]
    rate_hz: eqx.AbstractVar[float]
    fom_j: eqx.AbstractVar[float]
    cols_per_adc: eqx.AbstractVar[int]

    def __check_init__(self):
        _check_bits("ADC", self.bits)
        check_positive("out_bound", self.out_bound)
        check_positive("col_gain", self.col_gain)
        check_finite("col_offset", self.col_offset)
        check_positive("rate_hz", self.rate_hz, "Hz")
        check_nonnegative("fom_j", self.fom_j, "J")
        if not (isinstance(self.cols_per_adc, int) and self.cols_per_adc >= 1):
            raise ValueError(f"cols_per_adc must be a positive integer, got {self.cols_per_adc!r}")

    @abc.abstractmethod
    def input_noise(self, y: Float[Array, "*b n"], key: PRNGKeyArray) -> Float[Array, "*b n"]:
        """The analog input ``y`` with the converter's input-referred noise added."""

    @property
    def lsb(self):
        """Step of one code in normalised units (None when ideal)."""
        return None if self.bits is None else 2.0 * self.out_bound / (2**self.bits - 2)

    def __call__(
        self, y: Float[Array, "*b n"], key: PRNGKeyArray | None = None
    ) -> Float[Array, "*b n"]:
        """Convert normalised analog outputs (STE gradient), then apply calibration. With
        ``key`` the input first receives the converter's noise (:meth:`input_noise`)."""
        if key is not None:
            y = self.input_noise(y, key)
        if self.bits is None:
            code = saturate(y, -self.out_bound, self.out_bound) if self.clip else y
        else:
            code = quantize(y, self.lsb, self.out_bound, self.clip)
        return (code - self.col_offset) * self.col_gain

    def energy_per_conversion_j(self) -> float:
        """Energy of one conversion [J] (Walden form; 0 when ideal)."""
        return 0.0 if self.bits is None else self.fom_j * 2.0**self.bits

    def conversion_time_s(self, n_cols: int) -> float:
        """Time to convert ``n_cols`` columns [s]: the ``ceil(n / cols_per_adc)`` ADCs run in
        parallel, each converting its ``cols_per_adc`` columns one after another."""
        return min(self.cols_per_adc, n_cols) / self.rate_hz


class ADC(AbstractADC):
    """Noiseless column ADC (fields: :class:`AbstractADC`).

    Defaults: 8 bits and ``out_bound`` 10 (Rasch 2023 preset), clipping on, no
    calibration, 100 MS/s (UNCONFIRMED), FOM 10 fJ (UNCONFIRMED, Murmann survey), 8
    columns per ADC (UNCONFIRMED, a column multiplexer as in NeuroSim)."""

    bits: int | None = eqx.field(default=8, static=True)
    out_bound: float = 10.0
    clip: bool = eqx.field(default=True, static=True)
    col_gain: float | Array = 1.0
    col_offset: float | Array = 0.0
    rate_hz: float = 1e8
    fom_j: float = 10e-15
    cols_per_adc: int = eqx.field(default=8, static=True)

    def input_noise(self, y, key):
        """None."""
        return y


class NoisyADC(AbstractADC):
    """Column ADC with input-referred Gaussian noise of ``noise`` [normalised output units]
    per conversion, independent between columns and reads (the ``out_noise`` of aihwkit's
    ``IOParameters``; Rasch et al. 2023 train with 0.04).

    Fields: those of :class:`AbstractADC` (same defaults as :class:`ADC`) and
        noise: RMS input noise [normalised units], ``>= 0``. Default 0.04 (Rasch 2023)."""

    bits: int | None = eqx.field(default=8, static=True)
    out_bound: float = 10.0
    clip: bool = eqx.field(default=True, static=True)
    col_gain: float | Array = 1.0
    col_offset: float | Array = 0.0
    rate_hz: float = 1e8
    fom_j: float = 10e-15
    cols_per_adc: int = eqx.field(default=8, static=True)
    noise: float = 0.04

    def __check_init__(self):
        check_nonnegative("noise", self.noise)

    def input_noise(self, y, key):
        """``y + noise * xi``."""
        return y + self.noise * _normal(key, y.shape, y.dtype)


def ideal_dac(v_read: float = 0.2) -> DAC:
    """A DAC without quantisation (amplitude encoding)."""
    return DAC(bits=None, v_read=v_read)


def ideal_adc() -> ADC:
    """An ADC without quantisation or clipping."""
    return ADC(bits=None, clip=False)


__all__ = [
    "ADC",
    "AbstractADC",
    "AbstractDAC",
    "AbstractDACEncoding",
    "AmplitudeEncoding",
    "BitSerialEncoding",
    "DAC",
    "NoisyADC",
    "NoisyDAC",
    "PulseWidthEncoding",
    "SenseAmp",
    "ideal_adc",
    "ideal_dac",
    "quantize",
    "ste_round",
]
