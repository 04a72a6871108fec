"""Closed-loop programming: write-verify with incremental step pulses.

:class:`WriteVerify` is iterative program-and-verify with incremental step pulse
programming (ISPP). Each cell is read at ``v_read``; a cell whose conductance is below
``target - tol`` gets a SET pulse, above ``target + tol`` a RESET pulse; the amplitude
grows by one step with every consecutive pulse of the same polarity and restarts when
the polarity flips; a cell within tolerance stops (per-cell termination); the loop ends
when every cell is done or the pulse budget is spent. Sources: Alibart, Gao & Strukov,
"High precision tuning of state for memristive devices by adaptable variation-tolerant
algorithm", Nanotechnology 23, 075201 (2012); Joshi et al., Nat. Commun. 11, 2473 (2020),
Methods (iterative programming of PCM).

Used through :func:`xbar.program`.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from xbar.devices._checks import check_finite, check_positive
from xbar.devices.faults import StuckAtFaults

from ._inputs import is_concrete
from .programming import AbstractScheme
from .pulses import pulse_cells


class WriteVerify(AbstractScheme):
    """Write-verify programming with incremental step pulses (see the module docstring).

    Fields (signed amplitudes, in the device's polarity convention):
        tol: tolerance on ``|G - G_target|`` as a fraction of ``g_max - g_min`` of the
            mapping, in ``(0, 1]``. Default 0.02 (UNCONFIRMED; ~2 % of the window is typical of
            analog write-verify reports).
        max_pulses: pulse budget per cell (positive integer).
        v_set0, v_set_step, v_set_max: first SET amplitude (nonzero, ``|v_set0| <=
            v_set_max``), its increment per consecutive SET pulse, and the largest
            magnitude (``> 0``) [V].
        v_reset0, v_reset_step, v_reset_max: the same for RESET [V].
        width_set_s, width_reset_s: pulse widths [s].
        t_verify_s: duration of one verify read [s] (energy, latency).
        backoff: steps (integer ``>= 0``) the amplitude ladder of a polarity falls back when that polarity
            overshot the target (the next pulse has the other polarity).
        verify_noise: verify with a noisy read (``device.read_noise``) instead of the
            noiseless conductance. A stuck cell (``Crossbar.stuck``) verifies at its stuck
            conductance and does not move.
        verify_reads: number ``n`` (integer ``>= 1``) of noisy reads averaged per verify
            (with ``verify_noise``; ignored without it). Each read is an independent draw
            of ``device.read_noise``, so the standard deviation of the average is
            ``sigma / sqrt(n)`` (:meth:`verify_read`); energy and time count ``n`` reads.
            This holds for noise whose samples are independent from read to read (white
            noise, and the read-noise models of ``xbar.devices``, which draw every read
            afresh). For a strict 1/f process an average of ``n`` reads is one read of
            ``n t_read``, whose band ``ln(t / (2 n t_read))`` narrows only logarithmically
            (Joshi et al., Nat. Commun. 11, 2473 (2020), Methods), so on hardware the gain
            is smaller.
        verify_tol: acceptance band of the verify read, as a fraction of the window like
            ``tol``, in ``(0, 1]`` (``None``, the default: ``tol``). With noisy reads a
            guard band ``verify_tol < tol`` keeps cells whose read fell inside the band by
            a noise excursion from stopping outside ``tol``; the report still judges the
            final conductance against ``tol``.
        pulse_substeps, pulse_newton: resolution of the device's pulse integrator for the
            programming pulses: replace the device's static fields ``n_substeps`` and
            ``n_newton`` (``ValueError`` if the device has no such field). ``None``
            (default) keeps the device's own. A fixed-step integrator costs the same per
            pulse however little the pulse moves the state, and write-verify pulses move
            it little (the step rule keeps a pulse below the remaining error), so a
            coarser integrator can be enough. Whether it is depends on the device and
            must be checked against a fine reference integration (for
            ``devices.StanfordPKU`` with 10 ns pulses, 16 sub-steps stay well within a 2 %
            tolerance; ``tests/xbar/test_programming.py`` checks it and
            ``benchmarks/RESULTS.md`` records the cost).
            For explicit-Euler devices (``devices.JART``, ``devices.VTEAM``) the step is
            ``width / n_substeps`` and fewer sub-steps are a cruder integration (the
            ``xbar.presets.vteam`` recipe keeps VTEAM's 100 per 10 ns pulse;
            ``tests/xbar/test_presets.py`` checks its pulses against a 20x finer grid).

    Step rule (per cell): the amplitude of a polarity rises by one step only after a
    pulse that moved the conductance by less than ``tol`` (the device did not respond);
    it holds while the device responds, falls back one step when the last pulse moved
    the conductance by more than the remaining error, and falls back by ``backoff``
    steps after an overshoot. This keeps the exponential voltage dependence of switching
    rates from turning a ladder into a runaway.
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
    verify_reads: int = eqx.field(default=1, static=True)
    verify_tol: float | None = None
    pulse_substeps: int | None = eqx.field(default=None, static=True)
    pulse_newton: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        check_positive("v_set_max", self.v_set_max, "V")
        check_positive("v_reset_max", self.v_reset_max, "V")
        for name in ("v_set0", "v_reset0", "v_set_step", "v_reset_step"):
            check_finite(name, getattr(self, name))
        for name, v0, vmax in (
            ("v_set0", self.v_set0, self.v_set_max),
            ("v_reset0", self.v_reset0, self.v_reset_max),
        ):
            if is_concrete((v0, vmax)):
                a, b = np.asarray(v0, float), np.asarray(vmax, float)
                if np.any(a == 0) or np.any(np.abs(a) > b):
                    raise ValueError(
                        f"{name} must be nonzero with |{name}| <= {name[:-1]}_max "
                        f"({float(np.max(b))} V), got {float(np.ravel(a)[0])} V"
                    )
        check_positive("width_set_s", self.width_set_s, "s")
        check_positive("width_reset_s", self.width_reset_s, "s")
        check_positive("t_verify_s", self.t_verify_s, "s")
        if not (isinstance(self.max_pulses, int) and self.max_pulses >= 1):
            raise ValueError(f"max_pulses must be a positive integer, got {self.max_pulses!r}")
        if not (isinstance(self.backoff, int) and self.backoff >= 0):
            raise ValueError(f"backoff must be a non-negative integer, got {self.backoff!r}")
        if not (isinstance(self.verify_reads, int) and self.verify_reads >= 1):
            raise ValueError(
                f"verify_reads must be a positive integer (reads averaged per verify), "
                f"got {self.verify_reads!r}"
            )
        if self.verify_tol is not None and is_concrete(self.verify_tol):
            vt = np.asarray(self.verify_tol, dtype=float)
            if np.any(~np.isfinite(vt)) or np.any(vt <= 0) or np.any(vt > 1):
                raise ValueError(
                    f"verify_tol must be None or lie in (0, 1] (fraction of the window), "
                    f"got {self.verify_tol}"
                )
        for name in ("pulse_substeps", "pulse_newton"):
            val = getattr(self, name)
            if val is not None and not (isinstance(val, int) and val >= 1):
                raise ValueError(f"{name} must be None or a positive integer, got {val!r}")

    def verify_read(self, device, state, v_read, key):
        """The conductance [S] one verify step sees: the noiseless conductance, or (with
        ``verify_noise``) the mean of ``verify_reads`` independent ``device.read_noise``
        reads at ``v_read`` [V]."""
        if not self.verify_noise:
            return device.conductance(state, v_read)
        if self.verify_reads == 1:
            return device.read_noise(state, key, v_read)
        keys = jax.random.split(key, self.verify_reads)
        return jnp.mean(jax.vmap(lambda k: device.read_noise(state, k, v_read))(keys), axis=0)

    def run(self, xb, g_target, key):
        """Write-verify of every cell of ``xb`` towards ``g_target`` [S] (:func:`_write_verify`)."""
        return _write_verify(xb, g_target, self, key)


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


def _write_verify(xb, g_t, s: WriteVerify, key):
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
    span = xb.mapping.g_max - xb.mapping.g_min
    tol = s.tol * span
    tol_v = tol if s.verify_tol is None else s.verify_tol * span
    n_reads = s.verify_reads if s.verify_noise else 1
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
        g = s.verify_read(d, state, v_read, k)
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
        t_read = n_reads * s.t_verify_s
        energy = c["energy"] + jnp.where(active, v_read**2 * jnp.abs(g) * t_read, 0.0)
        err = g - cst["g_t"]
        hit = jnp.abs(err) <= tol_v
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
        state, e_p = pulse_cells(d, cst.get("stuck"), state, v_cell, width, k_set)
        # Lock-step row-serial time: pulse number `reads` of this cell goes with the same
        # pulse number of its row-mates; that step lasts the longest pulse + verify.
        step_t = jnp.where(up, s.width_set_s, 0.0) + jnp.where(dn, s.width_reset_s, 0.0)
        step_t = (step_t + jnp.where(up | dn, t_read, 0.0)).astype(dtype)
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


__all__ = ["WriteVerify"]
