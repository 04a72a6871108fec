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
  sees ``row_v[i] - col_v[j]`` (wire drop neglected during the write). With
  :func:`bias_scheme` for ``"V/2"`` and ``"V/3"`` half-select biasing (reference
  section 5.5).

Cells are programmed as if isolated (1T1R access, or sequential row-by-row writes whose
disturb is studied separately with :func:`apply_pulses`). Pulse energy is
``|V| * width * (I_before + I_after) / 2`` per pulse (trapezoid over the state change
during the pulse, at the applied voltage); verify reads cost ``v_read^2 G t_read``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from devices._checks import check_positive

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
            noiseless conductance.

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

    def __check_init__(self):
        check_positive("tol", self.tol)
        check_positive("v_set_max", self.v_set_max, "V")
        check_positive("v_reset_max", self.v_reset_max, "V")
        check_positive("width_set_s", self.width_set_s, "s")
        check_positive("width_reset_s", self.width_reset_s, "s")
        check_positive("t_verify_s", self.t_verify_s, "s")
        if not (isinstance(self.max_pulses, int) and self.max_pulses >= 1):
            raise ValueError(f"max_pulses must be a positive integer, got {self.max_pulses!r}")


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
            of a row in parallel (sum over rows of that row's longest pulse sequence).
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
    new = xb.device.apply_pulse(state, v, width, key)
    moves = v != 0
    if xb.stuck is not None:
        moves = moves & (xb.stuck == 0)
    new = _where_state(moves, new, state)
    i_avg = 0.5 * (xb.device.current(state, v) + xb.device.current(new, v))
    return new, jnp.abs(v * i_avg) * width


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
    new = eqx.tree_at(lambda c: (c.state, c.g_eff), xb, (state, None), is_leaf=lambda x: x is None)
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


def _write_verify(xb: Crossbar, g_t, s: WriteVerify, key):
    dev, v_read = xb.device, xb.dac.v_read
    tol = s.tol * (xb.mapping.g_max - xb.mapping.g_min)
    zeros_i = jnp.zeros(g_t.shape, jnp.int32)
    dtype = g_t.dtype

    def read(state, k):
        if s.verify_noise:
            return dev.read_noise(state, k, v_read)
        return dev.conductance(state, v_read)

    def cond(c):
        done, it = c[1], c[-2]
        return (it < s.max_pulses) & ~jnp.all(done)

    def body(c):
        state, done, n_up, n_dn, last, g_prev, pulses, energy, row_t, it, key = c
        key, k_read, k_set = jax.random.split(key, 3)
        g = read(state, k_read)
        energy = energy + jnp.where(done, 0.0, v_read**2 * jnp.abs(g) * s.t_verify_s)
        err = g - g_t
        done = done | (jnp.abs(err) <= tol)
        up = ~done & (err < 0)
        dn = ~done & (err > 0)
        # Ladder bookkeeping from the previous pulse (last: +1 SET, -1 RESET, 0 none).
        moved = jnp.abs(g - g_prev)
        stuck = moved < tol
        fast = moved > jnp.abs(err)  # one more such pulse would overshoot: step down
        step = jnp.where(stuck, 1, jnp.where(fast, -1, 0))
        n_up = jnp.where(up & (last > 0), jnp.maximum(n_up + step, 0), n_up)
        n_dn = jnp.where(dn & (last < 0), jnp.maximum(n_dn + step, 0), n_dn)
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
        state, e_p = _pulse(xb, state, v_cell, width, k_set)
        energy = energy + e_p
        # Row-serial write time: a row takes its slowest cell's pulse + verify.
        step_t = jnp.where(up, s.width_set_s, 0.0) + jnp.where(dn, s.width_reset_s, 0.0)
        step_t = step_t + jnp.where(up | dn, s.t_verify_s, 0.0)
        row_t = row_t + jnp.max(step_t, axis=-1)
        last = jnp.where(up, 1, jnp.where(dn, -1, 0)).astype(jnp.int32)
        pulses = pulses + (up | dn).astype(jnp.int32)
        return state, done, n_up, n_dn, last, g, pulses, energy, row_t, it + 1, key

    init = (
        xb.state,
        jnp.zeros(g_t.shape, bool),
        zeros_i,
        zeros_i,
        zeros_i,
        jnp.full(g_t.shape, jnp.inf, dtype),
        zeros_i,
        jnp.zeros(g_t.shape, dtype),
        jnp.zeros(g_t.shape[:-1], dtype),
        jnp.array(0),
        key,
    )
    state, *_, pulses, energy, row_t, _, _ = jax.lax.while_loop(cond, body, init)
    return state, pulses, energy, jnp.sum(row_t)


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
    """Outcome of :func:`apply_pulses`: cell voltages [V] and energy per cell [J]."""

    v_cell: Float[Array, "m p"]
    energy_j: Float[Array, "m p"]


def apply_pulses(
    xb: Crossbar,
    row_v: Float[Array, " m"],
    col_v: Float[Array, " p"],
    width_s: float,
    key: PRNGKeyArray | None = None,
) -> tuple[Crossbar, PulseReport]:
    """Apply one pulse pattern: cell ``(i, j)`` sees ``row_v[i] - col_v[j]`` for ``width_s``.

    Every cell evolves by the device dynamics (``device.apply_pulse``), so half-selected
    cells are disturbed exactly as far as the device physics moves them at their voltage.
    Returns the new crossbar (no cached effective matrix) and a :class:`PulseReport`."""
    v = jnp.asarray(row_v)[:, None] - jnp.asarray(col_v)[None, :]
    state, energy = _pulse(xb, xb.state, v, width_s, key)
    new = eqx.tree_at(lambda c: (c.state, c.g_eff), xb, (state, None), is_leaf=lambda x: x is None)
    return new, PulseReport(v_cell=v, energy_j=energy)


__all__ = [
    "OpenLoop",
    "ProgramReport",
    "PulseReport",
    "WriteVerify",
    "apply_pulses",
    "bias_scheme",
    "program",
]
