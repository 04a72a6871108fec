"""The crossbar: a device model on a grid, its cell stack, wiring, mapping and peripherals.

A :class:`Crossbar` holds

* ``device``: a ``devices.Device`` whose parameters may be arrays of the physical shape
  ``(M, P)`` (device-to-device variation drawn by ``device.sample``),
* ``state``: the device state pytree of shape ``(M, P)``,
* ``cell``: the cell stack around each device (:mod:`xbar.cells`: passive, 1T1R, 1S1R,
  a device in series with an element),
* ``mapping``: how signed logical weights ``(M, N)`` sit on the ``(M, P)`` devices
  (an :class:`xbar.AbstractMapping`),
* ``wiring``: the wire resistances (:class:`Wiring`),
* ``dac``, ``sense``, ``adc``: the peripherals (:mod:`xbar.peripherals`),
* ``g_eff``: an optional cached effective matrix (``xbar.effective_matrix``) so that a
  read with IR drop costs one matrix product, with ``read_stats`` (the read-noise
  statistics of the logical columns), ``t_eff`` (the read time both belong to) and
  ``gdc_alpha`` (the drift-compensation factor of that time, when asked for);
  ``noise_frozen`` marks a cached matrix that carries one draw of the device read noise
  (:meth:`Crossbar.with_read_noise_frozen`); ``w_log`` is the cached matrix with the pair
  (or reference) columns already combined, ``mapping.combine(g_eff)``, which a noiseless
  read multiplies directly.

It is immutable: every operation returns a new crossbar. The read (:meth:`Crossbar.mvm`)
is described in :mod:`xbar.read`, its read noise in :mod:`xbar.read_noise`.

Output units: normalised, ``y = x @ W`` for an ideal array (see :mod:`xbar.peripherals`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from xbar.devices import Device
from xbar.devices._checks import check_nonnegative

from . import read as _read
from . import read_noise as _noise
from ._inputs import check_key, check_time, is_concrete
from .cells import AbstractCell, Passive
from .mapping import AbstractMapping, DifferentialMapping
from .peripherals import ADC, DAC, AbstractADC, AbstractDAC, SenseAmp
from .read_modes import AbstractNoiseDraw, AbstractWirePath, PerRead
from .solve import effective_matrix, solve


class Wiring(eqx.Module):
    """Wire resistances of a crossbar (circuit convention of :func:`xbar.solve`).

    Fields:
        r_wl, r_bl: resistance of one word-/bit-line segment between neighbouring cells
            [Ohm], ``>= 0``. Default 2.12 Ohm: a copper line of the 22 nm node (40 nm wide,
            aspect ratio 1.9, resistivity 4.03e-8 Ohm m with size effects) over a 4F cell
            pitch (1T1R pseudo-crossbar), from the interconnect table of NeuroSim (Chen,
            Peng & Yu, IEEE TCAD 37(12), 3067 (2018)): ``R = rho L / (w h)``.
        r_src: row driver output resistance [Ohm]. Default 0 (ideal driver).
        r_sense: sense-node input resistance [Ohm]. Default 0 (ideal virtual ground).
    """

    r_wl: float = 2.12
    r_bl: float = 2.12
    r_src: float = 0.0
    r_sense: float = 0.0

    def __check_init__(self):
        for name in ("r_wl", "r_bl", "r_src", "r_sense"):
            check_nonnegative(name, getattr(self, name), "Ohm")

    @classmethod
    def ideal(cls) -> Wiring:
        """Zero-resistance wires (no IR drop)."""
        return cls(r_wl=0.0, r_bl=0.0, r_src=0.0, r_sense=0.0)

    def solve_kwargs(self) -> dict[str, Any]:
        """The wire arguments of :func:`xbar.solve`."""
        return dict(r_wl=self.r_wl, r_bl=self.r_bl, r_src=self.r_src, r_sense=self.r_sense)

    @property
    def is_ideal(self) -> bool:
        """All four resistances are concrete zeros."""
        vals = (self.r_wl, self.r_bl, self.r_src, self.r_sense)
        return all(is_concrete(r) and np.all(np.asarray(r) == 0) for r in vals)


def _check_component(name: str, value, cls, example: str):
    if isinstance(value, type):
        raise ValueError(
            f"{name} must be an instance (e.g. {example}), got the class {value.__name__}"
        )
    if not isinstance(value, cls):
        raise ValueError(f"{name} must be a {cls.__name__} (e.g. {example}), got {value!r}")


class Crossbar(eqx.Module):
    """An ``M x N`` (logical) crossbar tile of memristive devices; see the module docstring.

    Build with :meth:`Crossbar.create`; read with :meth:`mvm`; program with
    :func:`xbar.program` / :func:`xbar.apply_pulses`; account energy with
    :func:`xbar.read_energy`."""

    device: Any
    state: Any
    mapping: AbstractMapping
    wiring: Wiring
    dac: AbstractDAC
    sense: SenseAmp
    adc: AbstractADC
    cell: AbstractCell = Passive()
    g_eff: Array | None = None
    stuck: Array | None = None
    g_stuck_on: float | Array | None = None
    g_stuck_off: float | Array | None = None
    read_stats: tuple | None = None
    t_eff: float | Array | None = None
    gdc_alpha: Array | None = None
    noise_frozen: bool = eqx.field(default=False, static=True)
    w_log: Array | None = None

    @classmethod
    def create(
        cls,
        device,
        shape: tuple[int, int],
        *,
        key: PRNGKeyArray | None = None,
        variability=None,
        mapping: AbstractMapping | None = None,
        wiring: Wiring | None = None,
        cell: AbstractCell | None = None,
        dac: AbstractDAC | None = None,
        adc: AbstractADC | None = None,
        sense: SenseAmp | None = None,
        faults=None,
        g_stuck_on: float | None = None,
        g_stuck_off: float | None = None,
        state=None,
        **state_values,
    ) -> Crossbar:
        """A crossbar of logical ``shape = (M, N)``.

        Args:
            device: a ``devices.Device`` instance (nominal parameters).
            shape: logical shape ``(rows, weight columns)``, positive integers; the
                physical array has ``mapping.n_physical(N)`` columns.
            key: PRNG key (legacy ``PRNGKey`` or ``jax.random.key``) for device-to-device
                variation and faults (needed if either is given).
            variability: ``{parameter: sigma or devices.Spread}`` for ``device.sample``.
            mapping, wiring, cell, dac, adc, sense: components (defaults: differential pair
                0-25 uS, 22 nm wires, a passive cell, 8-bit DAC/ADC, ideal sense amplifier).
            faults: a ``devices.StuckAtFaults`` (rates); a fault mask of shape ``(M, P)``
                is drawn with ``key``. Stuck-ON cells read ``g_stuck_on`` (default the
                mapping's ``g_max``), stuck-OFF cells ``g_stuck_off`` (default ``g_min``),
                and programming pulses leave them unchanged.
            state: an initial device state whose leaves have shape ``(M, P)``; else
                ``device.init_state((M, P), **state_values)``.
        """
        _check_component("device", device, Device, "devices.PCMStatistical()")
        if not (
            isinstance(shape, (tuple, list))
            and len(shape) == 2
            and all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape)
        ):
            raise ValueError(f"shape must be two positive integers (rows, columns), got {shape!r}")
        m, n = (int(s) for s in shape)
        mapping = DifferentialMapping() if mapping is None else mapping
        wiring = Wiring() if wiring is None else wiring
        cell = Passive() if cell is None else cell
        dac = DAC() if dac is None else dac
        adc = ADC() if adc is None else adc
        sense = SenseAmp() if sense is None else sense
        for name, val, kind, ex in (
            ("mapping", mapping, AbstractMapping, "xbar.DifferentialMapping()"),
            ("wiring", wiring, Wiring, "xbar.Wiring()"),
            ("cell", cell, AbstractCell, "xbar.cells.OneTOneR()"),
            ("dac", dac, AbstractDAC, "xbar.DAC()"),
            ("adc", adc, AbstractADC, "xbar.ADC()"),
            ("sense", sense, SenseAmp, "xbar.SenseAmp()"),
        ):
            _check_component(name, val, kind, ex)
        p = mapping.n_physical(n)
        if (variability or faults is not None) and key is None:
            raise ValueError("Crossbar.create needs a key when variability or faults are given")
        stuck = None
        if key is not None:
            k_var, k_fault = jax.random.split(key)
            if variability:
                device = device.sample(k_var, (m, p), variability)
            if faults is not None:
                stuck = faults.draw(k_fault, (m, p))
        if state is None:
            state = device.init_state((m, p), **state_values)
        else:
            if state_values:
                raise ValueError("give either state or state values, not both")
            for leaf in jax.tree_util.tree_leaves(state):
                if jnp.shape(leaf) != (m, p):
                    raise ValueError(
                        f"state leaves must have the physical shape {(m, p)} (rows, "
                        f"mapping.n_physical({n})), got a leaf of shape {jnp.shape(leaf)}"
                    )
        return cls(
            device=device,
            state=state,
            mapping=mapping,
            wiring=wiring,
            dac=dac,
            sense=sense,
            adc=adc,
            cell=cell,
            stuck=stuck,
            g_stuck_on=mapping.g_max if g_stuck_on is None else g_stuck_on,
            g_stuck_off=mapping.g_min if g_stuck_off is None else g_stuck_off,
        )

    # ---- shapes ------------------------------------------------------------------------
    @property
    def physical_shape(self) -> tuple[int, int]:
        """``(M, P)``: rows and physical columns."""
        leaf = jax.tree_util.tree_leaves(self.state)[0]
        return tuple(leaf.shape[-2:])

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``: rows and logical (weight) columns."""
        m, p = self.physical_shape
        return m, self.mapping.n_logical(p)

    @property
    def i_unit(self):
        """Current [A] of one normalised output unit: ``v_read * mapping.scale``."""
        return self.dac.v_read * self.mapping.scale

    # ---- the cell --------------------------------------------------------------------
    def cell_current(self, state, v: Float[Array, "*b m p"], device_current=None):
        """Current [A] of each cell stack (device plus access element) at stack voltage
        ``v`` [V]; ``device_current(x)`` replaces the device law when given."""
        i_dev = device_current or (lambda u: self.device.current(state, u))
        return self.cell.current(i_dev, v)

    def device_state(self, t_s: float | Array | None = None):
        """The device state after resting ``t_s`` [s] since programming (None: as is)."""
        if t_s is None:
            return self.state
        return self.device.drift(self.state, check_time("t_s", t_s))

    def _chord(self, g_dev, v, state=None, device_current=None):
        """Chord conductance [S] of the stacks around devices of conductance ``g_dev`` at
        the read voltage ``v`` (the linear conductance where the stack stays linear)."""
        if device_current is None:
            lin = self.cell.linear_conductance(g_dev)
            if lin is not None:
                return lin

            def device_current(u):
                return g_dev * u

        full = jnp.full(jnp.shape(g_dev), v, jnp.result_type(g_dev, float))
        return self.cell.current(device_current, full) / v

    def conductances(
        self,
        t_s: float | Array | None = None,
        key: PRNGKeyArray | None = None,
        v: float | None = None,
    ) -> Float[Array, "m p"]:
        """Chord conductance [S] of each cell (incl. its access element) at the read
        voltage ``v`` (default ``dac.v_read``), at time ``t_s`` after programming, with one
        draw of read noise when ``key`` is given (noise scales the device conductance, the
        series element is noiseless)."""
        v = self.dac.v_read if v is None else v
        state = self.device_state(t_s)
        g_dev = self.device.conductance(state, v)
        if isinstance(self.cell, Passive):
            g_cell = g_dev
        else:
            g_cell = self._chord(g_dev, v, device_current=lambda u: self.device.current(state, u))
        if self.stuck is not None:
            # A stuck cell reads its stuck conductance (in series with its access element).
            from_on, from_off = self._stuck_cell_g(v)
            g_cell = jnp.where(
                self.stuck == 1, from_on, jnp.where(self.stuck == 2, from_off, g_cell)
            )
        if key is None:
            return g_cell
        return g_cell * _noise.noise_ratio(self.device.read_noise(state, key, v), g_dev)

    def _stuck_cell_g(self, v):
        g = jnp.stack(jnp.broadcast_arrays(self.g_stuck_on, self.g_stuck_off))
        chord = self._chord(g, v)
        return chord[0], chord[1]

    def weights(self, t_s: float | Array | None = None) -> Float[Array, "m n"]:
        """Logical weights read back from the cell conductances (inverse mapping)."""
        return self.mapping.from_conductance(self.conductances(t_s))

    # ---- IR drop -------------------------------------------------------------------------
    def with_effective_matrix(
        self,
        t_s: float | Array | None = None,
        block_rows: int | None = None,
        *,
        drift_compensation: bool = False,
    ) -> Crossbar:
        """A copy caching ``xbar.effective_matrix`` of the cell conductances at time ``t_s``.

        Reads with ``ir_drop=None`` (or ``xbar.EffectiveMatrix()``) then cost one matrix
        product.
        The read-noise statistics at the same time are cached with it (``read_stats``,
        see :meth:`with_cached_matrix`); reads without ``t_s`` happen at ``t_s``, and a
        read that asks for another time raises (rebuild the cache for it). With
        ``drift_compensation`` the global drift-compensation factor of that time is
        cached too (``gdc_alpha``; one more effective matrix, at programming time), so
        that ``mvm(..., drift_compensation=True)`` can use the cache. Recompute after
        programming. ``block_rows`` computes the rows of the matrix in blocks of that many
        unit-input solves (memory ``~ block_rows * M * P`` instead of ``M^2 P``)."""
        if t_s is not None:
            t_s = check_time("t_s", t_s)
        g_eff = self._effective(self.conductances(t_s), block_rows)
        new = self.with_cached_matrix(g_eff, t_s)
        if drift_compensation:
            ref = None if t_s is None else self._effective(self.conductances(None), block_rows)
            new = eqx.tree_at(
                lambda c: c.gdc_alpha,
                new,
                _read.cached_gdc_alpha(new, ref),
                is_leaf=lambda x: x is None,
            )
        return new

    def _effective(self, g, block_rows):
        m = g.shape[0]
        kw = self.wiring.solve_kwargs()
        if block_rows is None or block_rows >= m:
            return effective_matrix(g, **kw)
        if not (isinstance(block_rows, int) and block_rows >= 1):
            raise ValueError(f"block_rows must be None or a positive integer, got {block_rows!r}")
        nb = -(-m // block_rows)
        eye = jnp.eye(nb * block_rows, m, dtype=g.dtype).reshape(nb, block_rows, m)
        g_eff = jax.lax.map(lambda e: solve(g, e, **kw).i_out, eye).reshape(-1, g.shape[1])
        return g_eff[:m]

    def with_cached_matrix(
        self, g_eff: Float[Array, "m p"], t_s: float | Array | None = None
    ) -> Crossbar:
        """A copy caching the given physical effective matrix ``g_eff`` [S] (e.g. from
        :func:`xbar.effective_matrix` computed elsewhere) as the matrix of reads at time
        ``t_s`` [s] after programming, with the read-noise statistics at that time:
        ``read_stats = (E[W], Var_independent, Var_shared)`` of the logical columns [S, S^2]
        (:mod:`xbar.read_noise`; None when the device's noise has no known moments)."""
        g_eff = jnp.asarray(g_eff)
        if g_eff.shape != self.physical_shape:
            raise ValueError(
                f"g_eff must have the physical shape {self.physical_shape}, got {g_eff.shape}"
            )
        if t_s is not None:
            t_s = check_time("t_s", t_s)
        stats = _noise.read_stats(self, g_eff, self.device_state(t_s))
        return eqx.tree_at(
            lambda c: (c.g_eff, c.read_stats, c.t_eff, c.gdc_alpha, c.w_log),
            self._unfrozen(),
            (g_eff, stats, t_s, None, self.mapping.combine(g_eff)),
            is_leaf=lambda x: x is None,
        )

    def with_read_noise_frozen(
        self, key: PRNGKeyArray, t_s: float | Array | None = None
    ) -> Crossbar:
        """A copy whose reads share one draw of the device read noise, kept across calls
        (``xbar.PerCall`` over many calls, e.g. every time step of a network run; see
        :mod:`xbar.read_modes`).

        Every cell draws ``G_read / G`` once (``device.read_noise``, at the time of the cached
        matrix), which scales its entries of the effective matrix (first order in the wire
        resistance, exact without wires, as the per-read path does); reads then draw no
        device read noise (DAC, sense-amplifier and ADC noise stay per read). A crossbar
        without a cached matrix, or asked for ``t_s``, first caches the matrix of time
        ``t_s`` (the effective matrix with resistive wires, else the cell conductances).
        Reads must go through the cached matrix."""
        key = check_key("key", key)
        if key is None:
            raise ValueError("key must be a PRNG key (the read-noise draw), got None")
        if self.g_eff is None or t_s is not None:
            g = self.conductances(t_s)
            g_eff = g if self.wiring.is_ideal else self._effective(g, None)
            base = self.with_cached_matrix(g_eff, t_s)
        else:
            base = self._unfrozen()
        state = base.device_state(base.t_eff)
        g_dev = base.device.conductance(state, base.dac.v_read)
        ratio = _read._ratio(base, state, g_dev, key)
        g_frozen = base.g_eff * ratio
        frozen = eqx.tree_at(
            lambda c: (c.g_eff, c.read_stats, c.w_log),
            base,
            (g_frozen, None, base.mapping.combine(g_frozen)),
            is_leaf=lambda x: x is None,
        )
        return dataclasses.replace(frozen, noise_frozen=True)

    def _unfrozen(self) -> Crossbar:
        return dataclasses.replace(self, noise_frozen=False) if self.noise_frozen else self

    def with_state(self, state) -> Crossbar:
        """A copy with a new device state (e.g. after programming) and no cached matrix."""
        return eqx.tree_at(
            lambda c: (c.state, c.g_eff, c.read_stats, c.t_eff, c.gdc_alpha, c.w_log),
            self._unfrozen(),
            (state, None, None, None, None, None),
            is_leaf=lambda x: x is None,
        )

    # ---- the read ------------------------------------------------------------------------
    def mvm(
        self,
        x: Float[Array, "*b m"],
        key: PRNGKeyArray | None = None,
        *,
        t_s: float | Array | None = None,
        ir_drop: AbstractWirePath | None = None,
        weights: Float[Array, "m n"] | None = None,
        drift_compensation: bool = False,
        read_noise: AbstractNoiseDraw = PerRead(),
    ) -> Float[Array, "*b n"]:
        """One analog matrix-vector product ``y ~ x @ W`` (normalised units).

        Args:
            x: inputs in ``[-1, 1]`` (clipped), shape ``(M,)`` or ``(B, M)``, finite
                (lists and integer arrays are converted to floats).
            key: PRNG key (legacy ``PRNGKey`` or ``jax.random.key``) for read noise and
                converter/sense-amplifier noise; ``None`` = noiseless.
            t_s: read time after programming [s], finite and ``>= 0`` (device drift); None
                = no drift step (or the time of the cached matrix).
            ir_drop: how the read treats the wires (:mod:`xbar.read_modes`):
                ``xbar.NoWires()``, ``xbar.EffectiveMatrix()`` (cached or freshly computed
                effective matrix), ``xbar.LinearSolve()`` (``xbar.solve`` with linear
                cells), ``xbar.NonlinearSolve()`` (``xbar.solve`` with the full cell I-V;
                for pulse-width encoding the chord at ``v_read`` is used, exact without
                wires), or None (default: the cached matrix if present, else the effective
                matrix when the wires are resistive).
            weights: read as if the devices were programmed exactly to these logical
                weights ``(M, N)`` (hardware-aware training); device drift and read noise
                are then not applied, everything else is.
            drift_compensation: global drift compensation (:mod:`xbar.devices.compensation`):
                scale the output by ``alpha = readout(t0) / readout(t_s)``, the mean
                absolute output of noiseless calibration reads of every row alone, at
                programming time and at ``t_s``. Valid for signed weights and inputs.
            read_noise: how device read noise is drawn (:mod:`xbar.read_modes`,
                :mod:`xbar.read_noise`): ``xbar.PerRead()`` (default; independent per
                read, drawn at the outputs from the per-cell moments when known and the
                read is linear, else per cell), ``xbar.PerRead(per_cell=True)`` (every cell
                of every read drawn), ``xbar.PerCall()`` (one draw of every cell shared by
                all reads of the call).
        Returns ``y`` with the batch shape of ``x`` and ``N`` columns.
        """
        return _read.mvm(
            self,
            x,
            key,
            t_s=t_s,
            ir_drop=ir_drop,
            weights=weights,
            drift_compensation=drift_compensation,
            read_noise=read_noise,
        )


__all__ = ["Crossbar", "Wiring"]
