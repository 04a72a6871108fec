"""Energy and latency of crossbar reads (and a summary of writes).

Array energy of a read comes from the solved operating point (``xbar.solve``): for each
read phase of duration ``t``

    E_cells = t * sum_cells i_cell * (v_wl - v_bl)
    E_wires = t * sum_segments I_seg^2 * R_seg     (word lines, bit lines, driver, sense)

with the segment currents obtained from the cell currents by Kirchhoff's current law
(each line is a chain fed from one end). Energy conservation requires
``E_cells + E_wires = t * sum_rows v_in * I_row`` (the power delivered by the drivers);
the tests check both this and the ``V^2 / R`` form of every element.

Converters: ``M`` DAC conversions and ``N`` ADC conversions per read phase, each costing
the Walden-form energy of :mod:`xbar.peripherals`. Latency: per phase the input pulse
``t_read`` plus the ADC conversion time of its multiplexed columns (no pipelining).

Input encodings (objects of :mod:`xbar.peripherals`): ``AmplitudeEncoding`` = one phase
of ``t_read``; ``BitSerialEncoding`` = ``bits - 1`` phases of ``t_read``;
``PulseWidthEncoding`` = ``L = 2**(bits-1) - 1`` time slots of ``t_read / L`` in which a
row is driven at ``+-v_read`` while its pulse lasts (exact with IR drop, ``L`` solves).
The array conductances are the linear (chord at ``v_read``) cell conductances.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._inputs import as_float, check_key, check_last_axis
from .crossbar import Crossbar
from .solve import solve


class ReadEnergy(eqx.Module):
    """Energy [J] and latency [s] of one read, per input vector (batch shape of ``x``).

    Attributes: ``cells``, ``word_lines``, ``bit_lines``, ``driver`` (r_src),
    ``sense`` (r_sense), ``array`` (their sum), ``supplied`` (driver power x time, equal
    to ``array`` by energy conservation), ``dac``, ``adc``, ``total`` (array + converters),
    ``latency_s``."""

    cells: Float[Array, "*b"]
    word_lines: Float[Array, "*b"]
    bit_lines: Float[Array, "*b"]
    driver: Float[Array, "*b"]
    sense: Float[Array, "*b"]
    array: Float[Array, "*b"]
    supplied: Float[Array, "*b"]
    dac: Float[Array, "*b"]
    adc: Float[Array, "*b"]
    total: Float[Array, "*b"]
    latency_s: Float[Array, ""]


def _phases(xb: Crossbar, x):
    """Row voltages ``(K, *b, M)`` and durations ``(K,)`` of the time slots of ``x``
    (the DAC encoding's schedule, :meth:`xbar.AbstractDACEncoding.schedule`)."""
    v, dt, _ = xb.dac.schedule(x)
    return v, dt


def array_power(xb: Crossbar, sol, v_in) -> dict[str, Array]:
    """Power [W] of each element group at an operating point ``sol`` of ``xb``'s array."""
    w = xb.wiring
    c = sol.i_cell
    i_wl = jnp.flip(jnp.cumsum(jnp.flip(c, -1), -1), -1)  # segment k carries sum_{l>=k}
    i_bl = jnp.cumsum(c, -2)  # segment below row i carries sum_{l<=i}
    return dict(
        cells=jnp.sum(c * (sol.v_wl - sol.v_bl), (-2, -1)),
        word_lines=w.r_wl * jnp.sum(i_wl**2, (-2, -1)),
        bit_lines=w.r_bl * jnp.sum(i_bl**2, (-2, -1)),
        driver=w.r_src * jnp.sum(i_wl[..., 0] ** 2, -1),
        sense=w.r_sense * jnp.sum(i_bl[..., -1, :] ** 2, -1),
        supplied=jnp.sum(v_in * i_wl[..., 0], -1),
    )


def read_energy(
    xb: Crossbar,
    x: Float[Array, "*b m"],
    *,
    t_s: float | None = None,
    key: PRNGKeyArray | None = None,
) -> ReadEnergy:
    """Energy and latency of reading ``x`` (normalised inputs, ``(M,)`` or ``(B, M)``).

    Uses ``xbar.solve`` on the cell conductances at time ``t_s`` (one noisy read when
    ``key`` is given) with the crossbar's wiring; see the module docstring."""
    x = as_float("x", x)
    check_last_axis("x", x, xb.shape[0], "one input per crossbar row")
    key = check_key("key", key)
    g = xb.conductances(t_s, key)
    v, dt = _phases(xb, x)
    lead = v.shape[:-1]
    vb = v.reshape((-1, v.shape[-1]))
    sol = solve(g, vb, **xb.wiring.solve_kwargs())
    p = {k: val.reshape(lead) for k, val in array_power(xb, sol, vb).items()}
    e = {k: jnp.tensordot(dt, val, axes=1) for k, val in p.items()}
    array = e["cells"] + e["word_lines"] + e["bit_lines"] + e["driver"] + e["sense"]
    m, n = xb.shape
    k = xb.dac.n_phases
    batch = x.shape[:-1]
    e_dac = jnp.full(batch, k * m * xb.dac.energy_per_conversion_j())
    e_adc = jnp.full(batch, k * n * xb.adc.energy_per_conversion_j())
    latency = k * (xb.dac.t_read_s + xb.adc.conversion_time_s(n))
    return ReadEnergy(
        cells=e["cells"],
        word_lines=e["word_lines"],
        bit_lines=e["bit_lines"],
        driver=e["driver"],
        sense=e["sense"],
        array=array,
        supplied=e["supplied"],
        dac=e_dac,
        adc=e_adc,
        total=array + e_dac + e_adc,
        latency_s=jnp.asarray(latency),
    )


def write_summary(report) -> dict[str, Array]:
    """Totals of a :class:`xbar.ProgramReport`: energy [J], pulses, time [s], success rate."""
    return dict(
        energy_j=jnp.sum(report.energy_j),
        energy_per_cell_j=jnp.mean(report.energy_j),
        pulses=jnp.sum(report.pulses),
        mean_pulses=jnp.mean(report.pulses),
        time_s=report.time_s,
        success_rate=jnp.mean(report.success),
    )


__all__ = ["ReadEnergy", "array_power", "read_energy", "write_summary"]
