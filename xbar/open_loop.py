"""Open-loop programming: one calibrated pulse train per cell, no verification.

:class:`OpenLoop` reads the pulse amplitude for each target off a calibration curve
``G(V, n)`` measured on the nominal (variation-free, noiseless) device from the start
state ``start`` (e.g. full LRS for a gradual RRAM RESET); the real cells (device-to-device
spread, cycle-to-cycle noise) then land wherever the pulses take them. It is the
baseline that write-verify (:mod:`xbar.write_verify`) improves on (e.g. Alibart, Gao &
Strukov, Nanotechnology 23, 075201 (2012), who compare both on TiO2 memristors).

Used through :func:`xbar.program`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from xbar.devices._checks import check_positive

from ._inputs import is_concrete
from .programming import AbstractScheme
from .pulses import pulse_cells, where_state


class OpenLoop(AbstractScheme):
    """Open-loop programming from a calibration table (see the module docstring).

    Calibration: the nominal device (parameters averaged over the array, no noise),
    put in the start state, receives ``n = 1..max_pulses`` identical pulses of each
    amplitude in ``v_grid``; each target then gets the ``(v, n)`` entry whose
    calibrated conductance is nearest. The real cells are put in the start state and
    receive their ``n`` pulses of amplitude ``v``, without verification.

    Fields:
        v_grid: candidate amplitudes [V] (1-D, finite, nonempty; device polarity
            convention).
        width_s: pulse width [s], ``> 0``.
        max_pulses: largest number of identical pulses (1 = single shot).
        start: state values (name -> value) the array is put in before programming (an
            idealised full SET/RESET), e.g. ``{"gap": 2e-10}``; empty = the device's
            default initial state.
        tol: tolerance used only for reporting success (as in ``xbar.WriteVerify``), in
            ``(0, 1]``.
    """

    v_grid: Array = eqx.field(kw_only=True)
    width_s: float = 100e-9
    max_pulses: int = eqx.field(default=1, static=True)
    start: dict = eqx.field(default_factory=dict, static=True)
    tol: float = 0.02

    def __check_init__(self):
        if is_concrete(self.v_grid):
            g = np.asarray(self.v_grid)
            if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)):
                raise ValueError(
                    f"v_grid must be a nonempty 1-D array of finite amplitudes [V], got {g!r}"
                )
        check_positive("width_s", self.width_s, "s")
        if not (isinstance(self.max_pulses, int) and self.max_pulses >= 1):
            raise ValueError(f"max_pulses must be a positive integer, got {self.max_pulses!r}")

    def run(self, xb, g_target, key):
        """Calibrate on the nominal device, then pulse every cell (:func:`_open_loop`)."""
        return _open_loop(xb, g_target, self, key)


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


def _open_loop(xb, g_t, s: OpenLoop, key):
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
        state = where_state(xb.stuck == 0, state, xb.state)

    def step(carry, k):
        st, e = carry
        v = jnp.where(k < n_cell, v_cell, 0.0)
        st, de = pulse_cells(xb.device, xb.stuck, st, v, s.width_s, jax.random.fold_in(key, k))
        return (st, e + de), None

    (state, energy), _ = jax.lax.scan(
        step, (state, jnp.zeros(g_t.shape, g_t.dtype)), jnp.arange(s.max_pulses)
    )
    time_s = g_t.shape[0] * jnp.max(n_cell) * s.width_s
    return state, n_cell.astype(jnp.int32), energy, jnp.asarray(time_s, g_t.dtype)


__all__ = ["OpenLoop"]
