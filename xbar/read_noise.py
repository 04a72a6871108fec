"""Read noise of a crossbar read: per-cell draws, or their moments drawn at the outputs.

Each read (one input vector, or one phase of a bit-serial input) draws its own device
read noise: the devices' read-noise models (``device.read_noise``; e.g. the 1/f model of
Joshi et al., Nat. Commun. 11, 2473 (2020), Eq. 3 for statistical PCM; ``devices.ReadNoise``)
describe one read as an independent draw, and the reads of a batch are separate reads in
time. (1/f noise is correlated over times short against ``1/f_min``, so a burst of reads
also shares part of it; ``read_noise=xbar.PerCall()`` gives the opposite limit, one draw of
the array shared by the whole call, as aihwkit freezes PCM read noise into the weights for
an evaluation; ``Crossbar.with_read_noise_frozen`` keeps one draw across calls.)

Per read, output column ``j`` receives ``sum_i v_i dW_ij`` from independent zero-mean
per-cell fluctuations ``dW_ij`` of variance ``s_ij^2``: a sum of independent terms with
mean ``v @ E[W]`` and variance ``(v * v) @ s^2`` (Gaussian when the cells are; by the
central limit theorem close to it otherwise). When the device's read noise has known
per-cell moments (``device.read_noise_moments``) and the read is linear (``ir_drop``
``xbar.NoWires()`` or ``xbar.EffectiveMatrix()``), the read draws this output noise
directly, ``B x N`` normal draws and one more matrix product instead of ``B x M x P`` draws
(``xbar.PerRead()``); otherwise it draws every cell of every read
(``xbar.PerRead(per_cell=True)``, exact for any noise model, e.g. random telegraph noise). With wire resistance, a cell's fluctuation reaches the outputs through
the effective matrix: it scales the cell's entries ``W_eff[i, j]`` by its relative change
``G_read / G`` (first order in the wire resistance, exact without wires), in every path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Cells per batch of the per-cell, per-read noise path (memory ~ 4 bytes x this x batch).
CELLS_PER_MAP_BATCH = 2**22


def noise_ratio(g_noisy, g):
    """``g_noisy / g`` with 0/0 read as 1 (a zero-conductance device stays at zero)."""
    safe = jnp.where(g == 0, 1.0, g)
    return jnp.where(g == 0, 1.0, g_noisy / safe)


def read_stats(xb, w, state):
    """Read-noise statistics of the logical columns of ``xb`` for the physical matrix ``w``
    (``G`` or ``W_eff``) and the device ``state``: ``(mean, var, var_shared)``, or None when
    the device's noise has no known moments.

    Each cell scales its entries by ``r = G_read / G`` (independent per cell):
    ``E = w E[r]``, ``Var = w^2 Var[r]``; the mapping combines the variances of the
    physical columns (:meth:`xbar.AbstractMapping.combine_variance`)."""
    v_read = xb.dac.v_read
    moments = xb.device.read_noise_moments(state, v_read)
    if moments is None:
        return None
    mean, var = moments
    g = xb.device.conductance(state, v_read)
    safe = jnp.where(g == 0, 1.0, g)
    r_mean = jnp.where(g == 0, 1.0, mean / safe)
    r_var = jnp.where(g == 0, 0.0, var / (safe * safe))
    w_mean = xb.mapping.combine(w * r_mean)
    w_var, w_shared = xb.mapping.combine_variance(w * w * r_var)
    return w_mean, w_var, w_shared


def safe_sqrt(a):
    """``sqrt(a)`` with a zero (not infinite) gradient at ``a = 0``."""
    pos = a > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, a, 1.0)), 0.0)


def read_from_stats(v, stats, key, extra_sd=0.0):
    """Logical column currents [A] of reads ``v`` (..., M) [V] with read noise drawn at the
    outputs: mean ``v @ E[W]`` plus independent normals of variance ``(v * v) @ Var[W] +
    extra_sd^2`` per read and column (``extra_sd`` [A]: an independent Gaussian current
    noise at the same node, e.g. the sense amplifier's, drawn in the same normal), minus one
    normal per read for a shared part (reference column)."""
    mean, var, var_shared = stats
    v2 = v * v
    i = v @ mean
    var_i = v2 @ var
    if not (isinstance(extra_sd, (int, float)) and extra_sd == 0):
        var_i = var_i + extra_sd * extra_sd
    if var_shared is None:
        return i + safe_sqrt(var_i) * jax.random.normal(key, i.shape, i.dtype)
    k_ind, k_sh = jax.random.split(key)
    i = i + safe_sqrt(var_i) * jax.random.normal(k_ind, i.shape, i.dtype)
    shared = safe_sqrt(v2 @ var_shared)  # (..., 1)
    return i - shared * jax.random.normal(k_sh, shared.shape, i.dtype)


def per_read(one, v, key, cells: int):
    """``one(v_r, key_r)`` for every read ``v_r`` of ``v`` (..., M), with independent keys,
    in batches that keep about ``CELLS_PER_MAP_BATCH`` per-cell values in memory."""
    lead = v.shape[:-1]
    vf = v.reshape((-1, v.shape[-1]))
    keys = jax.random.split(key, vf.shape[0])
    batch = max(1, min(vf.shape[0], CELLS_PER_MAP_BATCH // max(cells, 1)))
    out = jax.lax.map(lambda a: one(*a), (vf, keys), batch_size=batch)
    return out.reshape(lead + out.shape[-1:])


__all__ = ["noise_ratio", "per_read", "read_from_stats", "read_stats", "safe_sqrt"]
