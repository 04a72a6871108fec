"""Plots of sweep results (the ``xarray.Dataset`` of :func:`xbar.sweep`).

* :func:`metric_vs`: a metric against one parameter, the median over seeds as a line and a
  quantile band (default 10-90 %) as the device-to-device spread; one line per value of
  an optional ``hue`` parameter.
* :func:`heatmap`: a metric over two parameters, reduced over seeds (mean, median or a
  quantile), with a labelled colour bar.
* :func:`design_map` (and :func:`meets`, the same as data): the region of a two-parameter plane where a metric meets a target
  (``>=`` or ``<=``), drawn over the heat map with the boundary contour; failing cells are
  hatched.

Axis labels come from the coordinates' ``long_name`` / ``units`` attributes (the sweep's
``units=``). A parameter axis whose positive values span more than two decades is drawn
on a log scale (``logx`` / ``logy`` override). Each function returns the axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["design_map", "heatmap", "label", "meets", "metric_vs"]


def label(da_or_ds, name: str) -> str:
    """``long_name [units]`` of variable or coordinate ``name`` (units omitted if none)."""
    var = da_or_ds[name]
    text = str(var.attrs.get("long_name", name)).replace("_", " ")
    units = var.attrs.get("units")
    return f"{text} [{units}]" if units not in (None, "", "1") else text


def _auto_log(values) -> bool:
    v = np.asarray(values, dtype=float)
    return bool(v.size > 1 and np.all(v > 0) and v.max() / v.min() > 100.0)


def _axes(ax, figsize=(4.8, 3.6)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _only(da, keep: Sequence[str], what: str):
    extra = [d for d in da.dims if d not in keep]
    if extra:
        raise ValueError(
            f"{what}: the metric has further dimensions {extra}; select one value of each "
            f"first (e.g. ds.sel({extra[0]}=...)), or reduce them"
        )
    return da


def _reduce(da, reduce: str | float):
    if "seed" not in da.dims:
        return da
    if reduce == "mean":
        return da.mean("seed")
    if reduce == "median":
        return da.median("seed")
    if isinstance(reduce, float) and 0.0 <= reduce <= 1.0:
        return da.quantile(reduce, dim="seed").drop_vars("quantile")
    raise ValueError(f"reduce must be 'mean', 'median' or a quantile in [0, 1], got {reduce!r}")


def metric_vs(
    ds,
    metric: str,
    x: str,
    *,
    hue: str | None = None,
    band: tuple[float, float] = (0.1, 0.9),
    ax=None,
    logx: bool | None = None,
    logy: bool | None = None,
    marker: str = "o",
):
    """Median of ``metric`` over seeds against parameter ``x``, with a quantile band.

    ``ds``: a sweep dataset reduced to the dimensions ``x``, ``seed`` and (optionally)
    ``hue``; ``band``: the lower and upper quantiles of the shaded spread over seeds."""
    ax = _axes(ax)
    da = _only(ds[metric], [x, "seed"] + ([hue] if hue else []), "metric_vs")
    lo_q, hi_q = band
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ValueError(f"band must be two quantiles 0 <= lo < hi <= 1, got {band}")
    groups = [(None, da)] if hue is None else [(v, da.sel({hue: v})) for v in da[hue].values]
    xs = np.asarray(ds[x].values, dtype=float)
    for i, (value, d) in enumerate(groups):
        color = f"C{i % 10}"
        med = d.median("seed").values if "seed" in d.dims else d.values
        name = None if hue is None else f"{label(ds, hue).split(' [')[0]} = {value:g}"
        if hue is not None and ds[hue].attrs.get("units") not in (None, "", "1"):
            name += f" {ds[hue].attrs['units']}"
        ax.plot(xs, med, marker=marker, color=color, label=name, ms=4)
        if "seed" in d.dims and d.sizes["seed"] > 1:
            lo = d.quantile(lo_q, dim="seed").values
            hi = d.quantile(hi_q, dim="seed").values
            ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0)
    if logx if logx is not None else _auto_log(xs):
        ax.set_xscale("log")
    if logy if logy is not None else _auto_log(da.values[np.isfinite(da.values)]):
        ax.set_yscale("log")
    ax.set_xlabel(label(ds, x))
    ax.set_ylabel(label(ds, metric))
    band_txt = f"median, {lo_q * 100:.0f}-{hi_q * 100:.0f} % of seeds shaded"
    if hue is not None:
        ax.legend(fontsize="small", title=band_txt, title_fontsize="x-small")
    else:
        ax.plot([], [], color="C0", marker=marker, ms=4, label="median over seeds")
        ax.fill_between([], [], [], color="C0", alpha=0.2, label=band_txt.split(", ")[1])
        ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def _edges(v, log: bool):
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] / 2, v[0] * 2]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    w = np.log(v) if log else v
    mid = (w[1:] + w[:-1]) / 2
    e = np.concatenate([[2 * w[0] - mid[0]], mid, [2 * w[-1] - mid[-1]]])
    return np.exp(e) if log else e


def _plane(ds, metric, x, y, reduce, logx, logy):
    da = _only(ds[metric], [x, y, "seed"], "heatmap")
    z = _reduce(da, reduce).transpose(y, x).values
    xs, ys = ds[x].values, ds[y].values
    lx = logx if logx is not None else _auto_log(xs)
    ly = logy if logy is not None else _auto_log(ys)
    return z, xs, ys, lx, ly


def _mesh(ax, z, xs, ys, lx, ly, cmap, norm=None, **kw):
    m = ax.pcolormesh(_edges(xs, lx), _edges(ys, ly), z, cmap=cmap, norm=norm, **kw)
    if lx:
        ax.set_xscale("log")
    if ly:
        ax.set_yscale("log")
    return m


def heatmap(
    ds,
    metric: str,
    x: str,
    y: str,
    *,
    reduce: str | float = "mean",
    ax=None,
    cmap: str = "viridis",
    logx: bool | None = None,
    logy: bool | None = None,
    logz: bool = False,
):
    """``metric`` over parameters ``x`` (horizontal) and ``y`` (vertical), reduced over seeds.

    ``reduce``: ``"mean"``, ``"median"`` or a quantile in ``[0, 1]`` (e.g. ``0.1`` for the
    worst decile of device instances). The colour bar is labelled with the metric's name,
    units and the reduction."""
    import matplotlib.colors as mcolors

    ax = _axes(ax)
    z, xs, ys, lx, ly = _plane(ds, metric, x, y, reduce, logx, logy)
    norm = mcolors.LogNorm() if logz else None
    m = _mesh(ax, z, xs, ys, lx, ly, cmap, norm)
    cb = ax.figure.colorbar(m, ax=ax)
    how = reduce if isinstance(reduce, str) else f"{reduce * 100:g} % quantile"
    cb.set_label(f"{label(ds, metric)}, {how} over seeds")
    ax.set_xlabel(label(ds, x))
    ax.set_ylabel(label(ds, y))
    return ax


def design_map(
    ds,
    metric: str,
    x: str,
    y: str,
    *,
    target: float,
    above: bool = True,
    reduce: str | float = "mean",
    ax=None,
    cmap: str = "viridis",
    logx: bool | None = None,
    logy: bool | None = None,
    title: str | None = None,
):
    """Where ``metric`` (reduced over seeds) meets ``target``: ``>= target`` if ``above``
    else ``<= target``, over parameters ``x`` and ``y``.

    The heat map of the metric is drawn with the target contour (white line); cells that
    miss the target are hatched; the legend sits above the axes (``title`` is placed
    above it). Returns the axes; :func:`meets` gives the same region as
    data."""
    import matplotlib.patches as mpatches

    ax = _axes(ax)
    z, xs, ys, lx, ly = _plane(ds, metric, x, y, reduce, logx, logy)
    ok = z >= target if above else z <= target
    m = _mesh(ax, z, xs, ys, lx, ly, cmap)
    ex, ey = _edges(xs, lx), _edges(ys, ly)
    for i, j in zip(*np.nonzero(~ok), strict=True):
        ax.add_patch(
            mpatches.Rectangle(
                (ex[j], ey[i]),
                ex[j + 1] - ex[j],
                ey[i + 1] - ey[i],
                facecolor="none",
                edgecolor="0.9",
                hatch="///",
                lw=0,
            )
        )
    if len(xs) > 1 and len(ys) > 1 and np.nanmin(z) < target < np.nanmax(z):
        ax.contour(xs, ys, z, levels=[target], colors="white", linewidths=2)
    cb = ax.figure.colorbar(m, ax=ax)
    how = reduce if isinstance(reduce, str) else f"{reduce * 100:g} % quantile"
    cb.set_label(f"{label(ds, metric)}, {how} over seeds")
    cb.ax.axhline(target, color="white", lw=2)
    rel = "≥" if above else "≤"
    handles = [
        mpatches.Patch(facecolor="0.5", edgecolor="0.9", hatch="///", label="misses target"),
        mpatches.Patch(facecolor="none", edgecolor="0.3", lw=2, label=f"target {rel} {target:.3g}"),
    ]
    # above the axes, so that it covers no cell of the map (the title moves up)
    ax.legend(
        handles=handles,
        fontsize="small",
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=2,
        frameon=False,
        borderaxespad=0.2,
    )
    if title:
        ax.set_title(title, pad=24)
    ax.set_xlabel(label(ds, x))
    ax.set_ylabel(label(ds, y))
    return ax


def meets(ds, metric: str, *, target: float, above: bool = True, reduce: str | float = "mean"):
    """Boolean ``xarray.DataArray``: where ``metric`` reduced over seeds (``reduce`` as in
    :func:`heatmap`) is ``>= target`` (``above``) or ``<= target``."""
    z = _reduce(ds[metric], reduce)
    return z >= target if above else z <= target
