"""Per-column calibration of the ADC outputs from reads of known inputs.

Column ``j`` of a real array reads ``y_j = a_j y_ideal_j + b_j`` to first order: the sense
amplifier's gain and offset spread, the conductance-window error of the column and the
mean IR drop along it scale and shift it. Reading calibration inputs ``X`` whose ideal
outputs ``X @ W`` are known (``W`` the weights the array was programmed to) and fitting
``a_j, b_j`` by least squares per column gives the digital correction

    y_j  <-  (code_j - b_j) / a_j,     i.e. ``col_offset = b``, ``col_gain = 1 / a``

that the ADC applies after conversion (:class:`xbar.AbstractADC`). This is the per-column
affine output correction of analog in-memory computing chips (e.g. Le Gallo et al., "A
64-core mixed-signal in-memory compute chip based on phase-change memory for deep neural
network inference", Nat. Electron. 6, 680 (2023), affine correction per column; the
per-column output scales of Rasch et al., Nat. Commun. 14, 5282 (2023)).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._inputs import as_float, check_key, is_concrete


def calibrate_columns(xb, weights, x=None, key=None, *, t_s=None, **mvm_kwargs):
    """``xb`` with its ADC's ``col_gain`` / ``col_offset`` fitted from reads of ``x``.

    Args:
        xb: a ``Crossbar``.
        weights: the logical weights ``(M, N)`` the array should hold (the programming
            targets); the ideal outputs are ``x @ weights``.
        x: calibration inputs ``(K, M)`` with ``K >= 2`` (default: the zero input and every
            row alone at full scale, ``K = M + 1``).
        key: PRNG key for noisy calibration reads (None: noiseless).
        t_s, mvm_kwargs: passed to ``Crossbar.mvm`` for the calibration reads.

    Returns the calibrated crossbar. Raises ``ValueError`` if a column does not respond
    (fitted gain ``<= 0``, e.g. a column of stuck-off cells)."""
    m, n = xb.shape
    w = as_float("weights", weights)
    if w.shape != (m, n):
        raise ValueError(f"weights must have the logical shape {(m, n)}, got {w.shape}")
    if x is None:
        x = jnp.concatenate([jnp.zeros((1, m), w.dtype), jnp.eye(m, dtype=w.dtype)])
    x = as_float("x", x)
    if x.ndim != 2 or x.shape[1] != m or x.shape[0] < 2:
        raise ValueError(f"x must have shape (K, {m}) with K >= 2, got {x.shape}")
    key = check_key("key", key)
    raw = eqx.tree_at(
        lambda c: (c.adc.col_gain, c.adc.col_offset),
        xb,
        (jnp.ones((), w.dtype), jnp.zeros((), w.dtype)),
    )
    y = raw.mvm(x, key, t_s=t_s, **mvm_kwargs)  # (K, N)
    ideal = x @ w
    mi, my = ideal.mean(0), y.mean(0)
    di, dy = ideal - mi, y - my
    var = jnp.sum(di * di, 0)
    a = jnp.sum(di * dy, 0) / jnp.where(var > 0, var, 1.0)
    a = jnp.where(var > 0, a, 1.0)
    b = my - a * mi
    if is_concrete(a) and not np.all(np.asarray(a) > 0):
        j = int(np.argmin(np.asarray(a)))
        raise ValueError(
            f"column {j} does not respond to the calibration inputs (fitted gain "
            f"{float(a[j])}); check its cells and the weights"
        )
    return eqx.tree_at(lambda c: (c.adc.col_gain, c.adc.col_offset), xb, (1.0 / a, b))


__all__ = ["calibrate_columns"]
