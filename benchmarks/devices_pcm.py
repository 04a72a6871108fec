"""Benchmark: PCM device models at scale (float32, default backend).

* physics ``devices.PCM``: one RESET-class pulse on 10^6 cells; throughput in
  device-substeps per second (targets: >= 5e7 /s on the 2-core CPU, >= 1e10 /s on GPU);
* statistical ``devices.PCMStatistical``: program + drift (1 day) + one noisy read of
  10^8 devices, in chunks under ``jax.lax.map`` (10^8 float32 = 400 MB per array).

Times are medians over repeats after a warm-up, with ``jax.block_until_ready``. Prints a
table and appends it to ``benchmarks/RESULTS.md`` under "## PCM devices".
Usage: ``python benchmarks/devices_pcm.py [--n-phys 1000000] [--n-stat 100000000]``;
``XBAR_FAST=1`` shrinks both sizes. The machine may be shared: the 1-minute load
average is recorded before and after the physics timing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform

import jax
import jax.numpy as jnp
from _results import append_to_section, cpu_name, median_time  # this folder (sys.path[0])

from xbar import devices  # noqa: E402


def bench_physics(n, repeats):
    """One 40 ns pulse (0.9-1.6 V, with cycle-to-cycle noise) on ``n`` half-amorphous
    cells. Throughput counts every integrator time step of every cell: ``n *
    model.n_substeps / time`` (rise, plateau, fall and cooling-tail sub-steps alike)."""
    model = devices.PCM()
    state = model.init_state((n,), u_a=0.5 * model.u_max)
    v = jnp.linspace(0.9, 1.6, n, dtype=jnp.float32)
    key = jax.random.key(0)
    step = jax.jit(lambda s, v, k: model.apply_pulse(s, v, 40e-9, k))
    load0 = os.getloadavg()[0]
    t = median_time(lambda: step(state, v, key), repeats)
    load1 = os.getloadavg()[0]
    return t, n * model.n_substeps / t, (load0, load1)


def bench_read_noise(n, repeats):
    """One noisy read of ``n`` cells right after programming (Joshi 2020 1/f law with a
    state-dependent Q_s: one extra read solve of the programmed state per read)."""
    model = devices.PCM()
    u_a = jnp.linspace(0.0, model.u_max, n, dtype=jnp.float32)
    state = model.init_state((n,), u_a=u_a)
    step = jax.jit(lambda s, k: model.read_noise(s, k))
    t = median_time(lambda: step(state, jax.random.key(2)), repeats)
    return t, n / t


def bench_statistical(n, chunk, repeats):
    model = devices.PCMStatistical()
    n_chunks = max(n // chunk, 1)
    n = n_chunks * chunk

    def one_chunk(k):
        k_t, k_p, k_r = jax.random.split(k, 3)
        g_t = jax.random.uniform(k_t, (chunk,), jnp.float32) * model.g_max
        st = model.drift(model.program(k_p, g_t), 86400.0)
        g = model.read(st, k_r)
        return jnp.sum(g)  # reduce so the 10^8 reads need not be stored

    run = jax.jit(lambda key: jax.lax.map(one_chunk, jax.random.split(key, n_chunks)))
    t = median_time(lambda: run(jax.random.key(1)), repeats)
    return t, n / t, n


def main():
    fast = os.environ.get("XBAR_FAST") == "1"
    p = argparse.ArgumentParser()
    p.add_argument("--n-phys", type=int, default=10_000 if fast else 1_000_000)
    p.add_argument("--n-stat", type=int, default=1_000_000 if fast else 100_000_000)
    p.add_argument("--chunk", type=int, default=1_000_000 if fast else 10_000_000)
    p.add_argument("--repeats", type=int, default=5, help="timed runs of the physics model")
    p.add_argument("--repeats-stat", type=int, default=3, help="timed runs of the statistical")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes, no write")
    args = p.parse_args()
    if args.quick:
        args.n_phys, args.n_stat, args.chunk = 10_000, 100_000, 100_000
        args.repeats, args.repeats_stat, args.no_write = 1, 1, True

    load_start = os.getloadavg()[0]
    t_phys, rate_phys, load_phys = bench_physics(args.n_phys, args.repeats)
    t_read, rate_read = bench_read_noise(args.n_phys, args.repeats)
    t_stat, rate_stat, n_stat = bench_statistical(args.n_stat, args.chunk, args.repeats_stat)
    backend = jax.default_backend()
    gpu = backend == "gpu"
    target = 1e10 if gpu else 5e7
    target_phys = "1e10 substeps/s (GPU)" if gpu else "5e7 substeps/s (CPU)"
    rows = [
        (
            "PCM.apply_pulse (physics, 1 pulse)",
            f"{args.n_phys:.0e} cells x {devices.PCM().n_substeps} substeps",
            f"{t_phys:.3f}",
            f"{rate_phys:.3g} device-substeps/s",
            target_phys,
            "yes" if rate_phys >= target else "NO",
            f"{load_phys[0]:.1f} -> {load_phys[1]:.1f}",
        ),
        (
            "PCM.read_noise (physics, Joshi 1/f, t = 0)",
            f"{args.n_phys:.0e} cells",
            f"{t_read:.3f}",
            f"{rate_read:.3g} reads/s",
            "(none set; report)",
            "-",
            f"{os.getloadavg()[0]:.1f}",
        ),
        (
            "PCMStatistical program+drift+read",
            f"{n_stat:.0e} devices (chunks {args.chunk:.0e})",
            f"{t_stat:.3f}",
            f"{rate_stat:.3g} devices/s",
            "(none set; report)",
            "-",
            f"{os.getloadavg()[0]:.1f}",
        ),
    ]
    header = (
        "| workload | size | time [s] (median) | throughput | target | met | load avg |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(f"| {' | '.join(r)} |\n" for r in rows)
    machine = (
        f"{platform.machine()} ({cpu_name()}), {os.cpu_count()} CPU threads, backend {backend}"
    )
    info = (
        f"{datetime.date.today().isoformat()}, jax {jax.__version__}, {machine}, float32, "
        f"load average {load_start:.1f} at start (1-minute; the machine is shared)"
    )
    print(info)
    print(table)
    if gpu:
        print("GPU run.")
    else:
        print("No GPU lent for this run: the GPU target (1e10 /s) is not measured.")
    if not args.no_write:
        note = "" if gpu else "\nNo GPU lent: GPU target (>= 1e10 device-substeps/s) not measured."
        append_to_section(
            "## PCM devices",
            f"{info}\n\n{table}{note}",
            intro="Targets: physics >= 5e7 device-substeps/s (2-core CPU), >= 1e10 /s (GPU).",
        )


if __name__ == "__main__":
    main()
