"""From an asked-for weight change to device pulses, and what the devices delivered.

This is the one place where a learning rule's request (:mod:`.rules`, :mod:`.stdp`)
meets the array. :func:`deliver` turns the asked-for change ``dW`` (M, N) (logical
weight units) into programming pulses, applies them with :func:`xbar.apply_pulses` (so
every cell, selected or half-selected, evolves by its device model: state-dependent,
asymmetric, noisy and saturating steps, and half-select disturb, all come from
``xbar.devices``), and returns the delivered change ``W_after - W_before`` (noiseless
read of the logical weights) beside the asked-for one, with the pulse counts, the pulse
energy from the array's accounting (``PulseReport.energy_j`` + wire energy) and the
programming time.

Pulse scheme (:class:`Coincidence`): stochastic pulse coincidence with V/2 biasing
(Gokmen & Vlasov, Front. Neurosci. 10:333, 2016, section 2.2, where it updates an
outer product in parallel). A change written as a sum of outer products
``dW = sum_k a_k (x) b_k`` (``a_k`` over rows, ``b_k`` over columns) is delivered term by
term; a term with ``a >= 0`` (a signed ``a`` is split into its positive and negative
parts) is given ``n_slots`` pulse slots; in each slot row ``i`` is driven with
probability ``p_i = a_i / max(a)`` and column ``j`` with probability ``q_j = |b_j| max(a)
/ (n_slots dw_pulse)`` (clipped to 1: a change beyond ``n_slots dw_pulse`` per step
saturates), independently; rows and columns are biased by :func:`xbar.bias_scheme`
("V/2"): a cell whose row and column are both driven sees the full pulse (SET
``v_set`` for ``b_j > 0``, RESET ``v_reset`` for ``b_j < 0``, in separate phases), a cell
with one of them driven sees half of it (half-select), the others nothing. The expected
number of full pulses on cell ``(i, j)`` is ``n_slots p_i q_j = |a_i b_j| / dw_pulse``:
the asked-for change in units of the nominal step ``dw_pulse``, unbiased (stochastic
rounding). For a fall, ``dw_pulse`` is replaced by ``dw_fall`` when given (the step of the
other polarity; :func:`calibrate` measures both on the array). A dense change (no factors given) is delivered row by row, as
``dW = sum_i e_i (x) dW[i, :]`` (``p`` one-hot: rows written in turn, the column
probabilities rounding each cell's pulse count).

Mapping to devices: with ``xbar.ReferenceMapping`` a weight is one device: a rise is a
SET pulse, a fall a RESET pulse. With ``xbar.DifferentialMapping`` (``W ~ G+ - G-``) a
rise is a SET pulse on ``G+``; a fall is a RESET pulse on ``G+`` or, with
``set_only=True``, a SET pulse on ``G-`` (the SET-only differential scheme for devices
with an abrupt RESET such as PCM; Burr et al., IEEE TED 62:3498, 2015; Boybat et al.,
Nat. Commun. 9:2514, 2018).

Computation (exact, no physics changed): under V/2 biasing a cell on neither a driven
row nor a driven column sees 0 V and keeps its state, so without ``ir_drop`` the device
dynamics (:func:`xbar.pulses.pulse_cells`, the per-cell core of :func:`xbar.apply_pulses`) are
evaluated only on the driven rows and the driven columns, in chunks of lines gathered
from the array (device-to-device parameters and stuck masks gathered with them), and
scattered back; a phase with more driven lines than that saves is computed on the whole
array. For a deterministic device the result is that of :func:`xbar.apply_pulses` on
the whole array; with cycle-to-cycle noise every cell gets its own independent draws
(``Coincidence(lines_only=False)`` computes every cell).

Costs: :class:`Delivery` counts the phases that had at least one driven row and column;
``time_s`` is the sum of their pulse widths (the phases run one after another), and
``energy_j`` the array's energy of every cell for every phase (selected and
half-selected cells; with ``ir_drop`` also the wires).

:class:`LinearSynapse` is the ideal reference: a linear, noise-free device whose
conductance moves by exactly ``dg`` per full pulse above its threshold (bounded by its
window, hard), so that the delivered change equals the asked-for one up to the
rounding of the pulse count.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

import xbar
from xbar import devices
from xbar.pulses import pulse_cells

__all__ = [
    "Coincidence",
    "Delivery",
    "LinearSynapse",
    "LinearSynapseState",
    "calibrate",
    "deliver",
]


class LinearSynapseState(eqx.Module):
    """State of :class:`LinearSynapse`: the conductance ``g`` [S]."""

    g: Float[Array, "*shape"]


class LinearSynapse(devices.Device):
    """Ideal synapse: ``I = g V`` (linear, noise-free); a pulse with ``v >= v_th``
    raises ``g`` by ``dg``, one with ``v <= -v_th`` lowers it by ``dg`` (independent of
    width and state), clipped to ``[g_min, g_max]`` (hard bounds). Below threshold
    (e.g. a half-selected cell) nothing changes.

    Fields: ``g_min``, ``g_max``, ``g_ini``, ``dg`` [S]; ``v_th`` [V]; ``v_read`` [V];
    ``noise`` (unused: reads are noiseless)."""

    State: ClassVar[type] = LinearSynapseState
    g_min: float = 0.0
    g_max: float = 25e-6
    g_ini: float = 12.5e-6
    dg: float = 0.25e-6
    v_th: float = 0.75
    v_read: float = 0.2
    noise: devices.ReadNoise = devices.ReadNoise()

    def __check_init__(self):
        if not self.g_max > self.g_min >= 0:
            raise ValueError(f"need 0 <= g_min < g_max, got {self.g_min}, {self.g_max} S")
        if not self.dg > 0:
            raise ValueError(f"dg must be positive [S], got {self.dg}")
        if not self.v_th > 0:
            raise ValueError(f"v_th must be positive [V], got {self.v_th}")

    def state_defaults(self):
        return {"g": self.g_ini}

    def check_state_values(self, values) -> None:
        if "g" in values:
            g = jnp.asarray(values["g"])
            if g.size and not bool(jnp.all((g >= self.g_min) & (g <= self.g_max))):
                raise ValueError(f"g must lie in [{self.g_min}, {self.g_max}] S")

    def drift(self, state, t_s):
        """No drift (ideal)."""
        del t_s
        return state

    def read_noise(self, state, key, v_read=None):
        """A noiseless read (ideal)."""
        del key
        return self.conductance(state, v_read)

    def read_noise_moments(self, state, v_read=None):
        g = self.conductance(state, v_read)
        return g, jnp.zeros_like(g)

    def current(self, state, v):
        return state.g * v

    def apply_pulse(self, state, v, width_s, key=None):
        v = jnp.broadcast_to(jnp.asarray(v), state.g.shape)
        step = jnp.where(v >= self.v_th, self.dg, jnp.where(v <= -self.v_th, -self.dg, 0.0))
        return LinearSynapseState(g=jnp.clip(state.g + step, self.g_min, self.g_max))


class Coincidence(eqx.Module):
    """Stochastic pulse-coincidence scheme with V/2 half-select biasing (module docstring).

    Fields:
        dw_pulse: nominal weight change of one full pulse [weight units] (a calibration of
            the device: e.g. the mean step at mid-window), used to turn the asked-for
            change into pulse counts; the step of a rise when ``dw_fall`` is given.
        dw_fall: nominal weight change (magnitude) of one full pulse that lowers a weight
            (a RESET pulse; with ``set_only`` a SET of ``G-``) [weight units]; None: the
            same as ``dw_pulse``. Devices whose two polarities move by different steps
            (Stanford-PKU: an abrupt SET, a gradual RESET) need their own value, else
            the delivered rises and falls are out of proportion (:func:`calibrate`).
        v_set, v_reset: full pulse amplitudes [V] in the device's polarity convention.
        width_set_s, width_reset_s: pulse widths [s].
        n_slots: pulse slots per term and polarity (static); up to ``n_slots`` pulses per
            cell and step.
        set_only: with a differential mapping, depress by a SET on ``G-``.
        ir_drop: pulses see the solved line voltages (``xbar.apply_pulses(...,
            ir_drop=True)``).
        device_noise: pass a key to the device's pulse model (cycle-to-cycle noise);
            False gives the deterministic device (the pulse decisions stay random).
        lines_only: without ``ir_drop``, evaluate the device dynamics only on the driven
            lines (module docstring; same result); False: on every cell. Under ``vmap``
            the choice between the two paths runs both (``lax.cond``): set False there.
        line_chunk: lines gathered per chunk on that path (static; None: 1/32 of the
            rows or columns, and the whole-array path for arrays under 65536 cells,
            where gathering does not pay).
    """

    dw_pulse: float
    dw_fall: float | None = None
    v_set: float = 1.8
    v_reset: float = -1.3
    width_set_s: float = 10e-9
    width_reset_s: float = 10e-9
    n_slots: int = eqx.field(default=1, static=True)
    set_only: bool = eqx.field(default=False, static=True)
    ir_drop: bool = eqx.field(default=False, static=True)
    device_noise: bool = eqx.field(default=True, static=True)
    lines_only: bool = eqx.field(default=True, static=True)
    line_chunk: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if isinstance(self.dw_pulse, (int, float)) and not self.dw_pulse > 0:
            raise ValueError(f"dw_pulse must be positive [weight units], got {self.dw_pulse}")
        if isinstance(self.dw_fall, (int, float)) and not self.dw_fall > 0:
            raise ValueError(f"dw_fall must be None or positive [weight units], got {self.dw_fall}")
        for name in ("width_set_s", "width_reset_s"):
            val = getattr(self, name)
            if isinstance(val, (int, float)) and not val > 0:
                raise ValueError(f"{name} must be positive [s], got {val}")
        if self.line_chunk is not None and not (
            isinstance(self.line_chunk, int) and self.line_chunk >= 1
        ):
            raise ValueError(
                f"line_chunk must be None or a positive integer, got {self.line_chunk!r}"
            )
        if not (isinstance(self.n_slots, int) and self.n_slots >= 1):
            raise ValueError(f"n_slots must be a positive integer, got {self.n_slots!r}")


class Delivery(eqx.Module):
    """What a learning step asked for and what the array delivered.

    Attributes:
        asked: asked-for change of the logical weights (M, N) [weight units].
        delivered: ``W_after - W_before`` (M, N), noiseless read [weight units].
        pulses: full (selected) pulses per physical cell (M, P).
        energy_j: pulse energy per physical cell (M, P) [J], half-selected cells included.
        wire_energy_j: energy in the wires [J] (0 without ``ir_drop``).
        time_s: programming time of the step [s] (sum of the widths of its phases).
        phases: number of pulse phases applied.
    """

    asked: Float[Array, "m n"]
    delivered: Float[Array, "m n"]
    pulses: Int[Array, "m p"]
    energy_j: Float[Array, "m p"]
    wire_energy_j: Float[Array, ""]
    time_s: Float[Array, ""]
    phases: Int[Array, ""]

    @property
    def total_energy_j(self):
        """All programming energy of the step [J]."""
        return jnp.sum(self.energy_j) + self.wire_energy_j

    @property
    def updated(self):
        """Number of logical synapses that received at least one full pulse."""
        return jnp.sum(self.pulses > 0)


def _physical_columns(xb, b_pos, b_neg, set_only):
    """Column probabilities (P,) of the SET and RESET phases from the logical ones
    (N,) for a rise (``b_pos``) and a fall (``b_neg``) of the weight."""
    zero = jnp.zeros_like(b_pos)
    if isinstance(xb.mapping, xbar.DifferentialMapping):
        if set_only:
            q_set = jnp.stack([b_pos, b_neg], -1).reshape(-1)
            q_reset = jnp.zeros_like(q_set)
        else:
            q_set = jnp.stack([b_pos, zero], -1).reshape(-1)
            q_reset = jnp.stack([b_neg, zero], -1).reshape(-1)
        return q_set, q_reset
    pad = jnp.zeros((1,), b_pos.dtype)  # the reference column is never programmed
    return jnp.concatenate([b_pos, pad]), jnp.concatenate([b_neg, pad])


_MIN_CELLS = 65536  # below this the whole-array path is used (automatic chunking)


def _per_cell_leaves_ok(device, shape) -> bool:
    """True when every array parameter of ``device`` is a scalar or a 2-D array
    broadcastable to the physical ``shape`` (so it can be gathered with the cells)."""
    for leaf in jax.tree_util.tree_leaves(device):
        nd = jnp.ndim(leaf)
        if nd == 0:
            continue
        if nd != 2 or any(s not in (1, t) for s, t in zip(jnp.shape(leaf), shape, strict=True)):
            return False
    return True


def _take(tree, idx, axis, shape):
    """Lines ``idx`` along ``axis`` of every 2-D leaf of ``tree`` (broadcast to ``shape``
    first); scalars are kept."""

    def one(x):
        if jnp.ndim(x) == 0:
            return x
        return jnp.take(jnp.broadcast_to(x, shape), idx, axis=axis)

    return jax.tree_util.tree_map(one, tree)


def _pulse_lines(xb, state, row_v, col_v, rows_on, cols_on, width, key, chunk):
    """``(state, energy)`` after the pulse ``row_v[i] - col_v[j]``, given that cells on
    neither a driven row (``rows_on``) nor a driven column (``cols_on``) see 0 V: the
    device dynamics run on the driven lines only (module docstring)."""
    m, p = row_v.shape[0], col_v.shape[0]
    dev, stuck = xb.device, xb.stuck
    dtype = row_v.dtype
    # rows and columns per chunk
    c_r = min(m, chunk if chunk is not None else max(1, -(-m // 32)))
    c_c = min(p, chunk if chunk is not None else max(1, -(-p // 32)))
    n_r = jnp.sum(rows_on)
    n_c = jnp.sum(cols_on)
    k_r = (n_r + c_r - 1) // c_r  # chunks of rows and columns to run
    k_c = (n_c + c_c - 1) // c_c

    def full(_):
        return pulse_cells(dev, stuck, state, row_v[:, None] - col_v[None, :], width, key)

    def lines(_):
        # indices of the driven lines, padded (to whole chunks) with line 0: a padded line
        # is computed with its true voltages, so writing it again changes nothing
        idx_r = jnp.nonzero(rows_on, size=-(-m // c_r) * c_r, fill_value=0)[0]
        idx_c = jnp.nonzero(cols_on, size=-(-p // c_c) * c_c, fill_value=0)[0]
        energy = jnp.zeros((m, p), dtype)

        def run(i, carry, axis, idx_all, c, k0):
            out, e = carry
            idx = jax.lax.dynamic_slice(idx_all, (i * c,), (c,))
            sub = _take(state, idx, axis, (m, p))
            sub_dev = _take(dev, idx, axis, (m, p))
            sub_stuck = None if stuck is None else _take(stuck, idx, axis, (m, p))
            if axis == 0:
                v = row_v[idx][:, None] - col_v[None, :]
            else:
                v = row_v[:, None] - col_v[idx][None, :]
            k = None if key is None else jax.random.fold_in(key, k0 + i)
            new, en = pulse_cells(sub_dev, sub_stuck, sub, v, width, k)
            if axis == 0:
                out = jax.tree_util.tree_map(lambda o, x: o.at[idx].set(x), out, new)
                e = e.at[idx].set(en.astype(dtype))
            else:
                out = jax.tree_util.tree_map(lambda o, x: o.at[:, idx].set(x), out, new)
                e = e.at[:, idx].set(en.astype(dtype))
            return out, e

        carry = (state, energy)
        # columns first, then rows, each from the state before the pulse (a selected cell
        # is computed in both and the row result is kept)
        carry = jax.lax.fori_loop(
            0, k_c, lambda i, c: run(i, c, 1, idx_c, c_c, jnp.asarray(m, jnp.int32)), carry
        )
        carry = jax.lax.fori_loop(0, k_r, lambda i, c: run(i, c, 0, idx_r, c_r, 0), carry)
        return carry

    cheaper = k_r * c_r * p + k_c * c_c * m < m * p
    return jax.lax.cond(cheaper, lines, full, None)


def deliver(
    xb: xbar.Crossbar,
    asked: Float[Array, "m n"],
    scheme: Coincidence,
    key,
    *,
    factors: tuple[Float[Array, "k m"], Float[Array, "k n"]] | None = None,
) -> tuple[xbar.Crossbar, Delivery]:
    """Deliver the asked-for change ``asked`` (M, N) to the crossbar ``xb`` with
    ``scheme``; returns ``(crossbar, Delivery)``.

    ``factors = (rows, cols)`` with ``rows.T @ cols == asked`` (e.g. from a rule's
    ``factors`` method) lets a rank-``k`` change be delivered in ``k`` parallel terms;
    without it the change is written row by row (module docstring). Terms and phases
    with nothing to drive are skipped (``lax.cond``; under ``vmap`` both branches run,
    with the same result)."""
    if not isinstance(scheme, Coincidence):
        raise ValueError(f"scheme must be a Coincidence, got {type(scheme).__name__}")
    asked = jnp.asarray(asked)
    m, n = xb.shape
    if asked.shape != (m, n):
        raise ValueError(f"asked has shape {asked.shape}, crossbar weights are {(m, n)}")
    if factors is None:
        rows = jnp.eye(m, dtype=asked.dtype)
        cols = asked
    else:
        rows, cols = (jnp.asarray(f, asked.dtype) for f in factors)
        if rows.ndim != 2 or cols.ndim != 2 or rows.shape[1] != m or cols.shape[1] != n:
            raise ValueError(
                f"factors must have shapes (k, {m}) and (k, {n}); got {rows.shape}, {cols.shape}"
            )
        if rows.shape[0] != cols.shape[0]:
            raise ValueError(f"factors disagree on k: {rows.shape[0]} vs {cols.shape[0]}")
        # a signed row factor: its positive and negative parts are separate terms
        rows, cols = (
            jnp.concatenate([jnp.maximum(rows, 0.0), jnp.maximum(-rows, 0.0)]),
            jnp.concatenate([cols, -cols]),
        )
    _, p = xb.physical_shape
    dtype = asked.dtype
    w_before = xb.weights()
    amax = jnp.max(rows, axis=1)
    p_rows = jnp.where(amax[:, None] > 0, rows / jnp.where(amax > 0, amax, 1.0)[:, None], 0.0)
    dw_fall = scheme.dw_pulse if scheme.dw_fall is None else scheme.dw_fall
    q_pos = jnp.clip(
        jnp.maximum(cols, 0.0) * amax[:, None] / (scheme.n_slots * scheme.dw_pulse), 0.0, 1.0
    )
    q_neg = jnp.clip(jnp.maximum(-cols, 0.0) * amax[:, None] / (scheme.n_slots * dw_fall), 0.0, 1.0)

    lines = (
        scheme.lines_only
        and not scheme.ir_drop
        and _per_cell_leaves_ok(xb.device, (m, p))
        and (xb.stuck is None or jnp.ndim(xb.stuck) == 2)
        and (scheme.line_chunk is not None or m * p >= _MIN_CELLS)
    )

    def phase(carry, rows_on, cols_on, v, width, k):
        # the carry holds the device state, not the crossbar (its static parts stay out
        # of the loops)
        any_on = jnp.any(rows_on) & jnp.any(cols_on)

        def do(c):
            state, pulses, energy, wire_e, time_s, phases = c
            row_v, col_v = xbar.bias_scheme((m, p), rows_on, cols_on, v, "V/2")
            row_v, col_v = row_v.astype(dtype), col_v.astype(dtype)
            k_dev = k if scheme.device_noise else None
            if lines:
                new_state, e_cells = _pulse_lines(
                    xb, state, row_v, col_v, rows_on, cols_on, width, k_dev, scheme.line_chunk
                )
                e_wire = jnp.zeros((), dtype)
            else:
                xb_n, rep = xbar.apply_pulses(
                    xb.with_state(state), row_v, col_v, width, k_dev, ir_drop=scheme.ir_drop
                )
                new_state, e_cells, e_wire = xb_n.state, rep.energy_j, rep.wire_energy_j
            hit = (rows_on[:, None] & cols_on[None, :]).astype(jnp.int32)
            return (
                new_state,
                pulses + hit,
                energy + e_cells.astype(dtype),
                wire_e + e_wire.astype(dtype),
                time_s + jnp.asarray(width, dtype),
                phases + 1,
            )

        return jax.lax.cond(any_on, do, lambda c: c, carry)

    def term(carry, xs):
        pr, qp, qn, k = xs
        qs, qr = _physical_columns(xb, qp, qn, scheme.set_only)
        nonzero = jnp.any(pr > 0) & (jnp.any(qs > 0) | jnp.any(qr > 0))

        def slots(c):
            def slot(c, ks):
                k_r, k_s, k_q, k_p1, k_p2 = jax.random.split(ks, 5)
                rows_on = jax.random.uniform(k_r, (m,), dtype) < pr
                u = jax.random.uniform(k_s, (p,), dtype)
                c = phase(c, rows_on, u < qs, scheme.v_set, scheme.width_set_s, k_p1)
                u = jax.random.uniform(k_q, (p,), dtype)
                c = phase(c, rows_on, u < qr, scheme.v_reset, scheme.width_reset_s, k_p2)
                return c, None

            return jax.lax.scan(slot, c, jax.random.split(k, scheme.n_slots))[0]

        return jax.lax.cond(nonzero, slots, lambda c: c, carry), None

    zeros_mp = jnp.zeros((m, p), dtype)
    carry = (
        xb.state,
        jnp.zeros((m, p), jnp.int32),
        zeros_mp,
        jnp.zeros((), dtype),
        jnp.zeros((), dtype),
        jnp.zeros((), jnp.int32),
    )
    keys = jax.random.split(key, rows.shape[0])
    carry, _ = jax.lax.scan(term, carry, (p_rows, q_pos, q_neg, keys))
    state, pulses, energy, wire_e, time_s, phases = carry
    new_xb = xb.with_state(state)
    delivered = new_xb.weights() - w_before
    return new_xb, Delivery(
        asked=asked,
        delivered=delivered,
        pulses=pulses,
        energy_j=energy,
        wire_energy_j=wire_e,
        time_s=time_s,
        phases=phases,
    )


def calibrate(xb: xbar.Crossbar, scheme: Coincidence) -> Coincidence:
    """``scheme`` with its nominal steps measured on the devices of ``xb`` in their
    present state: ``dw_pulse`` the mean weight change of one full rise pulse (a SET of
    the programmed device), ``dw_fall`` the mean magnitude of one full fall pulse (a
    RESET; with ``set_only`` and a differential mapping a SET of ``G-``), over all
    synapses, noiseless device model [weight units].

    One full pulse is applied to every programmed device at once (the same cell voltage
    a selected cell sees); half-selected cells are not part of the step. The mean makes
    the expected delivered change of a request at this state equal to the asked one for
    either sign (the pulse counts of :func:`deliver` are unbiased); away from it the
    step follows the device (state dependence). Raises (``eqx.error_if``) when a
    polarity moves no weight (the pulse is below the device's switching threshold)."""
    if not isinstance(scheme, Coincidence):
        raise ValueError(f"scheme must be a Coincidence, got {type(scheme).__name__}")
    m, n = xb.shape
    _, p = xb.physical_shape
    one, zero = jnp.ones((n,)), jnp.zeros((n,))
    w0 = xb.weights()

    def step(v_cols_set, v_cols_reset, v_set, v_reset, width_set, width_reset):
        state = xb.state
        # a column that is not programmed sees 0 V and keeps its state (pulse_cells)
        for on, v, width in ((v_cols_set, v_set, width_set), (v_cols_reset, v_reset, width_reset)):
            volts = jnp.broadcast_to(jnp.where(on > 0, v, 0.0)[None, :], (m, p))
            state, _ = pulse_cells(xb.device, xb.stuck, state, volts, width, None)
        return jnp.mean(xb.with_state(state).weights() - w0)

    qs, qr = _physical_columns(xb, one, zero, scheme.set_only)
    rise = step(qs, qr, scheme.v_set, scheme.v_reset, scheme.width_set_s, scheme.width_reset_s)
    qs, qr = _physical_columns(xb, zero, one, scheme.set_only)
    fall = -step(qs, qr, scheme.v_set, scheme.v_reset, scheme.width_set_s, scheme.width_reset_s)
    rise = eqx.error_if(rise, ~(rise > 0), "calibrate: a rise pulse (v_set) moves no weight")
    fall = eqx.error_if(fall, ~(fall > 0), "calibrate: a fall pulse moves no weight")
    return eqx.tree_at(
        lambda s: (s.dw_pulse, s.dw_fall), scheme, (rise, fall), is_leaf=lambda x: x is None
    )
