"""The crossbar: a device model on a grid, its wiring, its peripherals, and a read (``mvm``).

A :class:`Crossbar` holds

* ``device``: a ``devices.Device`` whose parameters may be arrays of the physical shape
  ``(M, P)`` (device-to-device variation drawn by ``device.sample``),
* ``state``: the device state pytree of shape ``(M, P)``,
* ``mapping``: how signed logical weights ``(M, N)`` sit on the ``(M, P)`` devices
  (:class:`xbar.DifferentialMapping` or :class:`xbar.ReferenceMapping`),
* ``wiring``: wire resistances and the cell type (:class:`Wiring`),
* ``dac``, ``sense``, ``adc``: the peripherals (:mod:`xbar.peripherals`),
* ``g_eff``: an optional cached effective matrix (``xbar.effective_matrix``) so that a
  read with IR drop costs one matrix product, with ``read_stats`` (the read-noise
  statistics of the logical columns) and ``t_eff`` (the read time both belong to).

It is immutable: every operation returns a new crossbar.

A read (``mvm``) applies, in order (DESIGN.md, "The crossbar"):

1. input encoding: DAC quantisation, amplitude / pulse-width / bit-serial phases;
2. array physics: drift to the read time (``device.drift``), read noise
   (``device.read_noise``), faults (carried by the device model, e.g.
   ``devices.StuckAtFaults``), the cell I-V (series access transistor or selector), and
   IR drop through the wires (``xbar.effective_matrix`` or ``xbar.solve``);
3. analog combination of the differential pair / reference column, sense amplifier;
4. ADC (with per-column calibration), shift-and-add of bit-serial phases.

Read noise (``mvm(..., key)``). Each read (one input vector, or one phase of a bit-serial
input) draws its own device read noise: the devices' read-noise models
(``device.read_noise``; Joshi et al., Nat. Commun. 11, 2473 (2020), Eq. 3.3 for the
statistical PCM; ``devices.ReadNoise``) describe one read as an independent draw, and the
reads of a batch are separate reads in time. (1/f noise is correlated over times short
against ``1/f_min``, so a burst of reads also shares part of it; ``read_noise="snapshot"``
gives the opposite limit, one draw of the array shared by the whole call, as aihwkit
freezes PCM read noise into the weights for an evaluation.)

Per read, output column ``j`` receives ``sum_i v_i dW_ij`` from independent zero-mean
per-cell fluctuations ``dW_ij`` of variance ``s_ij^2``: a sum of independent terms with
mean ``v @ E[W]`` and variance ``(v * v) @ s^2`` (Gaussian when the cells are; by the
central limit theorem close to it otherwise). When the device's read noise has known
per-cell moments (``device.read_noise_moments``) and the read is linear (``ir_drop`` ``"none"``
or ``"effective"``), ``mvm`` draws this output noise directly, ``B x N`` normal draws and
one more matrix product instead of ``B x M x P`` draws ("auto"); otherwise it draws every
cell of every read (``"cells"``, exact for any noise model, e.g. random telegraph noise).
With wire resistance, a cell's fluctuation reaches the outputs through the effective
matrix: it scales the cell's entries ``W_eff[i, j]`` by its relative change ``G_read / G``
(first order in the wire resistance, exact without wires), in every path.

Output units: normalised, ``y = x @ W`` for an ideal array (see :mod:`xbar.peripherals`).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from xbar.devices._checks import check_nonnegative, check_positive
from xbar.devices._math import safe_sinh
from xbar.devices.faults import StuckAtFaults

from .mapping import DifferentialMapping, Mapping, ReferenceMapping
from .peripherals import ADC, DAC, SenseAmp

_CELLS = ("passive", "1T1R", "1S1R")
_IR_MODES = ("auto", "none", "effective", "solve", "nonlinear")
_NOISE_MODES = ("auto", "cells", "snapshot")
# Cells per batch of the per-cell, per-read noise path (memory ~ 4 bytes x this x batch).
_CELLS_PER_MAP_BATCH = 2**22


class Wiring(eqx.Module):
    """Wire resistances and cell type of a crossbar.

    Fields:
        r_wl, r_bl: resistance of one word-/bit-line segment between neighbouring cells
            [Ohm]. Default 2.12 Ohm: NeuroSim interconnect table, 22 nm node, 4F cell pitch
            (1T1R pseudo-crossbar), reference section 5.1 [DER from NeuroSim Param.cpp].
        r_src: row driver output resistance [Ohm]. Default 0 (ideal driver).
        r_sense: sense-node input resistance [Ohm]. Default 0 (ideal virtual ground).
        cell: ``"passive"`` (device only), ``"1T1R"`` (device in series with an access
            transistor of on-resistance ``r_access``) or ``"1S1R"`` (device in series with a
            selector ``I = sel_i0 sinh(V / sel_v0)``).
        r_access: access-transistor on-resistance [Ohm] (1T1R). Default 1 kOhm (UNCONFIRMED;
            typical for a minimum-size transistor at full gate drive).
        sel_i0, sel_v0: selector prefactor [A] and voltage scale [V] (1S1R). Defaults
            1e-7 A and 0.1 V (UNCONFIRMED: they give a half-select nonlinearity
            I(V)/I(V/2) of order 10-100 at V ~ 1 V, the range NeuroSim assumes, K = 10).
    """

    r_wl: float = 2.12
    r_bl: float = 2.12
    r_src: float = 0.0
    r_sense: float = 0.0
    cell: str = eqx.field(default="passive", static=True)
    r_access: float = 1e3
    sel_i0: float = 1e-7
    sel_v0: float = 0.1

    def __check_init__(self):
        for name in ("r_wl", "r_bl", "r_src", "r_sense", "r_access"):
            check_nonnegative(name, getattr(self, name), "Ohm")
        check_positive("sel_i0", self.sel_i0, "A")
        check_positive("sel_v0", self.sel_v0, "V")
        if self.cell not in _CELLS:
            raise ValueError(f"cell must be one of {_CELLS}, got {self.cell!r}")

    @classmethod
    def ideal(cls, cell: str = "passive") -> Wiring:
        """Zero-resistance wires (no IR drop)."""
        return cls(r_wl=0.0, r_bl=0.0, r_src=0.0, r_sense=0.0, cell=cell)

    def solve_kwargs(self) -> dict[str, Any]:
        return dict(r_wl=self.r_wl, r_bl=self.r_bl, r_src=self.r_src, r_sense=self.r_sense)


def _series_current(i_dev, i_acc, v, n_iter: int = 60):
    """Current through a device ``i_dev(u)`` in series with an element ``i_acc(w)`` at total
    voltage ``v`` (elementwise). Both laws are increasing and pass through 0, so the device
    voltage ``u`` lies between 0 and ``v``: bisection, then one Newton step on the solved
    point whose derivative gives the implicit-function gradient."""
    lo = jnp.minimum(v, 0.0)
    hi = jnp.maximum(v, 0.0)

    def body(_, bounds):
        a, b = bounds
        m = 0.5 * (a + b)
        f = i_dev(m) - i_acc(v - m)
        return jnp.where(f > 0, a, m), jnp.where(f > 0, m, b)

    a, b = jax.lax.fori_loop(
        0, n_iter, body, (jax.lax.stop_gradient(lo), jax.lax.stop_gradient(hi))
    )
    u0 = jax.lax.stop_gradient(0.5 * (a + b))
    f, df = jax.jvp(lambda u: i_dev(u) - i_acc(v - u), (u0,), (jnp.ones_like(u0),))
    # u = u0 - f / f' has value u0 (f ~ 0) and the gradient of the exact root.
    u = u0 - (f - jax.lax.stop_gradient(f)) / jax.lax.stop_gradient(jnp.where(df == 0, 1.0, df))
    return i_dev(u)


class Crossbar(eqx.Module):
    """An ``M x N`` (logical) crossbar tile of memristive devices; see the module docstring.

    Build with :meth:`Crossbar.create`; read with :meth:`mvm`; program with
    :func:`xbar.program` / :func:`xbar.apply_pulses`; account energy with
    :func:`xbar.read_energy`."""

    device: Any
    state: Any
    mapping: Mapping
    wiring: Wiring
    dac: DAC
    sense: SenseAmp
    adc: ADC
    g_eff: Array | None = None
    stuck: Array | None = None
    g_stuck_on: float | Array | None = None
    g_stuck_off: float | Array | None = None
    read_stats: tuple | None = None
    t_eff: float | Array | None = None

    @classmethod
    def create(
        cls,
        device,
        shape: tuple[int, int],
        *,
        key: PRNGKeyArray | None = None,
        variability=None,
        mapping: Mapping | None = None,
        wiring: Wiring | None = None,
        dac: DAC | None = None,
        adc: ADC | None = None,
        sense: SenseAmp | None = None,
        faults=None,
        g_stuck_on: float | None = None,
        g_stuck_off: float | None = None,
        state=None,
        **state_values,
    ) -> Crossbar:
        """A crossbar of logical ``shape = (M, N)``.

        Args:
            device: a ``devices.Device`` model (nominal parameters).
            shape: logical shape ``(rows, weight columns)``; the physical array has
                ``mapping.n_physical(N)`` columns.
            key: PRNG key for device-to-device variation (needed if ``variability``).
            variability: ``{parameter: sigma or devices.Spread}`` for ``device.sample``.
            mapping, wiring, dac, adc, sense: components (defaults: differential pair
                0-25 uS, NeuroSim 22 nm wires, 8-bit DAC/ADC, ideal sense amplifier).
            faults: a ``devices.StuckAtFaults`` (rates); a fault mask of shape ``(M, P)``
                is drawn with ``key``. Stuck-ON cells read ``g_stuck_on`` (default the
                mapping's ``g_max``), stuck-OFF cells ``g_stuck_off`` (default ``g_min``),
                and programming pulses leave them unchanged.
            state: an initial device state of shape ``(M, P)``; else
                ``device.init_state((M, P), **state_values)``.
        """
        m, n = shape
        if not (m >= 1 and n >= 1):
            raise ValueError(f"shape must have positive entries, got {shape}")
        mapping = DifferentialMapping() if mapping is None else mapping
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
        return cls(
            device=device,
            state=state,
            mapping=mapping,
            wiring=Wiring() if wiring is None else wiring,
            dac=DAC() if dac is None else dac,
            sense=SenseAmp() if sense is None else sense,
            adc=ADC() if adc is None else adc,
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
        return (m, p // 2) if isinstance(self.mapping, DifferentialMapping) else (m, p - 1)

    @property
    def i_unit(self):
        """Current [A] of one normalised output unit: ``v_read * mapping.scale``."""
        return self.dac.v_read * self.mapping.scale

    # ---- the cell --------------------------------------------------------------------
    def cell_current(self, state, v: Float[Array, "*b m p"], device_current=None):
        """Current [A] of each cell (device plus access element) at cell voltage ``v`` [V]."""
        i_dev = device_current or (lambda u: self.device.current(state, u))
        w = self.wiring
        if w.cell == "passive":
            return i_dev(v)
        if w.cell == "1T1R":
            return _series_current(i_dev, lambda u: u / w.r_access, v)
        return _series_current(i_dev, lambda u: w.sel_i0 * safe_sinh(u / w.sel_v0), v)

    def device_state(self, t_s: float | Array | None = None):
        """The device state after resting ``t_s`` [s] since programming (None: as is)."""
        return self.state if t_s is None else self.device.drift(self.state, t_s)

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
        if self.wiring.cell == "passive":
            g_cell = g_dev
        else:
            g_cell = self.cell_current(state, jnp.full(g_dev.shape, v, g_dev.dtype)) / v
        if self.stuck is not None:
            # A stuck cell reads its stuck conductance (in series with its access element).
            g_on, g_off = self._stuck_cell_g(v)
            g_cell = StuckAtFaults.apply(g_cell, self.stuck, g_on, g_off)
        if key is None:
            return g_cell
        return g_cell * _noise_ratio(self.device.read_noise(state, key, v), g_dev)

    def _stuck_cell_g(self, v):
        if self.wiring.cell == "passive":
            return self.g_stuck_on, self.g_stuck_off
        m, p = self.physical_shape
        g = jnp.stack(jnp.broadcast_arrays(self.g_stuck_on, self.g_stuck_off))
        full = jnp.full((2,), v, g.dtype).reshape((2,) + (1,) * (g.ndim - 1))
        i = self.cell_current(None, full, lambda u: g * u)
        return i[0] / v, i[1] / v

    def weights(self, t_s: float | Array | None = None) -> Float[Array, "m n"]:
        """Logical weights read back from the cell conductances (inverse mapping)."""
        return self.mapping.from_conductance(self.conductances(t_s))

    # ---- IR drop -------------------------------------------------------------------------
    def with_effective_matrix(
        self, t_s: float | Array | None = None, block_rows: int | None = None
    ) -> Crossbar:
        """A copy caching ``xbar.effective_matrix`` of the cell conductances at time ``t_s``.

        Reads with ``ir_drop="effective"`` (or ``"auto"``) then cost one matrix product.
        The read-noise statistics at the same time are cached with it (``read_stats``,
        see :meth:`with_cached_matrix`), and reads without ``t_s`` happen at ``t_s``.
        Recompute after programming or to read at another drift time. ``block_rows``
        computes the rows of the matrix in blocks of that many unit-input solves (memory
        ``~ block_rows * M * P`` instead of ``M^2 P``; needed for large tiles)."""
        from .solve import solve

        g = self.conductances(t_s)
        m = g.shape[0]
        kw = self.wiring.solve_kwargs()
        if block_rows is None or block_rows >= m:
            from .solve import effective_matrix

            g_eff = effective_matrix(g, **kw)
        else:
            nb = -(-m // block_rows)
            eye = jnp.eye(nb * block_rows, m, dtype=g.dtype).reshape(nb, block_rows, m)
            g_eff = jax.lax.map(lambda e: solve(g, e, **kw).i_out, eye).reshape(-1, g.shape[1])
            g_eff = g_eff[:m]
        return self.with_cached_matrix(g_eff, t_s)

    def with_cached_matrix(
        self, g_eff: Float[Array, "m p"], t_s: float | Array | None = None
    ) -> Crossbar:
        """A copy caching the given physical effective matrix ``g_eff`` [S] (e.g. from
        :func:`xbar.effective_matrix` computed elsewhere) as the matrix of reads at time
        ``t_s`` [s] after programming, with the read-noise statistics at that time:
        ``read_stats = (E[W], Var_independent, Var_shared)`` of the logical columns [S, S^2]
        (module docstring; None when the device's noise has no known moments)."""
        g_eff = jnp.asarray(g_eff)
        if g_eff.shape != self.physical_shape:
            raise ValueError(
                f"g_eff must have the physical shape {self.physical_shape}, got {g_eff.shape}"
            )
        stats = self._read_stats(g_eff, self.device_state(t_s))
        return eqx.tree_at(
            lambda c: (c.g_eff, c.read_stats, c.t_eff),
            self,
            (g_eff, stats, t_s),
            is_leaf=lambda x: x is None,
        )

    def with_state(self, state) -> Crossbar:
        """A copy with a new device state (e.g. after programming) and no cached matrix."""
        return eqx.tree_at(
            lambda c: (c.state, c.g_eff, c.read_stats, c.t_eff),
            self,
            (state, None, None, None),
            is_leaf=lambda x: x is None,
        )

    # ---- read noise ----------------------------------------------------------------------
    def _read_stats(self, w, state):
        """Read-noise statistics of the logical columns for the physical matrix ``w``
        (``g`` or ``W_eff``) and the device ``state``: ``(mean, var, var_shared)``, or None.

        Each cell scales its entries by ``r = G_read / G`` (independent per cell):
        ``E = w E[r]``, ``Var = w^2 Var[r]``. The logical column of a differential pair
        adds the variances of its two cells; with a reference column the reference cells'
        variance is common to all columns of a read (``var_shared``, one draw per read)."""
        moments = self.device.read_noise_moments(state, self.dac.v_read)
        if moments is None or not isinstance(self.mapping, (DifferentialMapping, ReferenceMapping)):
            return None
        mean, var = moments
        g = self.device.conductance(state, self.dac.v_read)
        safe = jnp.where(g == 0, 1.0, g)
        r_mean = jnp.where(g == 0, 1.0, mean / safe)
        r_var = jnp.where(g == 0, 0.0, var / (safe * safe))
        w_mean = self.mapping.combine(w * r_mean)
        w_var = w * w * r_var
        if isinstance(self.mapping, DifferentialMapping):
            return w_mean, w_var[:, 0::2] + w_var[:, 1::2], None
        return w_mean, w_var[:, :-1], w_var[:, -1:]

    # ---- the read ------------------------------------------------------------------------
    def mvm(
        self,
        x: Float[Array, "*b m"],
        key: PRNGKeyArray | None = None,
        *,
        t_s: float | Array | None = None,
        ir_drop: str = "auto",
        weights: Float[Array, "m n"] | None = None,
        drift_compensation: bool = False,
        read_noise: str = "auto",
    ) -> Float[Array, "*b n"]:
        """One analog matrix-vector product ``y ~ x @ W`` (normalised units).

        Args:
            x: inputs in ``[-1, 1]`` (clipped), shape ``(M,)`` or ``(B, M)``.
            key: PRNG key for read noise and sense-amplifier noise; ``None`` = noiseless.
            t_s: read time after programming [s] (device drift); None = no drift step
                (or the time of the cached matrix, :meth:`with_effective_matrix`).
            ir_drop: ``"none"`` (ignore wires), ``"effective"`` (cached or freshly computed
                effective matrix), ``"solve"`` (``xbar.solve`` with linear cells),
                ``"nonlinear"`` (``xbar.solve`` with the full cell I-V; for pulse-width
                encoding the chord at ``v_read`` is used, exact without wires), ``"auto"``
                (cached matrix if present, else ``"effective"`` when wires are non-zero).
            weights: read as if the devices were programmed exactly to these logical
                weights (hardware-aware training); device drift and read noise are then
                not applied, everything else is.
            drift_compensation: global drift compensation (Joshi 2020): scale the output by
                ``a = r(0) / r(t_s)``, ``r`` the mean |output| for an all-ones input read at
                programming time and at ``t_s`` (noiseless reference reads).
            read_noise: how device read noise is drawn (module docstring): ``"auto"``
                (default; independent per read, drawn at the outputs from the per-cell
                moments when ``device.read_noise_moments`` knows them and ``ir_drop`` is
                ``"none"`` or ``"effective"``, else per cell), ``"cells"`` (independent
                per read, every cell drawn: ``M x P`` draws per read, and one circuit solve
                per read with ``ir_drop`` ``"solve"``/``"nonlinear"``), ``"snapshot"``
                (one draw of every cell shared by all reads of the call).
        Returns ``y`` with the batch shape of ``x`` and ``N`` columns.
        """
        if ir_drop not in _IR_MODES:
            raise ValueError(f"ir_drop must be one of {_IR_MODES}, got {ir_drop!r}")
        if read_noise not in _NOISE_MODES:
            raise ValueError(f"read_noise must be one of {_NOISE_MODES}, got {read_noise!r}")
        x = jnp.asarray(x)
        k_noise, k_sense = (None, None) if key is None else tuple(jax.random.split(key))
        y = self._read(x, k_noise, k_sense, t_s, ir_drop, weights, read_noise)
        if drift_compensation:
            ones = jnp.ones((self.shape[0],), x.dtype)
            r0 = jnp.mean(jnp.abs(self._read(ones, None, None, None, ir_drop, weights)))
            rt = jnp.mean(jnp.abs(self._read(ones, None, None, t_s, ir_drop, weights)))
            y = y * jax.lax.stop_gradient(r0 / jnp.maximum(rt, 1e-12 * r0 + 1e-30))
        return y

    def _mode(self, ir_drop: str) -> str:
        if ir_drop != "auto":
            return ir_drop
        if self.g_eff is not None:
            return "effective"
        w = self.wiring
        concrete = all(isinstance(r, (int, float)) for r in (w.r_wl, w.r_bl, w.r_src, w.r_sense))
        if concrete and w.r_wl == 0 and w.r_bl == 0 and w.r_src == 0 and w.r_sense == 0:
            return "none"
        return "effective"

    def _cached(self, mode, weights) -> bool:
        return mode == "effective" and self.g_eff is not None and weights is None

    def _noise_state(self, t_s, cached: bool):
        """The device state whose read noise a read draws (the cached matrix's time when
        reading from the cache without ``t_s``)."""
        if cached and t_s is None:
            return self.device_state(self.t_eff)
        return self.device_state(t_s)

    def _array_matrix(self, t_s, weights, mode):
        """``(G_cells, W_read)``: noiseless cell conductances (None when not needed) and the
        physical matrix a linear read uses."""
        if weights is not None:
            g_dev = self.mapping.to_conductance(weights)
            if self.wiring.cell == "passive":
                g = g_dev
            else:
                v = self.dac.v_read
                g = self.cell_current(None, jnp.full(g_dev.shape, v), lambda u: g_dev * u) / v
        else:
            # The cached-matrix read never needs the cell conductances themselves.
            g = None if self._cached(mode, weights) else self.conductances(t_s)
        if mode == "effective":
            if self._cached(mode, weights):
                return None, self.g_eff
            from .solve import effective_matrix

            return g, effective_matrix(g, **self.wiring.solve_kwargs())
        return g, g

    def _ratio(self, state, g_dev, key):
        """One per-cell draw of ``G_read / G`` (read noise relative to the noiseless read)."""
        return _noise_ratio(self.device.read_noise(state, key, self.dac.v_read), g_dev)

    def _read(self, x, k_noise, k_sense, t_s, ir_drop, weights, read_noise="auto"):
        mode = self._mode(ir_drop)
        u, digital_w = self.dac.phases(x)  # (K, *b, M), (K,)
        v = u * self.dac.v_read
        g, w_read = self._array_matrix(t_s, weights, mode)
        noisy = k_noise is not None and weights is None
        linear = mode in ("none", "effective")
        if noisy:
            cached = self._cached(mode, weights)
            state = self._noise_state(t_s, cached)
            g_dev = self.device.conductance(state, self.dac.v_read)
        if not noisy or read_noise == "snapshot":
            ratio = self._ratio(state, g_dev, k_noise) if noisy else 1.0
            if linear:
                # combine() is linear: subtracting the pair (or reference) columns of the
                # matrix first halves the matrix product.
                i_log = v @ self.mapping.combine(w_read * ratio)
            else:
                i_log = self._solve_read(g if not noisy else g * ratio, v, t_s, weights, mode)
        elif linear:
            stats = None
            if read_noise == "auto":
                if cached and t_s is None and self.read_stats is not None:
                    stats = self.read_stats
                else:
                    stats = self._read_stats(w_read, state)
            if stats is not None:
                i_log = _read_from_stats(v, stats, k_noise)
            else:

                def one(vr, kr):
                    return vr @ self.mapping.combine(w_read * self._ratio(state, g_dev, kr))

                i_log = _per_read(one, v, k_noise, w_read.size)
        else:

            def one(vr, kr):
                ratio = self._ratio(state, g_dev, kr)
                return self._solve_read(g * ratio, vr[None], t_s, weights, mode)[0]

            i_log = _per_read(one, v, k_noise, g.size)
        i_log = self.sense(i_log, k_sense)
        y = self.adc(i_log / self.i_unit)
        return jnp.tensordot(digital_w, y, axes=1)

    def _solve_read(self, g, v, t_s, weights, mode):
        """Logical column currents [A] of reads ``v`` (..., M) through ``xbar.solve`` with
        cell conductances ``g`` (linear cells, or the cell I-V scaled by ``g`` over the
        noiseless conductances for ``"nonlinear"``)."""
        from .solve import solve

        if mode == "solve" or self.dac.encoding == "pulse_width" or weights is not None:
            return self.mapping.combine(_solve_batched(solve, g, v, None, self.wiring))
        state = self.device_state(t_s)
        g0 = self.conductances(t_s)
        ratio = jnp.where(g0 == 0, 1.0, g / jnp.where(g0 == 0, 1.0, g0))

        def iv(_g, vc):
            return ratio * self.cell_current(state, vc)

        return self.mapping.combine(_solve_batched(solve, g, v, iv, self.wiring))


def _safe_sqrt(a):
    """``sqrt(a)`` with a zero (not infinite) gradient at ``a = 0``."""
    pos = a > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, a, 1.0)), 0.0)


