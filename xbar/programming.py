"""Programming a crossbar: write-verify, open-loop single shot, arbitrary pulse patterns.

* :class:`WriteVerify`: iterative program-and-verify with incremental step pulses
  (ISPP). Each cell is read at ``v_read``; a cell whose conductance is below
  ``target - tol`` gets a SET pulse, above ``target + tol`` a RESET pulse; the amplitude
  grows by one step with every consecutive pulse of the same polarity and restarts when
  the polarity flips; a cell within tolerance stops (per-cell termination); the loop ends
  when every cell is done or the pulse budget is spent. (Write-verify with incremental
  step pulse programming: e.g. Alibart, Gao & Strukov, Nanotechnology 23, 075201 (2012);
  Joshi et al., Nat. Commun. 11, 2473 (2020), Methods, for PCM.)
* :class:`OpenLoop`: one calibrated pulse per cell, no verification. The pulse amplitude
  for each target is read off a calibration curve ``G(V)`` measured on the nominal
  (variation-free, noiseless) device from the start state ``start`` (e.g. full LRS for a
  gradual RRAM RESET); the real cells (device-to-device spread, cycle-to-cycle noise)
  then land wherever the pulse takes them.
* :func:`apply_pulses`: one pulse pattern given by row and column voltages; every cell
  sees ``row_v[i] - col_v[j]``, or, with ``ir_drop=True``, the voltage of the solved
  circuit (:func:`xbar.solve` with the columns held at ``col_v``, full nonlinear cell
  I-V). With :func:`bias_scheme` for ``"V/2"`` and ``"V/3"`` half-select biasing
  (reference section 5.5).

:func:`program` addresses cells as if isolated (1T1R access, or sequential row-by-row
writes whose disturb and line drop are studied separately with :func:`apply_pulses`):
its pulses reach each cell at their nominal amplitude. Write-verify compensates a line
drop by construction (it steps the amplitude until the verify read is on target), so the
wire resistance changes its pulse count and energy, not its final accuracy. Pulse energy is
``|V| * width * (I_before + I_after) / 2`` per pulse (trapezoid over the state change
during the pulse, at the applied voltage); verify reads cost ``v_read^2 G t_read``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from xbar.devices._checks import check_positive
from xbar.devices.faults import StuckAtFaults

from .crossbar import Crossbar


class WriteVerify(eqx.Module):
    """Write-verify programming with incremental step pulses (see module docstring).

    Fields (signed amplitudes, in the device's polarity convention):
        tol: tolerance on ``|G - G_target|`` as a fraction of ``g_max - g_min`` of the
            mapping. Default 0.02 (UNCONFIRMED; ~2 % of the window is typical of
            analog write-verify reports).
        max_pulses: pulse budget per cell.
        v_set0, v_set_step, v_set_max: first SET amplitude, its increment per consecutive
            SET pulse, and the largest magnitude [V].
        v_reset0, v_reset_step, v_reset_max: the same for RESET [V].
        width_set_s, width_reset_s: pulse widths [s].
        t_verify_s: duration of one verify read [s] (energy, latency).
        backoff: steps the amplitude ladder of a polarity falls back when that polarity
            overshot the target (the next pulse has the other polarity).
        verify_noise: verify with a noisy read (``device.read_noise``) instead of the
            noiseless conductance. A stuck cell (``Crossbar.stuck``) verifies at its stuck
            conductance and does not move.
        pulse_substeps, pulse_newton: resolution of the device's pulse integrator for the
            programming pulses: replace the device's static fields ``n_substeps`` and
            ``n_newton`` (``ValueError`` if the device has no such field). ``None``
            (default) keeps the device's own. A fixed-step integrator costs the same per
            pulse however little the pulse moves the state, and write-verify pulses move
            it little (the step rule keeps a pulse below the remaining error), so a
            coarser integrator can be enough. Whether it is depends on the device and
            must be checked: for ``devices.StanfordPKU`` (gap-stepping integrator, exact
            for a rate exponential in the gap; its series-resistor solve converges to
            rounding in its default 3 Halley iterations) with 10 ns pulses of 1.2-3.5 V on
            a 2 kOhm series resistor, ``pulse_substeps=16`` changes the conductance step
            of one pulse by at most 0.31 % of a 95 uS window (rms 0.04 %) against a
            2048-sub-step reference, the device default (128 sub-steps) by 0.07 % (rms
            0.004 %); the pulse costs 1/8.
            For explicit-Euler devices (``devices.JART``, ``devices.VTEAM``) the step is
            ``width / n_substeps`` and fewer sub-steps are a cruder integration.

    Step rule (per cell): the amplitude of a polarity rises by one step only after a
    pulse that moved the conductance by less than ``tol`` (the device did not respond);
    it holds while the device responds, falls back one step when the last pulse moved
    the conductance by more than the remaining error, and falls back by ``backoff``
    steps after an overshoot. This keeps the exponential voltage dependence of switching rates from
    turning a ladder into a runaway.
    """

    tol: float = 0.02
    max_pulses: int = eqx.field(default=100, static=True)
    v_set0: float = 1.0
    v_set_step: float = 0.02
    v_set_max: float = 2.0
    v_reset0: float = -1.0
    v_reset_step: float = -0.02
    v_reset_max: float = 2.0
    width_set_s: float = 10e-9
    width_reset_s: float = 10e-9
    t_verify_s: float = 250e-9
    backoff: int = eqx.field(default=2, static=True)
    verify_noise: bool = eqx.field(default=False, static=True)
    pulse_substeps: int | None = eqx.field(default=None, static=True)
    pulse_newton: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_positive("tol", self.tol)
        check_positive("v_set_max", self.v_set_max, "V")
        check_positive("v_reset_max", self.v_reset_max, "V")
        check_positive("width_set_s", self.width_set_s, "s")
        check_positive("width_reset_s", self.width_reset_s, "s")
        check_positive("t_verify_s", self.t_verify_s, "s")
        if not (isinstance(self.max_pulses, int) and self.max_pulses >= 1):
            raise ValueError(f"max_pulses must be a positive integer, got {self.max_pulses!r}")
        for name in ("pulse_substeps", "pulse_newton"):
            val = getattr(self, name)
            if val is not None and not (isinstance(val, int) and val >= 1):
                raise ValueError(f"{name} must be None or a positive integer, got {val!r}")


class OpenLoop(eqx.Module):
    """Open-loop programming from a calibration table (module docstring).

    Calibration: the nominal device (parameters averaged over the array, no noise),
    put in the start state, receives ``n = 1..max_pulses`` identical pulses of each
    amplitude in ``v_grid``; each target then gets the ``(v, n)`` entry whose
    calibrated conductance is nearest. The real cells are put in the start state and
    receive their ``n`` pulses of amplitude ``v``, without verification.

    Fields:
        v_grid: candidate amplitudes [V] (1-D, device polarity convention).
        width_s: pulse width [s].
        max_pulses: largest number of identical pulses (1 = single shot).
        start: state values (name -> value) the array is put in before programming (an
            idealised full SET/RESET), e.g. ``{"gap": 2e-10}``; empty = the device's
            default initial state.
        tol: tolerance used only for reporting success (as in :class:`WriteVerify`).
    """

    v_grid: Array
    width_s: float = 100e-9
    max_pulses: int = eqx.field(default=1, static=True)
    start: dict = eqx.field(default_factory=dict, static=True)
    tol: float = 0.02


class ProgramReport(eqx.Module):
    """Outcome of programming.

    Attributes:
        pulses: pulses applied to each physical cell ``(M, P)``.
        error: final ``G - G_target`` [S] per cell (noiseless read at ``v_read``).
        rel_error: ``error / (g_max - g_min)``.
        success: ``|rel_error| <= tol`` per cell.
        energy_j: programming energy per cell [J] (pulses + verify reads).
        time_s: programming time [s] if rows are written one after another and all cells
            of a row in parallel, in lock-step: for each row, the sum over pulse numbers
            ``k`` of the longest pulse ``k`` (plus its verify read) among the row's cells.
    """

    pulses: Int[Array, "m p"]
    error: Float[Array, "m p"]
    rel_error: Float[Array, "m p"]
    success: Bool[Array, "m p"]
    energy_j: Float[Array, "m p"]
    time_s: Float[Array, ""]

    @property
    def success_rate(self):
        return jnp.mean(self.success)

    @property
    def total_energy_j(self):
        return jnp.sum(self.energy_j)


def _state_with(state, values: dict):
    """``state`` with the named state variables set to ``values`` (broadcast); built with
    ``tree_at`` rather than ``init_state`` so that traced device parameters are fine."""
    if not values:
        return state
    names = sorted(values)
    return eqx.tree_at(
        lambda st: [getattr(st, n) for n in names],
        state,
        [
            jnp.broadcast_to(
                jnp.asarray(values[n], getattr(state, n).dtype), getattr(state, n).shape
            )
            for n in names
        ],
    )


def _passive(w):
    return type(w)(r_wl=w.r_wl, r_bl=w.r_bl, r_src=w.r_src, r_sense=w.r_sense, cell="passive")


def _where_state(mask, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(mask, x, y), a, b)


def _pulse(xb: Crossbar, state, v, width, key):
    """Apply pulse ``v`` (per cell, 0 = no pulse) and return (state, energy per cell).
    Stuck cells keep their state."""
    return _pulse_cells(xb.device, xb.stuck, state, v, width, key)


def program(
    xb: Crossbar,
    targets: Float[Array, "m n"],
    scheme: WriteVerify | OpenLoop,
    key: PRNGKeyArray,
    *,
    conductance_targets: bool = False,
) -> tuple[Crossbar, ProgramReport]:
    """Program ``xb`` to logical weights ``targets`` (or to physical conductances [S]
    of shape ``(M, P)`` when ``conductance_targets``). Returns ``(crossbar, report)``.

    The new crossbar has no cached effective matrix (conductances changed)."""
    g_t = jnp.asarray(targets) if conductance_targets else xb.mapping.to_conductance(targets)
    if g_t.shape != xb.physical_shape:
        raise ValueError(f"targets map to shape {g_t.shape}, array is {xb.physical_shape}")
    if isinstance(scheme, WriteVerify):
        state, pulses, energy, time_s = _write_verify(xb, g_t, scheme, key)
    elif isinstance(scheme, OpenLoop):
        state, pulses, energy, time_s = _open_loop(xb, g_t, scheme, key)
    else:
        raise ValueError(f"scheme must be WriteVerify or OpenLoop, got {type(scheme).__name__}")
    new = xb.with_state(state)
    span = xb.mapping.g_max - xb.mapping.g_min
    g_final = eqx.tree_at(lambda c: c.wiring, new, _passive(new.wiring)).conductances()
    err = g_final - g_t
    rel = err / span
    report = ProgramReport(
        pulses=pulses,
        error=err,
        rel_error=rel,
        success=jnp.abs(rel) <= scheme.tol,
        energy_j=energy,
        time_s=time_s,
    )
    return new, report


def _pulse_device(dev, s: WriteVerify):
    """The device model used for the programming pulses (integrator resolution of ``s``)."""
    changes = {
        field: val
        for field, val in (("n_substeps", s.pulse_substeps), ("n_newton", s.pulse_newton))
        if val is not None
    }
    names = {f.name for f in dataclasses.fields(dev)}
    for field in changes:
        if field not in names:
            arg = "pulse_substeps" if field == "n_substeps" else "pulse_newton"
            raise ValueError(
                f"WriteVerify.{arg} is set but {type(dev).__name__} has no field {field!r}; "
                f"use {arg}=None"
            )
    return dataclasses.replace(dev, **changes) if changes else dev


def _per_cell(tree, shape: tuple[int, int]):
    """``(flat, mask)``: ``tree`` with every array leaf that broadcasts to ``shape``
    (per-cell parameters or state) flattened to ``(M * P,)``, and a matching tree of
    booleans marking those leaves; scalars and other leaves are left alone."""
    n = shape[0] * shape[1]

    def is_cell(x):
        if not eqx.is_array(x) or x.ndim == 0 or x.ndim > 2:
            return False
        try:
            return jnp.broadcast_shapes(x.shape, shape) == shape
        except ValueError:
            return False

    mask = jax.tree_util.tree_map(is_cell, tree)
    flat = jax.tree_util.tree_map(
        lambda x, c: jnp.broadcast_to(x, shape).reshape(n) if c else x, tree, mask
    )
    return flat, mask


def _slot_count(n: int) -> int:
    """Slots of the write-verify work queue for ``n`` cells (module docstring of
    :func:`_write_verify`): enough to keep the vector units busy, few enough that the
    drain at the end (at most ``max_pulses`` steps of all slots) stays a small part."""
    return min(n, max(256, n // 16))


def _write_verify(xb: Crossbar, g_t, s: WriteVerify, key):
    """Write-verify of every cell; the cells are independent, so only unfinished ones are
    worked on.

    Each cell runs its own loop: read; stop if within ``tol``; else step its amplitude
    ladder and pulse; at most ``max_pulses`` reads. Running all cells in lock-step until
    the slowest one finishes costs ``cells x max(pulses)`` pulse integrations, set by a few
    slow cells. Here a fixed number of slots (:func:`_slot_count`) runs the loop; a slot
    whose cell finishes writes it back and takes the next cell from a queue, so the work
    is about ``sum(pulses)`` plus the drain of the last cells. The queue holds the cells
    by decreasing initial distance to target (longest jobs first keeps the drain short).
    Which slot a cell sits in changes only which random numbers it receives; every pulse
    and noisy read still gets fresh, independent ones. The report time is the lock-step
    row-serial time: pulse ``k`` of all cells of a row is applied together and that step
    lasts the longest pulse of the row plus a verify read."""
    dev = _pulse_device(xb.device, s)
    v_read = xb.dac.v_read
    tol = s.tol * (xb.mapping.g_max - xb.mapping.g_min)
    dtype = g_t.dtype
    m, p = g_t.shape
    n = m * p
    c_slots = _slot_count(n)
    dev_flat, dev_mask = _per_cell(dev, (m, p))
    state_flat = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (m, p)).reshape(n), xb.state)
    const = dict(g_t=g_t.reshape(n), row=jnp.arange(n, dtype=jnp.int32) // p)
    if xb.stuck is not None:
        # A stuck cell does not move, and its verify reads its stuck conductance.
        const.update(
            {
                name: jnp.broadcast_to(jnp.asarray(val), (m, p)).reshape(n)
                for name, val in (
                    ("stuck", xb.stuck),
                    ("g_on", xb.g_stuck_on),
                    ("g_off", xb.g_stuck_off),
                )
            }
        )
    zeros_i = jnp.zeros((n,), jnp.int32)
    cells = dict(
        state=state_flat,
        done=jnp.zeros((n,), bool),
        n_up=zeros_i,
        n_dn=zeros_i,
        last=zeros_i,
        g_prev=jnp.full((n,), jnp.inf, dtype),
        pulses=zeros_i,
        reads=zeros_i,
        energy=jnp.zeros((n,), dtype),
    )
    g0 = jnp.broadcast_to(dev.conductance(xb.state, v_read), (m, p)).reshape(n)
    order = jnp.argsort(-jnp.abs(g0 - const["g_t"])).astype(jnp.int32)

    def read(d, state, k, cst):
        if s.verify_noise:
            g = d.read_noise(state, k, v_read)
        else:
            g = d.conductance(state, v_read)
        if "stuck" in cst:
            g = StuckAtFaults.apply(g, cst["stuck"], cst["g_on"], cst["g_off"])
        return g

    def busy(c, valid):
        return valid & ~c["done"] & (c["reads"] < s.max_pulses)

    def take(tree, idx):  # trees of (n,) arrays
        return jax.tree_util.tree_map(lambda x: x[idx], tree)

    def take_dev(idx):
        return jax.tree_util.tree_map(lambda x, c: x[idx] if c else x, dev_flat, dev_mask)

    def step(c, cst, d, valid, row_step, key):
        key, k_read, k_set = jax.random.split(key, 3)
        active = busy(c, valid)
        state = c["state"]
        g = read(d, state, k_read, cst)
        energy = c["energy"] + jnp.where(active, v_read**2 * jnp.abs(g) * s.t_verify_s, 0.0)
        err = g - cst["g_t"]
        hit = jnp.abs(err) <= tol
        done = c["done"] | (active & hit)
        up = active & ~hit & (err < 0)
        dn = active & ~hit & (err > 0)
        last, n_up, n_dn = c["last"], c["n_up"], c["n_dn"]
        # Ladder bookkeeping from the previous pulse (last: +1 SET, -1 RESET, 0 none).
        moved = jnp.abs(g - c["g_prev"])
        stuck = moved < tol
        fast = moved > jnp.abs(err)  # one more such pulse would overshoot: step down
        stp = jnp.where(stuck, 1, jnp.where(fast, -1, 0))
        n_up = jnp.where(up & (last > 0), jnp.maximum(n_up + stp, 0), n_up)
        n_dn = jnp.where(dn & (last < 0), jnp.maximum(n_dn + stp, 0), n_dn)
        n_up = jnp.where(dn & (last > 0), jnp.maximum(n_up - s.backoff, 0), n_up)
        n_dn = jnp.where(up & (last < 0), jnp.maximum(n_dn - s.backoff, 0), n_dn)
        v_up = jnp.sign(s.v_set0) * jnp.minimum(
            jnp.abs(s.v_set0 + n_up * s.v_set_step), s.v_set_max
        )
        v_dn = jnp.sign(s.v_reset0) * jnp.minimum(
            jnp.abs(s.v_reset0 + n_dn * s.v_reset_step), s.v_reset_max
        )
        v_cell = jnp.where(up, v_up, jnp.where(dn, v_dn, 0.0)).astype(dtype)
        width = jnp.where(up, s.width_set_s, s.width_reset_s).astype(dtype)
        state, e_p = _pulse_cells(d, cst.get("stuck"), state, v_cell, width, k_set)
        # Lock-step row-serial time: pulse number `reads` of this cell goes with the same
        # pulse number of its row-mates; that step lasts the longest pulse + verify.
        step_t = jnp.where(up, s.width_set_s, 0.0) + jnp.where(dn, s.width_reset_s, 0.0)
        step_t = (step_t + jnp.where(up | dn, s.t_verify_s, 0.0)).astype(dtype)
        k_idx = jnp.where(up | dn, c["reads"], s.max_pulses)  # out of range: dropped
        row_step = row_step.at[cst["row"], k_idx].max(step_t, mode="drop")
        new_last = jnp.where(up, 1, jnp.where(dn, -1, 0))
        new = dict(
            state=state,
            done=done,
            n_up=n_up,
            n_dn=n_dn,
            last=jnp.where(active, new_last, last).astype(jnp.int32),
            g_prev=jnp.where(active, g, c["g_prev"]),
            pulses=c["pulses"] + (up | dn).astype(jnp.int32),
            reads=c["reads"] + active.astype(jnp.int32),
            energy=energy + e_p,
        )
        return new, row_step, key

    def fetch(free, idx, ptr, slots, cst, d, cells):
        """Free slots take the next cells of the queue (if any are left)."""
        pos = ptr + jnp.cumsum(free.astype(jnp.int32)) - 1
        nxt = jnp.where(pos < n, order[jnp.clip(pos, 0, n - 1)], n)
        new_idx = jnp.where(free, nxt, idx)
        load = free & (new_idx < n)
        safe = jnp.minimum(new_idx, n - 1)

        def put(old, fresh):
            mask = load.reshape(load.shape + (1,) * (fresh.ndim - 1))
            return jnp.where(mask, fresh, old)

        slots = jax.tree_util.tree_map(put, slots, take(cells, safe))
        cst = jax.tree_util.tree_map(put, cst, take(const, safe))
        d = jax.tree_util.tree_map(
            lambda old, fresh, c: put(old, fresh) if c else old, d, take_dev(safe), dev_mask
        )
        ptr = jnp.minimum(ptr + jnp.sum(free.astype(jnp.int32)), n)
        return new_idx, ptr, slots, cst, d

    def body(carry):
        idx, ptr, slots, cst, d, cells, row_step, key = carry
        valid = idx < n
        slots, row_step, key = step(slots, cst, d, valid, row_step, key)
        free = ~busy(slots, valid)
        # Finished cells go back to the full arrays (out-of-range index: dropped).
        back = jnp.where(valid & free, idx, n)
        cells = jax.tree_util.tree_map(
            lambda full, part: full.at[back].set(part, mode="drop"), cells, slots
        )
        idx, ptr, slots, cst, d = fetch(free, idx, ptr, slots, cst, d, cells)
        return idx, ptr, slots, cst, d, cells, row_step, key

    def cond(carry):
        idx, ptr, slots = carry[:3]
        return (ptr < n) | jnp.any(busy(slots, idx < n))

    idx0 = jnp.full((c_slots,), n, jnp.int32)
    safe0 = jnp.zeros((c_slots,), jnp.int32)
    init = fetch(
        jnp.ones((c_slots,), bool),
        idx0,
        jnp.array(0, jnp.int32),
        take(cells, safe0),
        take(const, safe0),
        take_dev(safe0),
        cells,
    )
    row_step = jnp.zeros((m, s.max_pulses), dtype)  # longest step [s] per row and pulse
    carry = (*init, cells, row_step, key)
    *_, cells, row_step, _ = jax.lax.while_loop(cond, body, carry)
    state = jax.tree_util.tree_map(lambda x: x.reshape(m, p), cells["state"])
    return state, cells["pulses"].reshape(m, p), cells["energy"].reshape(m, p), jnp.sum(row_step)


def _pulse_cells(dev, stuck, state, v, width, key):
    """Pulse ``v`` (per cell, 0 = none) of ``width`` on the cells of ``state`` with the
    device ``dev``; cells with a nonzero ``stuck`` mask keep their state. Returns
    ``(state, energy per cell)``."""
    new = dev.apply_pulse(state, v, width, key)
    moves = v != 0
    if stuck is not None:
        moves = moves & (stuck == 0)
    new = _where_state(moves, new, state)
    i_avg = 0.5 * (dev.current(state, v) + dev.current(new, v))
    return new, jnp.abs(v * i_avg) * width


def _open_loop(xb: Crossbar, g_t, s: OpenLoop, key):
    dev, v_read = xb.device, xb.dac.v_read
    # Calibration on the nominal device: the parameters' mean over the array stands in
    # for "the datasheet device" (exact when there is no variability).
    nominal = jax.tree_util.tree_map(
        lambda p: jnp.mean(p) if eqx.is_array(p) and p.ndim >= 2 else p, dev
    )
    v_grid = jnp.asarray(s.v_grid, g_t.dtype)
    s0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x.ravel()[0], v_grid.shape), xb.state)
    s0 = _state_with(s0, s.start)

    def cal_step(st, _):
        st = nominal.apply_pulse(st, v_grid, s.width_s, None)
        return st, nominal.conductance(st, v_read)

    _, g_cal = jax.lax.scan(cal_step, s0, None, length=s.max_pulses)  # (n, V)
    n_tab = jnp.broadcast_to(jnp.arange(1, s.max_pulses + 1)[:, None], g_cal.shape).ravel()
    v_tab = jnp.broadcast_to(v_grid[None, :], g_cal.shape).ravel()
    g_tab = g_cal.ravel()
    order = jnp.argsort(g_tab)
    g_sorted = g_tab[order]
    j = jnp.clip(jnp.searchsorted(g_sorted, g_t), 1, g_sorted.size - 1)
    pick = jnp.where(jnp.abs(g_sorted[j - 1] - g_t) <= jnp.abs(g_sorted[j] - g_t), j - 1, j)
    v_cell = v_tab[order][pick]
    n_cell = n_tab[order][pick]
    state = _state_with(xb.state, s.start)
    if xb.stuck is not None:  # stuck cells are not reset either
        state = _where_state(xb.stuck == 0, state, xb.state)

    def step(carry, k):
        st, e = carry
        v = jnp.where(k < n_cell, v_cell, 0.0)
        st, de = _pulse(xb, st, v, s.width_s, jax.random.fold_in(key, k))
        return (st, e + de), None

    (state, energy), _ = jax.lax.scan(
        step, (state, jnp.zeros(g_t.shape, g_t.dtype)), jnp.arange(s.max_pulses)
    )
    time_s = g_t.shape[0] * jnp.max(n_cell) * s.width_s
    return state, n_cell.astype(jnp.int32), energy, jnp.asarray(time_s, g_t.dtype)


# ---- arbitrary pulse patterns and half-select ------------------------------------------


def bias_scheme(
    shape: tuple[int, int],
    rows: Bool[Array, " m"],
    cols: Bool[Array, " p"],
    v_write: float,
    scheme: str = "V/2",
) -> tuple[Float[Array, " m"], Float[Array, " p"]]:
    """Row and column voltages selecting the cells ``rows x cols`` for a write of ``v_write``.

    ``"V/2"``: selected rows ``V``, selected columns 0, all other lines ``V/2``: half-
    selected cells see ``V/2``, unselected cells 0. ``"V/3"``: selected rows ``V``,
    selected columns 0, unselected rows ``V/3``, unselected columns ``2V/3``: every
    non-selected cell sees ``+-V/3``. ``"float"``: unselected lines at 0 V (no protection;
    a floating line is approximated by ground). Reference section 5.5."""
    rows = jnp.asarray(rows, bool)
    cols = jnp.asarray(cols, bool)
    if rows.shape != (shape[0],) or cols.shape != (shape[1],):
        raise ValueError(f"rows/cols masks must have shapes ({shape[0]},) and ({shape[1]},)")
    if scheme == "V/2":
        return jnp.where(rows, v_write, v_write / 2), jnp.where(cols, 0.0, v_write / 2)
    if scheme == "V/3":
        return jnp.where(rows, v_write, v_write / 3), jnp.where(cols, 0.0, 2 * v_write / 3)
    if scheme == "float":
        return jnp.where(rows, v_write, 0.0), jnp.zeros(shape[1])
    raise ValueError(f"scheme must be 'V/2', 'V/3' or 'float', got {scheme!r}")


class PulseReport(eqx.Module):
    """Outcome of :func:`apply_pulses`: voltage across each cell (stack) [V], energy per
    cell [J], and the energy dissipated in the wires, driver and sense resistances [J]
    (0 without ``ir_drop``)."""

    v_cell: Float[Array, "m p"]
    energy_j: Float[Array, "m p"]
    wire_energy_j: Float[Array, ""]


def apply_pulses(
    xb: Crossbar,
    row_v: Float[Array, " m"],
    col_v: Float[Array, " p"],
    width_s: float,
    key: PRNGKeyArray | None = None,
    *,
    ir_drop: bool = False,
) -> tuple[Crossbar, PulseReport]:
    """Apply one pulse pattern: rows driven to ``row_v``, columns to ``col_v``, for
    ``width_s``.

    Without ``ir_drop`` cell ``(i, j)`` sees ``row_v[i] - col_v[j]``. With ``ir_drop=True``
    the line voltages come from :func:`xbar.solve` of the whole array with the wiring of
    ``xb`` (rows driven through ``r_src`` at their column-0 end, columns held at ``col_v``
    through ``r_sense`` at their row-``M-1`` end, every cell with its full nonlinear I-V
    at the pulse voltage, access element included): cells far from the drivers see less
    than the nominal voltage, and sneak currents load the lines. The operating point is
    that of the cell states at the start of the pulse and is held for the pulse (a cell
    that switches during the pulse changes the drop it causes; split a long pulse into
    shorter calls to follow that).

    Every cell then evolves by the device dynamics (``device.apply_pulse``) at its
    voltage, so half-selected cells are disturbed exactly as far as the device physics
    moves them. Returns the new crossbar (no cached effective matrix) and a
    :class:`PulseReport`; with ``ir_drop`` its ``wire_energy_j`` is the power delivered by
    the row and column drivers minus the power taken by the cells, times ``width_s``."""
    m, p = xb.physical_shape
    row_v = jnp.asarray(row_v)
    col_v = jnp.asarray(col_v)
    if row_v.shape != (m,) or col_v.shape != (p,):
        raise ValueError(
            f"row_v and col_v must have shapes ({m},) and ({p},); got {row_v.shape} and "
            f"{col_v.shape}"
        )
    dtype = jnp.result_type(row_v, col_v, float)
    wire_e = jnp.zeros((), dtype)
    if ir_drop:
        from .solve import solve

        state = xb.state

        def iv(_g, u):
            return xb.cell_current(state, u)

        g = eqx.tree_at(lambda c: c.wiring, xb, _passive(xb.wiring)).conductances()
        sol = solve(g, row_v, v_col=col_v, iv=iv, **xb.wiring.solve_kwargs())
        v = sol.v_wl - sol.v_bl
        p_src = row_v @ jnp.sum(sol.i_cell, axis=-1) - col_v @ sol.i_out
        wire_e = (p_src - jnp.sum(v * sol.i_cell)) * width_s
    else:
        v = row_v[:, None] - col_v[None, :]
    state, energy = _pulse(xb, xb.state, v, width_s, key)
    new = xb.with_state(state)
    return new, PulseReport(v_cell=v, energy_j=energy, wire_energy_j=wire_e)


__all__ = [
    "OpenLoop",
    "ProgramReport",
    "PulseReport",
    "WriteVerify",
    "apply_pulses",
    "bias_scheme",
    "program",
]
