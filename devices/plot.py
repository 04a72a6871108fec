"""Plotting helpers for single-device studies (any device model).

Each function takes plain data arrays (numpy or JAX) and an optional matplotlib
``Axes``; it draws into that axes (or a new figure) and returns the axes. Nothing
here knows about a particular model, so RRAM, PCM and behavioural models share them.

* :func:`iv_loop`: ``|I|`` on a log axis against ``V`` (hysteresis loops).
* :func:`pulse_response`: conductance against pulse number (potentiation/depression).
* :func:`variability_spread`: histogram and empirical CDF of a quantity across devices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _axes(ax, ncols: int = 1):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(1, ncols, figsize=(4.5 * ncols, 3.5), squeeze=True)
    return ax


def iv_loop(v, i, ax=None, labels: Sequence[str] | None = None, floor_a: float = 1e-12, **kw):
    """Plot ``|I|`` [A] (log axis) against ``V`` [V].

    ``v``: shape ``(T,)``; ``i``: shape ``(T,)`` or ``(T, K)`` (one line per column, e.g.
    several cycles or devices). Currents below ``floor_a`` are drawn at ``floor_a`` so
    the log axis stays finite at ``V = 0`` (a pinched loop). Returns the axes."""
    ax = _axes(ax)
    v = np.asarray(v)
    i = np.asarray(i)
    i = i[:, None] if i.ndim == 1 else i
    for k in range(i.shape[1]):
        label = labels[k] if labels is not None else None
        ax.semilogy(v, np.maximum(np.abs(i[:, k]), floor_a), label=label, **kw)
    ax.set_xlabel("voltage [V]")
    ax.set_ylabel("|current| [A]")
    if labels is not None:
        ax.legend(fontsize="small")
    return ax


def pulse_response(g, ax=None, labels: Sequence[str] | None = None, unit: str = "S", **kw):
    """Plot conductance against pulse number.

    ``g``: shape ``(n_pulses,)`` or ``(n_pulses, K)`` (one line per column) in
    siemens; ``unit`` ``"S"``, ``"mS"`` or ``"uS"`` scales the axis. Returns the axes."""
    scale = {"S": 1.0, "mS": 1e3, "uS": 1e6}[unit]
    ax = _axes(ax)
    g = np.asarray(g)
    g = g[:, None] if g.ndim == 1 else g
    n = np.arange(1, g.shape[0] + 1)
    for k in range(g.shape[1]):
        label = labels[k] if labels is not None else None
        ax.plot(n, g[:, k] * scale, marker=".", label=label, **kw)
    ax.set_xlabel("pulse number")
    ax.set_ylabel(f"conductance [{unit}]")
    if labels is not None:
        ax.legend(fontsize="small")
    return ax


def variability_spread(
    values,
    axes=None,
    labels: Sequence[str] | None = None,
    bins: int = 40,
    log: bool = True,
    quantity: str = "resistance [Ω]",
):
    """Histogram (left) and empirical CDF (right) of a quantity across devices.

    ``values``: an array ``(n,)`` or a sequence of arrays (one population each, e.g.
    ``[R_LRS, R_HRS]``); ``axes``: a pair of axes or None; ``log``: logarithmic x axis
    (bins spaced in log). Returns the pair of axes."""
    axes = _axes(axes, ncols=2)
    ax_h, ax_c = axes[0], axes[1]
    pops = [np.asarray(values)] if np.ndim(values[0]) == 0 else [np.asarray(x) for x in values]
    allv = np.concatenate([p.ravel() for p in pops])
    if log:
        edges = np.logspace(np.log10(allv.min()), np.log10(allv.max()), bins + 1)
    else:
        edges = np.linspace(allv.min(), allv.max(), bins + 1)
    edges[0], edges[-1] = allv.min(), allv.max()  # log10 round trip must not drop the extremes
    for k, p in enumerate(pops):
        label = labels[k] if labels is not None else None
        ax_h.hist(p.ravel(), bins=edges, alpha=0.6, label=label)
        x = np.sort(p.ravel())
        ax_c.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=label)
    for ax in (ax_h, ax_c):
        ax.set_xlabel(quantity)
        if log:
            ax.set_xscale("log")
    ax_h.set_ylabel("devices")
    ax_c.set_ylabel("cumulative fraction")
    if labels is not None:
        ax_c.legend(fontsize="small")
    return axes


__all__ = ["iv_loop", "pulse_response", "variability_spread"]