def _read_from_stats(v, stats, key):
    """Logical column currents [A] of reads ``v`` (..., M) [V] with read noise drawn at the
    outputs: mean ``v @ E[W]`` plus independent normals of variance ``(v * v) @ Var[W]``
    per read and column, minus one normal per read for a shared reference column."""
    mean, var, var_shared = stats
    k_ind, k_sh = jax.random.split(key)
    v2 = v * v
    i = v @ mean
    i = i + _safe_sqrt(v2 @ var) * jax.random.normal(k_ind, i.shape, i.dtype)
    if var_shared is not None:
        shared = _safe_sqrt(v2 @ var_shared)  # (..., 1)
        i = i - shared * jax.random.normal(k_sh, shared.shape, i.dtype)
    return i


def _per_read(one, v, key, cells: int):
    """``one(v_r, key_r)`` for every read ``v_r`` of ``v`` (..., M), with independent keys,
    in batches that keep about ``_CELLS_PER_MAP_BATCH`` per-cell values in memory."""
    lead = v.shape[:-1]
    vf = v.reshape((-1, v.shape[-1]))
    keys = jax.random.split(key, vf.shape[0])
    batch = max(1, min(vf.shape[0], _CELLS_PER_MAP_BATCH // max(cells, 1)))
    out = jax.lax.map(lambda a: one(*a), (vf, keys), batch_size=batch)
    return out.reshape(lead + out.shape[-1:])


def _noise_ratio(g_noisy, g):
    """``g_noisy / g`` with 0/0 read as 1 (a zero-conductance device stays at zero)."""
    safe = jnp.where(g == 0, 1.0, g)
    return jnp.where(g == 0, 1.0, g_noisy / safe)


def _solve_batched(solve, g, v, iv, wiring: Wiring):
    """``xbar.solve`` over the leading axes of ``v`` (phases and batch) -> ``(..., P)``."""
    lead = v.shape[:-1]
    vb = v.reshape((-1, v.shape[-1]))
    kw = wiring.solve_kwargs()
    if iv is not None:
        kw["iv"] = iv
    sol = solve(g, vb, **kw)
    return sol.i_out.reshape(lead + (g.shape[-1],))


__all__ = ["Crossbar", "Wiring"]
