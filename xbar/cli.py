"""The ``xbar`` command: a demo study, sweeps from TOML, the device catalogue, versions.

* ``xbar demo [--out DIR]``: a short co-design study end to end (RRAM and PCM cells, IR
  drop, a Monte-Carlo sweep of a PCM array over drift time and programming noise with its
  design map). Prints a table in which every number stands beside a reference value for
  the same quantity and its source, and writes publication-style PNG figures to ``DIR``.
* ``xbar sweep CONFIG.toml [--out STORE] [--scheduler ADDRESS | --workers N]``: the sweep
  described in the file (device, array, grid, seeds, store; see ``examples/``), resumable.
* ``xbar devices``: the device models (parameters with units) and presets.
* ``xbar info``: versions, the JAX backend and its devices.

This module is the one place allowed to reach every layer (DESIGN.md). More parts of the
demo are added by appending a function ``part(out: Path) -> list[Row]`` to
:data:`DEMO_PARTS` (e.g. a hardware-aware training study from ``xbar.learning``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .host import tune_allocator


class Row(NamedTuple):
    """One line of the demo table: a quantity, xbar's value, the reference and its source."""

    quantity: str
    value: str
    reference: str
    source: str


class ConfigError(ValueError):
    """A bad ``xbar sweep`` configuration (the message names the key)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xbar")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------------------
# figures
def _figure(ncols: int = 1, width: float = 4.8, height: float = 3.6):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained")
    return fig, ax


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=150)
    plt.close(fig)


def _log_ticks(ax, axis: str = "x") -> None:
    """Major ticks at the decades only, no minor labels (no overlapping log labels)."""
    import matplotlib.ticker as mticker

    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(mticker.LogLocator(base=10, numticks=12))
    a.set_minor_locator(mticker.LogLocator(base=10, subs=range(2, 10), numticks=12))
    a.set_minor_formatter(mticker.NullFormatter())


# ---------------------------------------------------------------------------------------
# demo parts
def _rram(out: Path) -> list[Row]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from xbar import devices
    from xbar.devices import plot

    src = "Jiang et al., IEEE TED 63, 1884 (2016)"
    rows = []
    rram = devices.StanfordPKU()
    s = rram.init_state((2,), gap=jnp.array([rram.gap_min, rram.gap_max]))
    r = np.asarray(rram.resistance(s, 0.1))
    memtorch = "MemTorch Stanford-PKU r_on / r_off (Lammie et al., Neurocomputing 2022)"
    rows.append(Row("RRAM read R at 0.1 V, gap 0.2 nm", f"{r[0]:.1f} Ω", "541.8 Ω", memtorch))
    rows.append(
        Row("RRAM read R at 0.1 V, gap 1.7 nm", f"{r[1] / 1e3:.1f} kΩ", "218.6 kΩ", memtorch)
    )

    # DC I-V loop of a 1T1R cell, 4 ms per ramp as in the model's DC benchmark deck
    cell = devices.StanfordPKU(i_compliance=1e-3)
    n = 400
    up = np.linspace(0, 1.8, n)
    dt = 4e-3 / n
    sweep = jax.jit(cell.sweep)
    s_hrs = cell.init_state((), gap=cell.gap_max)
    v_pos = np.concatenate([up, up[::-1]])
    v_neg = -v_pos
    s_lrs, i_pos = sweep(s_hrs, v_pos, dt)
    _, i_neg = sweep(s_lrs, v_neg, dt)
    # switching voltage: first bias at which the current departs by 2x from the I-V of the
    # state the branch started in (the gap has moved)
    jump = np.abs(np.asarray(i_pos)) > 2 * np.abs(np.asarray(cell.current(s_hrs, v_pos)))
    drop = np.abs(np.asarray(i_neg)) < 0.5 * np.abs(np.asarray(cell.current(s_lrs, v_neg)))
    v_set, v_reset = v_pos[np.argmax(jump)], v_neg[np.argmax(drop)]
    gate = f"field gate F_min t_ox / (γ - β g³) at g = 1.7 nm ({src})"
    rows.append(Row("RRAM 1T1R DC SET voltage (4 ms ramp)", f"{v_set:.2f} V", "1.39 V", gate))
    rows.append(
        Row(
            "RRAM 1T1R DC RESET voltage (4 ms ramp)",
            f"{v_reset:.2f} V",
            "≈ -1.10 V",
            f"gap crossing 1 nm on the Stanford DC deck ({src})",
        )
    )
    fig, ax = _figure()
    plot.iv_loop(
        np.concatenate([v_pos, v_neg]),
        np.concatenate([np.asarray(i_pos), np.asarray(i_neg)]),
        ax=ax,
        labels=["1T1R, I_cc = 1 mA"],
    )
    ax.set_title("Stanford-PKU RRAM: DC I-V loop")
    _save(fig, out / "rram_iv_loop.png")

    # pulse train: gradual RESET, then SET under the compliance
    amps = np.concatenate([np.full(40, -1.2), np.full(40, 1.6)])
    _, g = jax.jit(cell.pulse_train)(s_lrs, amps, 20e-9)
    fig, ax = _figure()
    k = np.arange(1, amps.size + 1)
    ax.semilogy(k[:40], np.asarray(g)[:40] * 1e6, ".-", label="RESET, -1.2 V, 20 ns")
    ax.semilogy(k[40:], np.asarray(g)[40:] * 1e6, ".-", label="SET, +1.6 V, 20 ns")
    ax.set(xlabel="pulse number", ylabel="conductance at 0.1 V [µS]")
    ax.set_title("Stanford-PKU RRAM: pulse response")
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    _save(fig, out / "rram_pulse_train.png")

    # device-to-device spread of LRS and HRS after one SET and one RESET pulse
    k1, k2 = jax.random.split(jax.random.key(0))
    shape = (20_000,)
    spread = cell.sample(k1, shape, {"g0": 0.05, "i0": 0.2})
    s = spread.init_state(shape, gap=spread.gap_max)
    s_on = spread.apply_pulse(s, 1.6, 100e-9, k2)
    s_off = spread.apply_pulse(s_on, -1.5, 100e-9, k2)
    r_on = 1.0 / np.asarray(spread.conductance(s_on))
    r_off = 1.0 / np.asarray(spread.conductance(s_off))
    axes = plot.variability_spread([r_on, r_off], labels=["LRS", "HRS"], quantity="read R [Ω]")
    fig = axes[0].figure
    fig.suptitle("Stanford-PKU: 2·10⁴ devices, σ(ln g0) = 5 %, σ(ln I0) = 20 %")
    fig.set_layout_engine("constrained")
    _save(fig, out / "rram_variability.png")
    return rows


def _pcm(out: Path) -> list[Row]:
    import jax
    import jax.numpy as jnp
    import matplotlib.pyplot as plt
    import numpy as np

    from xbar import devices

    rows = []
    pcm = devices.PCM()
    crystalline = pcm.init_state((), u_a=0.0)
    amorphous = pcm.apply_pulse(crystalline, 2.5, 40e-9)
    r_set, r_reset = float(pcm.resistance(crystalline)), float(pcm.resistance(amorphous))
    rows.append(
        Row(
            "PCM R_SET / R_RESET at 0.1 V",
            f"{r_set / 1e3:.2f} kΩ / {r_reset / 1e6:.2f} MΩ",
            "1 kΩ / 1 MΩ",
            "90 nm PCRAM cell of NVSim (Lee et al., ISCA 2009)",
        )
    )
    amps = np.full(30, 1.2)
    _, g = jax.jit(lambda s: pcm.pulse_train(s, amps, 50e-9))(amorphous)
    fig, ax = _figure()
    # the conductance spans decades: a log axis shows every pulse, not only the last ten
    ax.semilogy(np.arange(1, 31), np.asarray(g) * 1e6, "o-", ms=3, label="1.2 V, 50 ns pulses")
    ax.set(xlabel="partial-SET pulse number", ylabel="read conductance at 0.1 V [µS]")
    ax.set_title("PCM: partial-SET pulse train from RESET")
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    _save(fig, out / "pcm_set_train.png")

    stat = devices.PCMStatistical()
    g_target = jnp.array([0.1, 0.25, 0.5, 1.0]) * stat.g_max
    state = stat.program(jax.random.key(3), jnp.tile(g_target, (2000, 1)))
    t = np.logspace(np.log10(stat.t0_s), 7, 13)
    g_t = np.stack([np.asarray(stat.conductance(stat.drift(state, ti))) for ti in t])
    mean = g_t.mean(axis=1)  # (time, target)
    # the model's law is G = G_prog ((t + t0) / t0)^-ν: fit the slope in that variable
    nu = -np.polyfit(np.log((t + stat.t0_s) / stat.t0_s), np.log(mean.mean(axis=1)), 1)[0]
    rows.append(
        Row(
            "PCM array-mean drift exponent ν (20 s - 10⁷ s)",
            f"{nu:.3f}",
            "0.049 - 0.1 (depends on G)",
            "Joshi et al., Nat. Commun. 11, 2473 (2020)",
        )
    )
    sig = np.asarray(state.g_prog).std(axis=0)
    gt = np.asarray(g_target) / stat.g_max
    # Eq. (3.1) of Joshi 2020 with its published coefficients [µS], evaluated here
    eq31 = 0.26348 + 1.9650 * gt - 1.1731 * gt**2
    rows.append(
        Row(
            "PCM programming error σ at G_T = 12.5 µS (2000 devices)",
            f"{sig[2] * 1e6:.3f} µS",
            f"{eq31[2]:.3f} µS",
            "Joshi et al. 2020, Eq. (3.1)",
        )
    )
    fig, ax = _figure()
    for j, gj in enumerate(np.asarray(g_target)):
        ax.loglog(t, mean[:, j] * 1e6, "o-", ms=3, label=f"G_T = {gj * 1e6:.1f} µS")
    _log_ticks(ax, "x")
    import matplotlib.ticker as mticker

    # under two decades of conductance: plain numbers at chosen ticks, no minor labels
    ax.yaxis.set_major_locator(mticker.FixedLocator([1, 2, 5, 10, 20, 50]))
    ax.yaxis.set_major_formatter(mticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set(xlabel="time since programming [s]", ylabel="mean conductance [µS]")
    ax.set_title("PCM drift, 2000 devices per level")
    ax.legend(
        fontsize="small", title="target", title_fontsize="small",
        loc="center left", bbox_to_anchor=(1.01, 0.5),
    )  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    _save(fig, out / "pcm_drift.png")
    plt.close("all")
    return rows


def _array(out: Path) -> list[Row]:
    import jax
    import numpy as np

    import xbar

    rows = []
    # one word line of N uniform cells, driven at one end: Kirchhoff's law gives the
    # discrete ladder V_k = V_in cosh((N + 1/2 - k) θ) / cosh((N + 1/2) θ), k = 1..N,
    # cosh θ = 1 + r G / 2 (docs/crossbar.md), so the far cell sees cosh(θ/2)/cosh((N+1/2)θ)
    n, r, g, v = 256, 1.0, 50e-6, 0.2
    sol = xbar.solve(np.full((1, n), g), np.array([v]), r_wl=r, r_bl=0.0)
    far = float(sol.v_wl[0, -1] - sol.v_bl[0, -1]) / v
    th = np.arccosh(1 + r * g / 2)
    exact = np.cosh(th / 2) / np.cosh((n + 0.5) * th)
    rows.append(
        Row(
            "IR drop: far-cell voltage of a 256-cell line (1 Ω, 50 µS)",
            f"{far * 100:.3f} % of V_in",
            f"{exact * 100:.3f} %",
            "closed-form resistive ladder (Kirchhoff; docs/crossbar.md)",
        )
    )

    sizes = np.array([16, 32, 64, 128, 256])
    errs, key = [], jax.random.key(7)
    for m in sizes:
        kg, kv, key = jax.random.split(key, 3)
        G = jax.random.uniform(kg, (m, m), minval=1e-6, maxval=25e-6)
        x = jax.random.uniform(kv, (m,), minval=0.0, maxval=0.2)
        s = xbar.solve(G, x, r_wl=1.0, r_bl=1.0)
        ideal = x @ G
        errs.append(float(np.max(np.abs(np.asarray(s.i_out - ideal))) / np.max(np.abs(ideal))))
    fig, axs = _figure(2, width=4.6)
    axs[0].loglog(sizes, np.array(errs) * 100, "o-", label="xbar.solve (random G)")
    ref = errs[0] * (sizes / sizes[0]) ** 2 * 100
    axs[0].loglog(sizes, ref, "k--", lw=1, label="∝ N² (first order)")
    axs[0].set_xticks(sizes, [str(s) for s in sizes])
    axs[0].minorticks_off()
    axs[0].set(xlabel="array size N (N x N)", ylabel="max. output error [%]")
    axs[0].set_title("MVM error from IR drop, 1 Ω segments")
    axs[0].legend(fontsize="small")
    axs[0].grid(True, which="major", alpha=0.3)
    # all rows driven at 0.2 V: the map shows the drop along word and bit lines
    s = xbar.solve(G, np.full((sizes[-1],), 0.2), r_wl=1.0, r_bl=1.0)
    im = axs[1].imshow(np.asarray(s.v_wl - s.v_bl), cmap="viridis", origin="upper")
    axs[1].set(xlabel="column j (bit line)", ylabel="row i (word line)")
    axs[1].set_title(f"cell voltage, {sizes[-1]}x{sizes[-1]}, all inputs 0.2 V")
    cb = fig.colorbar(im, ax=axs[1])
    cb.set_label("cell voltage [V]")
    _save(fig, out / "array_ir_drop.png")
    return rows


def _pcm_sweep(out: Path, fast: bool) -> list[Row]:
    import numpy as np

    from xbar import sweep_plot
    from xbar.sweep import sweep

    from ._cli_study import pcm_inference_error

    t_s = np.logspace(np.log10(20.0), 7, 4 if fast else 7)
    scale = np.array([0.5, 1.0, 2.0]) if fast else np.array([0.25, 0.5, 1.0, 1.5, 2.0])
    n_seeds = 8 if fast else 32
    ds = sweep(
        pcm_inference_error,
        {"t_s": t_s, "prog_noise_scale": scale},
        n_seeds,
        key=0,
        chunk_size=n_seeds * len(scale),
        units={"t_s": "s", "prog_noise_scale": "1", "error": "1"},
        progress=False,
    )
    ds["t_s"].attrs["long_name"] = "time since programming"
    ds["prog_noise_scale"].attrs["long_name"] = "programming-noise scale"
    ds["error"].attrs["long_name"] = "relative MVM error"
    fig, axs = _figure(2, width=4.8)
    sweep_plot.metric_vs(ds, "error", "t_s", hue="prog_noise_scale", ax=axs[0])
    axs[0].get_legend().set_loc("upper left")  # the curves rise to the right
    axs[0].set_title(f"64x64 PCM array, {n_seeds} instances")
    sweep_plot.design_map(
        ds,
        "error",
        "t_s",
        "prog_noise_scale",
        target=0.1,
        above=False,
        reduce=0.9,
        ax=axs[1],
        title="design map: 90 % of instances ≤ 10 % error",
    )
    _save(fig, out / "pcm_design_map.png")
    # the same quantity by variance propagation: with independent per-cell errors the
    # error of y_j = x @ (G+ - G-)/g_max has variance sum_i x_i^2 (σ+^2 + σ-^2) / g_max^2
    # (programming noise, Eq. 3.1, plus one read's noise, Eq. 3.3)
    from xbar import devices

    from ._cli_study import N_PCM, _problem

    dev = devices.PCMStatistical()
    w, x = (np.asarray(a, dtype=float) for a in _problem(N_PCM, N_PCM, 32))
    var = 0.0
    for g_t in (np.clip(w, 0, None) * dev.g_max, np.clip(-w, 0, None) * dev.g_max):
        _, var_read = dev.read_noise_moments(dev.program(None, g_t))
        var = var + np.asarray(dev.prog_sigma(g_t)) ** 2 + np.asarray(var_read)
    ref = x @ w
    pred = np.sqrt(np.mean((x**2) @ var) / np.mean(ref**2)) / dev.g_max
    import jax

    keys = jax.random.split(jax.random.key(1), 32)
    p0 = {"t_s": np.zeros(32), "prog_noise_scale": np.ones(32)}
    mc = float(jax.vmap(pcm_inference_error)(p0, keys)["error"].mean())
    return [
        Row(
            "PCM 64x64 MVM error right after programming (32 arrays)",
            f"{mc * 100:.2f} %",
            f"{pred * 100:.2f} %",
            "variance propagation of Joshi 2020 Eqs. (3.1), (3.3) through x @ W",
        )
    ]


def _training(out: Path, fast: bool) -> list[Row]:
    """A small hardware-aware training and lifetime study (xbar.learning.evaluate)."""
    from xbar.learning import evaluate

    rows = evaluate.demo_study(out, epochs=4 if fast else 8, n_instances=2)
    acc = {(r["training"], r["t_s"], r["drift_compensation"]): r for r in rows}
    t0 = min(r["t_s"] for r in rows)
    table = []
    for name in ("plain", "hardware-aware"):
        ref = acc[(name, t0, True)]
        for t_s, label in ((86400.0, "1 day"), (365 * 86400.0, "1 year")):
            for dc in (True, False):
                r = acc.get((name, t_s, dc))
                if r is None:
                    continue
                table.append(
                    Row(
                        f"SNN digits on PCM, {name} training, {label}, "
                        f"{'with' if dc else 'without'} drift comp.",
                        f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f} %",
                        f"{100 * ref['mean']:.1f} % at {t0:g} s",
                        "same network and crossbars read right after programming (lifetime.png)",
                    )
                )
    return table


#: Parts of ``xbar demo``, run in order; each ``part(out_dir) -> list[Row]`` writes its
#: figures into ``out_dir``. Append a part here to extend the demo.
DEMO_PARTS: list[Callable[[Path], list[Row]]] = [
    _rram,
    _pcm,
    _array,
    lambda out: _pcm_sweep(out, os.environ.get("XBAR_FAST") == "1"),
    lambda out: _training(out, os.environ.get("XBAR_FAST") == "1"),
]


def demo(out_dir: str | os.PathLike = "xbar-demo") -> list[Row]:
    """Run the demo study, write its figures to ``out_dir``; return the table rows."""
    import matplotlib

    matplotlib.use("Agg")
    out = _out_dir(out_dir)
    rows: list[Row] = []
    for part in DEMO_PARTS:
        rows += part(out)
    return rows


def _out_dir(path) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".xbar-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--out {str(out)!r} is not a writable folder ({err.strerror})") from None
    return out


def _table(rows: list[Row]) -> str:
    head = Row("quantity", "xbar", "reference", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    lines = ["  ".join(f"{c:<{w}}" for c, w in zip(head[:3], widths, strict=True)) + "  source"]
    lines.append("-" * (sum(widths) + 6 + 40))
    for r in rows:
        cells = "  ".join(f"{c:<{w}}" for c, w in zip(r[:3], widths, strict=True))
        lines.append(f"{cells}  {r.source}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# xbar sweep CONFIG.toml
_SCHEMA = {
    "device": {"model": str, "preset": str, "params": dict},
    "array": {"rows": int, "cols": int, "inputs": int},
    "grid": None,  # checked by name below
    "sweep": {"n_seeds": int, "chunk_size": int, "seed": int, "store": str},
}
_GRID_NAMES = ("t_s", "adc_bits")


def device_classes() -> dict:
    """``{name: class}`` of the concrete device models in ``xbar.devices``."""
    from xbar import devices

    return {
        n: c
        for n, c in vars(devices).items()
        if inspect.isclass(c)
        and issubclass(c, devices.Device)
        and c is not devices.Device
        and not inspect.isabstract(c)
    }


def presets() -> dict:
    """``{name: factory}`` of ``xbar.presets`` (empty where that module is absent)."""
    try:
        from xbar import presets as p
    except ImportError:
        return {}
    names = getattr(p, "__all__", [])
    return {
        n: getattr(p, n) for n in names if inspect.isfunction(getattr(p, n)) and n != "all_presets"
    }


def _type_name(t) -> str:
    return {int: "an integer", str: "a string", dict: "a table", float: "a number"}[t]


def load_config(path) -> dict:
    """Read and check an ``xbar sweep`` TOML file; raise :class:`ConfigError` naming the
    key (unknown key, wrong type, unknown device) with the valid values."""
    import tomllib

    path = Path(path)
    try:
        cfg = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read config {str(path)!r}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    for section, value in cfg.items():
        if section not in _SCHEMA:
            raise ConfigError(f"unknown key {section!r}; valid: {', '.join(_SCHEMA)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{section} must be a table ([{section}]), got {value!r}")
        keys = _SCHEMA[section]
        if keys is None:
            continue
        for k, v in value.items():
            if k not in keys:
                raise ConfigError(f"unknown key {section}.{k}; valid: {', '.join(keys)}")
            want = keys[k]
            if not isinstance(v, want) or (want is int and isinstance(v, bool)):
                raise ConfigError(
                    f"{section}.{k} must be {_type_name(want)}, got {v!r} ({type(v).__name__})"
                )
    for section in ("device", "grid", "sweep"):
        if section not in cfg:
            raise ConfigError(f"missing table [{section}]")
    dev = cfg["device"]
    if ("model" in dev) == ("preset" in dev):
        raise ConfigError("device: give exactly one of device.model and device.preset")
    if "model" in dev and dev["model"] not in device_classes():
        raise ConfigError(
            f"device.model: unknown device {dev['model']!r}; valid: "
            f"{', '.join(sorted(device_classes()))}"
        )
    if "preset" in dev and dev["preset"] not in presets():
        raise ConfigError(
            f"device.preset: unknown preset {dev['preset']!r}; valid: "
            f"{', '.join(sorted(presets())) or '(none installed)'}"
        )
    if "params" in dev and "model" in dev:
        fields = {f.name for f in dataclasses.fields(device_classes()[dev["model"]])}
        for k in dev["params"]:
            if k not in fields:
                raise ConfigError(
                    f"unknown key device.params.{k}; valid: {', '.join(sorted(fields))}"
                )
    grid = _flat_grid(cfg["grid"])
    if not grid:
        raise ConfigError("grid: give at least one parameter (e.g. t_s = [1.0, 86400.0])")
    for k, v in grid.items():
        if not (k in _GRID_NAMES or k.startswith("variability.")):
            raise ConfigError(
                f"unknown key grid.{k}; valid: {', '.join(_GRID_NAMES)}, variability.<field>"
            )
        if (
            not isinstance(v, list)
            or not v
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        ):
            raise ConfigError(f"grid.{k} must be a non-empty list of numbers, got {v!r}")
    if "n_seeds" not in cfg["sweep"]:
        raise ConfigError("missing key sweep.n_seeds")
    if cfg["sweep"]["n_seeds"] < 1:
        raise ConfigError(f"sweep.n_seeds must be >= 1, got {cfg['sweep']['n_seeds']}")
    return cfg


def _flat_grid(grid: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in grid.items():
        if isinstance(v, dict):
            out.update(_flat_grid(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_sweep(cfg: dict, out=None, client=None, progress: bool = True):
    """Run the sweep of a checked config (:func:`load_config`); return the dataset."""
    import xbar
    from xbar.sweep import sweep

    from ._cli_study import CrossbarReadStudy

    dev_cfg, arr = cfg["device"], cfg.get("array", {})
    if "preset" in dev_cfg:
        preset = presets()[dev_cfg["preset"]]()
        device, scheme = preset.device, preset.write_verify
    else:
        preset = None
        device = device_classes()[dev_cfg["model"]](**dev_cfg.get("params", {}))
        scheme = xbar.WriteVerify()
    study = CrossbarReadStudy(
        device=device,
        scheme=scheme,
        preset=preset,
        rows=arr.get("rows", 32),
        cols=arr.get("cols", 16),
        n_inputs=arr.get("inputs", 32),
    )
    grid = _flat_grid(cfg["grid"])
    s = cfg["sweep"]
    store = out if out is not None else s.get("store")
    static = [k for k in grid if k != "t_s"]
    return sweep(
        study,
        grid,
        s["n_seeds"],
        store=store,
        client=client,
        chunk_size=s.get("chunk_size", 16),
        key=s.get("seed", 0),
        static=static,
        units={"t_s": "s", "error": "1"},
        config=cfg,
        meta={"device": repr(device), "preset": dev_cfg.get("preset", "")},
        progress=progress,
    )


# ---------------------------------------------------------------------------------------
# xbar devices / xbar info
def _field_docs(cls) -> dict[str, str]:
    """``{field: description}`` from the class docstring's ``Fields:`` list and from the
    inline comments of the field definitions."""
    docs: dict[str, str] = {}
    text = inspect.getdoc(cls) or ""
    for line in text.splitlines():
        m = re.match(r"\s{2,}([a-z_][\w, ]*):\s+(.*)", line)
        if m:
            for name in m.group(1).split(","):
                docs.setdefault(name.strip(), m.group(2).strip())
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return docs
    for m in re.finditer(r"^\s+(\w+):[^=\n]*=[^#\n]*#\s*(.+)$", src, re.M):
        docs.setdefault(m.group(1), m.group(2).strip())
    return docs


def _source_line(cls) -> str:
    """The first citation (a line with a year and a journal-like mark) of the class or its
    module docstring."""
    import sys as _sys

    texts = [inspect.getdoc(cls) or "", inspect.getdoc(_sys.modules[cls.__module__]) or ""]
    for text in texts:
        for para in re.split(r"\n\s*\n", text):
            flat = " ".join(para.split())
            m = re.search(r"[^.;:]*(et al\.|Source:)[^;]*?(19|20)\d\d\)?", flat)
            if m:
                found = m.group(0).strip().removeprefix("Source:").strip()
                return re.sub(r"^[^A-Za-z]+", "", found)
    return ""


def describe_devices() -> str:
    """The text of ``xbar devices``."""
    lines = []
    for name, cls in sorted(device_classes().items()):
        doc = (inspect.getdoc(cls) or "").splitlines()
        lines.append(f"{name}: {doc[0] if doc else ''}")
        source = _source_line(cls)
        if source:
            lines.append(f"    source: {source}")
        fdocs = _field_docs(cls)
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else "(required)"
            if f.default_factory is not dataclasses.MISSING:
                default = type(f.default_factory()).__name__ + "()"
            note = fdocs.get(f.name, "")
            lines.append(f"    {f.name:<20} = {str(default):<14} {note}".rstrip())
        lines.append("")
    found = presets()
    if found:
        lines.append("Presets (xbar.presets): device + array + write-verify recipe")
        for name, fn in sorted(found.items()):
            doc = (inspect.getdoc(fn) or "").splitlines()
            lines.append(f"    {name:<22} {doc[0] if doc else ''}")
    return "\n".join(lines)


def describe_info() -> str:
    """The text of ``xbar info``."""
    from importlib.metadata import PackageNotFoundError, version

    import jax

    lines = [f"xbar {_version()}", f"python {sys.version.split()[0]}"]
    for pkg in ("jax", "jaxlib", "equinox", "optax", "numpy", "xarray", "zarr", "dask",
                "distributed", "nir"):  # fmt: skip
        try:
            lines.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            lines.append(f"{pkg} (not installed)")
    lines.append(f"JAX backend: {jax.default_backend()}")
    lines.append(f"JAX float64: {'on' if jax.config.jax_enable_x64 else 'off'}")
    for d in jax.devices():
        lines.append(f"device {d.id}: {d.platform} {getattr(d, 'device_kind', '')}".rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xbar",
        description="xbar: physics-based simulator of memristive devices and crossbar arrays.",
    )
    p.add_argument("--version", action="version", version=f"xbar {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("demo", help="run the demo co-design study (table + PNG figures)")
    d.add_argument(
        "--out", default="xbar-demo", help="folder for the figures (default %(default)s)"
    )
    d.add_argument("--fast", action="store_true", help="smaller Monte-Carlo sweep")
    s = sub.add_parser("sweep", help="run the sweep described in a TOML file (see examples/)")
    s.add_argument("config", help="the sweep's TOML file")
    s.add_argument("--out", help="Zarr store to write (default: sweep.store of the config)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    g.add_argument("--workers", type=int, help="start a local Dask cluster of N worker processes")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("devices", help="list device models (parameters, units, sources) and presets")
    sub.add_parser("info", help="versions, JAX backend and devices")
    return p


def _sweep_command(args) -> int:
    cfg = load_config(args.config)
    out = args.out if args.out is not None else cfg["sweep"].get("store")
    if out is None:
        raise ConfigError("no output store: give --out STORE or sweep.store in the config")
    parent = Path(out).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"--out {out!r}: folder {str(parent)!r} does not exist or is read-only")
    client = cluster = None
    if args.scheduler or args.workers:
        from distributed import Client, LocalCluster

        if args.workers:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
            client = Client(cluster)
        else:
            client = Client(args.scheduler)
    t0 = time.perf_counter()
    try:
        ds = run_sweep(cfg, out=out, client=client, progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    err = ds["error"].load()
    print(ds)
    print(
        f"\nerror: median {float(err.median()):.3g}, max {float(err.max()):.3g}; "
        f"{ds.attrs['sweep_chunks_computed']} of {ds.attrs['sweep_chunks_total']} chunks "
        f"computed in {time.perf_counter() - t0:.1f} s; store {str(Path(out).resolve())}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xbar`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    # a command-line run is an application: keep freed host memory between compiled calls
    # (xbar.host; fewer page faults in the training part of the demo and in sweeps)
    tune_allocator()
    try:
        if args.command == "demo":
            if args.fast:
                os.environ["XBAR_FAST"] = "1"
            t0 = time.perf_counter()
            rows = demo(args.out)
            print(_table(rows))
            print(
                f"\nfigures written to {Path(args.out).resolve()} in {time.perf_counter() - t0:.1f} s"
            )
        elif args.command == "sweep":
            return _sweep_command(args)
        elif args.command == "devices":
            print(describe_devices())
        elif args.command == "info":
            print(describe_info())
    except ValueError as err:  # ConfigError, or a sweep store that holds another sweep
        print(f"xbar {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
