"""Global drift compensation: one scale factor that undoes the mean conductance drift.

PCM conductances decay after programming, ``G(t) = G(t0) (t / t0)^(-nu)`` with a spread
of exponents ``nu`` (Joshi et al., "Accurate deep neural network inference using
computational phase-change memory", Nat. Commun. 11, 2473 (2020), Eq. 2 and the section
"Global drift compensation"). Global drift compensation (GDC) reads the array with known
calibration inputs right after programming and again at the time of use, and scales every
later output by the ratio of the two readouts:

    readout(y) = mean_{k, j} |y_kj|,      y = X @ W  (calibration reads, rows k)
    alpha(t)   = readout(X @ W(t0)) / readout(X @ W(t))

with ``X`` the identity by default: each row is driven alone, so ``readout`` is the mean
absolute weight read from the array (the readout of IBM aihwkit's
``GlobalDriftCompensation``, ``inference/compensation/drift.py``: mean absolute output of
identity reads). Because it averages absolute values of individual entries it holds for
signed arrays: differential pairs ``W = (G+ - G-) / scale`` and signed inputs, where a
sum over all-ones reads would cancel. Per-column compensation (aihwkit's
``PerColumnDriftCompensation``) takes the mean over the calibration reads only, one
factor per output column.

This is the one definition of drift compensation in the project: ``xbar.Crossbar.mvm``
(``drift_compensation=True``) feeds it the outputs of its own calibration reads, and
arrays of statistical PCM (``devices.PCMStatistical``) read by hand use
:func:`drift_compensation` on two conductance (or weight) matrices.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def readout(y: Float[Array, "*batch k n"], *, per_column: bool = False):
    """Mean absolute value of calibration outputs ``y`` (reads ``k`` x columns ``n``):
    a scalar per batch, or one value per column with ``per_column``."""
    y = jnp.abs(jnp.asarray(y))
    return y.mean(-2) if per_column else y.mean((-2, -1))


def compensation_factor(
    y_ref: Float[Array, "*batch k n"],
    y_now: Float[Array, "*batch k n"],
    *,
    per_column: bool = False,
):
    """``alpha = readout(y_ref) / readout(y_now)`` from the outputs of the same calibration
    reads at programming time (``y_ref``) and now (``y_now``). A readout of zero (an array
    that reads nothing) gives ``alpha = 1`` rather than a division by zero."""
    r_ref = readout(y_ref, per_column=per_column)
    r_now = readout(y_now, per_column=per_column)
    ok = r_now > 0
    return jnp.where(ok, r_ref / jnp.where(ok, r_now, 1.0), 1.0)


def drift_compensation(
    g_ref: Float[Array, "*batch rows cols"],
    g_now: Float[Array, "*batch rows cols"],
    x: Float[Array, "k rows"] | None = None,
    *,
    per_column: bool = False,
) -> Float[Array, "*batch"]:
    """Global drift compensation factor ``alpha = readout(x @ g_ref) / readout(x @ g_now)``.

    Args:
        g_ref: the array read at programming time: conductances [S], their noisy reads,
            or signed weights (e.g. ``G+ - G-``); shape ``(*batch, rows, cols)``.
        g_now: the same array read now.
        x: calibration inputs ``(rows,)`` or ``(k, rows)``; default the identity (every
            row read alone, the readout is the mean absolute entry).
        per_column: one factor per column, shape ``(*batch, cols)``.

    Multiply later outputs ``x' @ G(t)`` by ``alpha``."""
    g_ref = jnp.asarray(g_ref)
    g_now = jnp.asarray(g_now)
    if g_ref.shape != g_now.shape or g_ref.ndim < 2:
        raise ValueError(
            f"g_ref and g_now must be matrices of one shape, got {g_ref.shape} and {g_now.shape}"
        )
    if x is None:
        y_ref, y_now = g_ref, g_now
    else:
        x = jnp.atleast_2d(jnp.asarray(x, g_ref.dtype))
        if x.ndim != 2 or x.shape[-1] != g_ref.shape[-2]:
            raise ValueError(
                f"x must have shape ({g_ref.shape[-2]},) or (k, {g_ref.shape[-2]}), got {x.shape}"
            )
        y_ref = jnp.einsum("ki,...ij->...kj", x, g_ref)
        y_now = jnp.einsum("ki,...ij->...kj", x, g_now)
    return compensation_factor(y_ref, y_now, per_column=per_column)


__all__ = ["compensation_factor", "drift_compensation", "readout"]
