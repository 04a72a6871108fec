"""Command-line application: ``xbar demo`` runs a short device and array study.

The demo prints a table of what it computed (each number beside the reference it is
checked against) and writes its figures as PNG files to ``--out`` (default
``./xbar-demo``). It is sized to finish in well under two minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _save(ax, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = ax.figure
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _rows_rram(out: Path):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from xbar import devices
    from xbar.devices import plot

    rows = []
    rram = devices.StanfordPKU()
    s = rram.init_state((2,), gap=jnp.array([rram.gap_min, rram.gap_max]))
    r = np.asarray(rram.resistance(s, 0.1))
    rows.append(("RRAM R_LRS at 0.1 V (gap 0.2 nm)", f"{r[0]:.1f} Ω", "541.8 Ω (V1)"))
    rows.append(("RRAM R_HRS at 0.1 V (gap 1.7 nm)", f"{r[1] / 1e3:.1f} kΩ", "218.6 kΩ (V1)"))

    # DC I-V loop of a 1T1R cell: 0 -> +1.8 -> 0 V (SET), then 0 -> -1.8 -> 0 V (RESET),
    # 4 ms per ramp as in the model's benchmark deck, with a 1 mA SET compliance
    cell = devices.StanfordPKU(i_compliance=1e-3)
    n = 400
    up = np.linspace(0, 1.8, n)
    dn = -up
    dt = 4e-3 / n
    sweep = jax.jit(cell.sweep)
    s_hrs = cell.init_state((), gap=cell.gap_max)
    v_pos = np.concatenate([up, up[::-1]])
    v_neg = np.concatenate([dn, dn[::-1]])
    s_lrs, i_pos = sweep(s_hrs, v_pos, dt)
    _, i_neg = sweep(s_lrs, v_neg, dt)
    # switching voltage = first bias at which the current departs by 2x from the I-V of
    # the state the branch started in (the gap has moved)
    jump_set = np.abs(np.asarray(i_pos)) > 2 * np.abs(np.asarray(cell.current(s_hrs, v_pos)))
    drop_reset = np.abs(np.asarray(i_neg)) < 0.5 * np.abs(np.asarray(cell.current(s_lrs, v_neg)))
    v_set = v_pos[np.argmax(jump_set)]
    v_reset = v_neg[np.argmax(drop_reset)]
    r_lrs = float(cell.resistance(s_lrs))
    rows.append(
        (
            "RRAM 1T1R DC SET voltage (4 ms ramp)",
            f"{v_set:.2f} V",
            "1.39 V field gate at 1.7 nm (V2/V3)",
        )
    )
    rows.append(
        (
            "RRAM 1T1R LRS at 0.1 V after SET, I_cc = 1 mA",
            f"{r_lrs / 1e3:.1f} kΩ",
            "HfOx 1T1R LRS 5-20 kΩ",
        )
    )
    rows.append(("RRAM 1T1R DC RESET voltage", f"{v_reset:.2f} V", "≈ -1.1 V (V3)"))
    v_t = np.concatenate([v_pos, v_neg])
    i_t = np.concatenate([np.asarray(i_pos), np.asarray(i_neg)])
    ax = plot.iv_loop(v_t, i_t)
    _save(ax, "Stanford-PKU 1T1R I-V loop (I_cc = 1 mA)", out / "rram_iv_loop.png")

    # pulse train: gradual RESET then SET with compliance
    amps = np.concatenate([np.full(40, -1.2), np.full(40, 1.6)])
    _, g = jax.jit(cell.pulse_train)(s_lrs, amps, 20e-9)
    g = np.asarray(g)
    rows.append(
        (
            "RRAM G after 40 RESET / 40 SET pulses",
            f"{g[39] * 1e6:.1f} µS / {g[-1] * 1e6:.0f} µS",
            "gradual depression, abrupt SET",
        )
    )
    ax = plot.pulse_response(g, unit="uS")
    _save(
        ax,
        "Stanford-PKU: 40 RESET (-1.2 V) then 40 SET (+1.6 V) pulses",
        out / "rram_pulse_train.png",
    )

    # device-to-device spread of LRS and HRS after one SET and one RESET pulse
    k1, k2 = jax.random.split(jax.random.key(0))
    shape = (20_000,)
    spread = cell.sample(k1, shape, {"g0": 0.05, "i0": 0.2})
    s = spread.init_state(shape, gap=spread.gap_max)
    s_on = spread.apply_pulse(s, 1.6, 100e-9, k2)
    s_off = spread.apply_pulse(s_on, -1.5, 100e-9, k2)
    g_lrs = np.asarray(spread.conductance(s_on))
    g_hrs = np.asarray(spread.conductance(s_off))
    ratio = np.median(g_lrs / g_hrs)
    rows.append(
        ("RRAM median on/off ratio, 2e4 devices", f"{ratio:.1f}", "σ(ln g0)=5 %, σ(ln I0)=20 %")
    )
    axes = plot.variability_spread(
        [1.0 / g_lrs, 1.0 / g_hrs], labels=["LRS", "HRS"], quantity="read resistance [Ω]"
    )
    _save(axes[0], "Stanford-PKU device-to-device spread", out / "rram_variability.png")
    return rows


def _rows_pcm(out: Path):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from xbar import devices
    from xbar.devices import plot

    rows = []
    pcm = devices.PCM()
    crystalline = pcm.init_state((), u_a=0.0)
    amorphous = pcm.apply_pulse(crystalline, 2.5, 40e-9)
    r_set = float(pcm.resistance(crystalline))
    r_reset = float(pcm.resistance(amorphous))
    rows.append(
        (
            "PCM R_SET / R_RESET at 0.1 V (incl. access)",
            f"{r_set / 1e3:.2f} kΩ / {r_reset / 1e6:.2f} MΩ",
            "≈1 kΩ / 1 MΩ (V10)",
        )
    )
    amps = np.full(30, 1.2)
    _, g = jax.jit(lambda s: pcm.pulse_train(s, amps, 50e-9))(amorphous)
    g = np.asarray(g)
    rows.append(
        (
            "PCM G after 1 / 30 partial-SET pulses",
            f"{g[0] * 1e6:.2f} / {g[-1] * 1e6:.0f} µS",
            "monotonic, saturating",
        )
    )
    ax = plot.pulse_response(g, unit="uS")
    _save(ax, "PCM partial-SET pulse train (1.2 V, 50 ns)", out / "pcm_set_train.png")

    stat = devices.PCMStatistical()
    g_target = jnp.linspace(0.1, 1.0, 10) * stat.g_max
    state = stat.program(jax.random.key(3), jnp.tile(g_target, (2000, 1)))
    t = np.logspace(0, 8, 9)
    g_t = np.stack([np.asarray(stat.conductance(stat.drift(state, ti))) for ti in t])
    factor = g_t[-1].mean() / g_t[0].mean()
    rows.append(("PCMStatistical mean drift G(1e8 s)/G(1 s)", f"{factor:.3f}", "ν ≈ 0.05-0.1 (V7)"))
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for j in range(g_target.shape[0]):
        ax.loglog(t, g_t[:, :, j].mean(axis=1) * 1e6)
    ax.set_xlabel("time since programming [s]")
    ax.set_ylabel("mean G [µS]")
    ax.set_title("PCM drift fan-out (Joshi 2020 statistics)")
    fig.tight_layout()
    fig.savefig(out / "pcm_drift.png", dpi=120)
    plt.close("all")
    return rows


def _rows_array(out: Path):
    import jax
    import jax.numpy as jnp
    import matplotlib.pyplot as plt
    import numpy as np

    import xbar

    rows = []
    sizes = [16, 32, 64, 128]
    errs = []
    key = jax.random.key(7)
    for n in sizes:
        kg, kv, key = jax.random.split(key, 3)
        G = jax.random.uniform(kg, (n, n), minval=1e-6, maxval=1e-4)
        v = jax.random.uniform(kv, (n,), minval=0.0, maxval=0.2)
        sol = xbar.solve(G, v, r_wl=1.0, r_bl=1.0)
        ideal = v @ G
        errs.append(float(jnp.max(jnp.abs(sol.i_out - ideal)) / jnp.max(jnp.abs(ideal))))
    rows.append(
        (
            "Crossbar MVM error from IR drop, 128x128, 1 Ω",
            f"{errs[-1] * 100:.2f} %",
            "grows ~ N^2 (5.6)",
        )
    )
    t0 = time.perf_counter()
    G = jax.random.uniform(jax.random.key(1), (256, 256), minval=1e-6, maxval=1e-4)
    v = jnp.full((256,), 0.2)
    sol = xbar.solve(G, v, r_wl=1.0, r_bl=1.0)
    jax.block_until_ready(sol.i_out)
    rows.append(
        ("Crossbar 256x256 solve incl. compile", f"{time.perf_counter() - t0:.2f} s", "exact nodal")
    )
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.5))
    axs[0].loglog(sizes, np.array(errs) * 100, "o-")
    axs[0].set_xlabel("array size N (N x N)")
    axs[0].set_ylabel("max output error [%]")
    axs[0].set_title("IR-drop error, 1 Ω segments")
    im = axs[1].imshow(np.asarray(sol.v_wl - sol.v_bl), cmap="viridis")
    axs[1].set_title("cell voltage map, 256x256 [V]")
    fig.colorbar(im, ax=axs[1])
    fig.tight_layout()
    fig.savefig(out / "array_ir_drop.png", dpi=120)
    plt.close("all")
    return rows


def demo(out_dir: str = "xbar-demo") -> list[tuple[str, str, str]]:
    """Run the demo study; return the table rows ``(quantity, value, reference)``."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for part in (_rows_rram, _rows_pcm, _rows_array):
        rows += part(out)
    return rows


def _print_table(rows) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'quantity':<{w0}}  {'computed':<{w1}}  reference")
    print("-" * (w0 + w1 + 30))
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xbar", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the demo study (table + PNG figures)")
    p_demo.add_argument("--out", default="xbar-demo", help="folder for the figures")
    args = parser.parse_args(argv)
    if args.command == "demo":
        t0 = time.perf_counter()
        rows = demo(args.out)
        _print_table(rows)
        print(
            f"\nfigures written to {Path(args.out).resolve()} in {time.perf_counter() - t0:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
