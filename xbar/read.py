"""The read pipeline of a crossbar (``Crossbar.mvm``): inputs in, digital outputs out.

A read applies, in order (the crossbar read of the project's design document):

1. input encoding: DAC quantisation, amplitude / pulse-width / bit-serial phases
   (``dac.phases``, with the DAC's own noise when a key is given);
2. array physics: drift to the read time (``device.drift``), read noise
   (``device.read_noise``, :mod:`xbar.read_noise`), faults (stuck cells), the cell stack
   (:mod:`xbar.cells`), and IR drop through the wires (``xbar.effective_matrix`` or
   ``xbar.solve``);
3. analog combination of the differential pair / reference column
   (``mapping.combine``), sense amplifier;
4. ADC (with its noise and per-column calibration), shift-and-add of bit-serial phases;
5. optionally global drift compensation (:mod:`xbar.devices.compensation`): the output is
   scaled by the ratio of the readouts of noiseless calibration reads (every row driven
   alone, through the same pipeline) at programming time and at the read time.

A cached effective matrix (``Crossbar.with_effective_matrix``) belongs to one read time:
reads without ``t_s`` use it at that time; a read at another time raises, naming the time
the cache was built for. Drift compensation with a cache needs the factor cached with it
(``with_effective_matrix(..., drift_compensation=True)``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from xbar.devices.compensation import compensation_factor

from . import read_noise as _noise
from ._inputs import as_float, check_key, check_last_axis, check_time, is_concrete
from .cells import Passive
from .read_modes import noise_mode, wire_mode
from .solve import effective_matrix, solve


def mvm(xb, x, key=None, *, t_s, ir_drop, weights, drift_compensation, read_noise, checked=False):
    """``Crossbar.mvm`` (arguments documented there). ``checked``: ``x`` and ``weights``
    were already found finite by the caller (``xbar.TiledCrossbar.mvm`` checks the whole
    input once, not once more per tile)."""
    ir_drop = wire_mode(ir_drop)
    read_noise = noise_mode(read_noise)
    m, n = xb.shape
    x = as_float("x", x, finite=not checked)
    check_last_axis("x", x, m, "one input per crossbar row")
    key = check_key("key", key)
    if t_s is not None:
        t_s = check_time("t_s", t_s)
    if weights is not None:
        weights = as_float("weights", weights, finite=not checked)
        if weights.shape != (m, n):
            raise ValueError(f"weights must have the logical shape {(m, n)}, got {weights.shape}")
    mode = _mode(xb, ir_drop)
    cached = _cached(xb, mode, weights)
    if xb.noise_frozen and not cached:
        raise ValueError(
            "this crossbar carries a frozen read-noise draw in its cached matrix "
            "(with_read_noise_frozen): read it through that matrix (ir_drop None or "
            "xbar.EffectiveMatrix(), no weights=)"
        )
    if cached and t_s is not None:
        t_s = _check_cache_time(xb, t_s)
    if key is None:
        k_noise = k_sense = k_dac = k_adc = None
    else:
        k_noise, k_sense, k_dac, k_adc = jax.random.split(key, 4)
    y = _read(xb, x, (k_noise, k_sense, k_dac, k_adc), t_s, mode, weights, read_noise)
    if drift_compensation:
        y = y * jax.lax.stop_gradient(_gdc_alpha(xb, x.dtype, t_s, mode, weights, cached))
    return y


def _check_cache_time(xb, t_s):
    """``t_s`` if it is the time of the cached matrix; else ValueError (or a run-time
    error under ``jit``) naming the time the cache was built for."""
    built = "programming time (t_s=None)" if xb.t_eff is None else "t_s"
    if xb.t_eff is None:
        raise ValueError(
            f"the cached effective matrix was built for reads at {built}; this read asks "
            f"for t_s={t_s}: rebuild it with with_effective_matrix(t_s=...) or read "
            "without t_s"
        )
    if is_concrete((t_s, xb.t_eff)):
        if not np.allclose(np.asarray(t_s), np.asarray(xb.t_eff), rtol=1e-12, atol=0):
            raise ValueError(
                f"the cached effective matrix was built for reads at t_s={xb.t_eff} s; this "
                f"read asks for t_s={t_s} s: rebuild it with with_effective_matrix(t_s="
                f"{t_s}) or read without t_s"
            )
        return t_s
    return eqx.error_if(
        t_s,
        jnp.any(t_s != xb.t_eff),
        "the cached effective matrix was built for another t_s: rebuild it with "
        "with_effective_matrix(t_s=...) or read without t_s",
    )


def _mode(xb, ir_drop: str) -> str:
    if ir_drop != "auto":
        return ir_drop
    if xb.g_eff is not None:
        return "effective"
    return "none" if xb.wiring.is_ideal else "effective"


def _cached(xb, mode, weights) -> bool:
    return mode == "effective" and xb.g_eff is not None and weights is None


def calibration_inputs(m: int, dtype):
    """The calibration reads of drift compensation: every row alone at full input."""
    return jnp.eye(m, dtype=dtype)


def _gdc_alpha(xb, dtype, t_s, mode, weights, cached):
    """Drift-compensation factor of a read at ``t_s`` (:mod:`xbar.devices.compensation`)."""
    if weights is not None:
        return jnp.ones((), dtype)  # no drift is applied to given weights
    if cached:
        if xb.t_eff is None:
            return jnp.ones((), dtype)
        if xb.gdc_alpha is None:
            raise ValueError(
                f"drift_compensation=True with a cached effective matrix (built for t_s="
                f"{xb.t_eff} s) needs the factor cached with it: build the cache with "
                "with_effective_matrix(t_s=..., drift_compensation=True)"
            )
        return xb.gdc_alpha
    if t_s is None:
        return jnp.ones((), dtype)
    eye = calibration_inputs(xb.shape[0], dtype)
    none = (None, None, None, None)
    y0 = _read(xb, eye, none, None, mode, None)
    yt = _read(xb, eye, none, t_s, mode, None)
    return compensation_factor(y0, yt)


def cached_gdc_alpha(xb, g_eff_ref):
    """The drift-compensation factor of the cached matrix of ``xb`` against the effective
    matrix ``g_eff_ref`` of programming time (None: the cache is at programming time)."""
    eye = calibration_inputs(xb.shape[0], xb.g_eff.dtype)
    none = (None, None, None, None)
    yt = _read(xb, eye, none, None, "effective", None)
    if g_eff_ref is None:
        return jnp.ones((), yt.dtype)
    ref = eqx.tree_at(
        lambda c: (c.g_eff, c.t_eff, c.w_log),
        xb,
        (g_eff_ref, None, None),
        is_leaf=lambda v: v is None,
    )
    y0 = _read(ref, eye, none, None, "effective", None)
    return compensation_factor(y0, yt)


def _noise_state(xb, t_s, cached: bool):
    """The device state whose read noise a read draws (the cached matrix's time when
    reading from the cache without ``t_s``)."""
    if cached and t_s is None:
        return xb.device_state(xb.t_eff)
    return xb.device_state(t_s)


def _array_matrix(xb, t_s, weights, mode):
    """``(G_cells, W_read)``: noiseless cell conductances (None when not needed) and the
    physical matrix a linear read uses."""
    if weights is not None:
        g_dev = xb.mapping.to_conductance(weights)
        g = g_dev if isinstance(xb.cell, Passive) else xb._chord(g_dev, xb.dac.v_read)
    else:
        # The cached-matrix read never needs the cell conductances themselves.
        g = None if _cached(xb, mode, weights) else xb.conductances(t_s)
    if mode == "effective":
        if _cached(xb, mode, weights):
            return None, xb.g_eff
        return g, effective_matrix(g, **xb.wiring.solve_kwargs())
    return g, g


def _ratio(xb, state, g_dev, key):
    """One per-cell draw of ``G_read / G`` (read noise relative to the noiseless read)."""
    return _noise.noise_ratio(xb.device.read_noise(state, key, xb.dac.v_read), g_dev)


def _read(xb, x, keys, t_s, mode, weights, read_noise="auto"):
    k_noise, k_sense, k_dac, k_adc = keys
    u, digital_w = xb.dac.phases(x, k_dac)  # (K, *b, M), (K,)
    v = u * xb.dac.v_read
    g, w_read = _array_matrix(xb, t_s, weights, mode)
    noisy = k_noise is not None and weights is None and not xb.noise_frozen
    linear = mode in ("none", "effective")
    cached = _cached(xb, mode, weights)
    if noisy:
        state = _noise_state(xb, t_s, cached)
        g_dev = xb.device.conductance(state, xb.dac.v_read)
    if not noisy or read_noise == "snapshot":
        ratio = _ratio(xb, state, g_dev, k_noise) if noisy else 1.0
        if linear and cached and not noisy and xb.w_log is not None:
            i_log = v @ xb.w_log  # the combined matrix of the cache
        elif linear:
            # combine() is linear: subtracting the pair (or reference) columns of the
            # matrix first halves the matrix product.
            i_log = v @ xb.mapping.combine(w_read * ratio)
        else:
            i_log = _solve_read(xb, g if not noisy else g * ratio, v, t_s, weights, mode)
    elif linear:
        stats = None
        if read_noise == "auto":
            if cached and t_s is None and xb.read_stats is not None:
                stats = xb.read_stats
            else:
                stats = _noise.read_stats(xb, w_read, state)
        if stats is not None:
            # the sense amplifier's Gaussian input noise joins the read noise in one draw
            sense_sd = 0.0 if k_sense is None or xb.sense.noiseless else xb.sense.noise_a
            k_sense = None
            i_log = _noise.read_from_stats(v, stats, k_noise, sense_sd)
        else:

            def one(vr, kr):
                return vr @ xb.mapping.combine(w_read * _ratio(xb, state, g_dev, kr))

            i_log = _noise.per_read(one, v, k_noise, w_read.size)
    else:

        def one(vr, kr):
            ratio = _ratio(xb, state, g_dev, kr)
            return _solve_read(xb, g * ratio, vr[None], t_s, weights, mode)[0]

        i_log = _noise.per_read(one, v, k_noise, g.size)
    i_log = xb.sense(i_log, k_sense)
    y = xb.adc(i_log / xb.i_unit, k_adc)
    return jnp.tensordot(digital_w, y, axes=1)


def _solve_read(xb, g, v, t_s, weights, mode):
    """Logical column currents [A] of reads ``v`` (..., M) through ``xbar.solve``: linear
    cells of (chord) conductance ``g``, or for ``"nonlinear"`` the device law scaled by
    ``g`` over the noiseless chord conductances (one read-noise draw), in the cell stack
    of the crossbar (``xbar.solve(..., cell=xb.cell)``)."""
    if mode == "solve" or not xb.dac.encoding.phases_are_drives or weights is not None:
        return xb.mapping.combine(_solve_batched(g, v, None, Passive(), xb.wiring))
    state = xb.device_state(t_s)
    g0 = xb.conductances(t_s)
    ratio = jnp.where(g0 == 0, 1.0, g / jnp.where(g0 == 0, 1.0, g0))

    def iv(_g, x):
        return ratio * xb.device.current(state, x)

    g_dev = xb.device.conductance(state, xb.dac.v_read)
    return xb.mapping.combine(_solve_batched(g_dev, v, iv, xb.cell, xb.wiring))


def _solve_batched(g, v, iv, cell, wiring):
    """``xbar.solve`` over the leading axes of ``v`` (phases and batch) -> ``(..., P)``."""
    lead = v.shape[:-1]
    vb = v.reshape((-1, v.shape[-1]))
    sol = solve(g, vb, iv=iv, cell=cell, **wiring.solve_kwargs())
    return sol.i_out.reshape(lead + (g.shape[-1],))


__all__ = ["calibration_inputs", "cached_gdc_alpha", "mvm"]
