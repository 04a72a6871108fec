"""Benchmark: device models at scale, in device-substeps per second.

A device-substep is one sub-step of one device's switching dynamics inside
``apply_pulse``; throughput = devices x substeps / time of one pulse on all devices.
Targets: >= 5e7 /s on the 2-core CPU, >= 1e10 /s on a GPU (float32, the default).

Workloads are the list ``WORKLOADS`` of ``(name, model, state, pulse)`` with
``pulse = (v [V], width [s], noisy)``: append a tuple to add a model (e.g. PCM).
Times are medians over repeats after a warm-up (compile), with ``jax.block_until_ready``.
Prints a table and appends it to ``benchmarks/RESULTS.md`` under "## Devices".

The noisy Stanford-PKU path runs ``n_substeps + noise_step_budget * n_noise_steps``
scan steps (drift and noise interleaved over every interval); the "substeps" column
counts the steps executed.

Usage: ``python benchmarks/devices.py [--n 1000000] [--repeats 5] [--no-write] [--quick]``;
``XBAR_FAST=1`` uses 10^4 devices.
"""

from __future__ import annotations

import argparse
import datetime
import os

import jax
import jax.numpy as jnp
from _results import append_to_section, cpu_name, median_time  # this folder (sys.path[0])

from xbar import devices  # noqa: E402

SECTION = "## Devices"
TARGET_CPU, TARGET_GPU = 5e7, 1e10


def workloads(n: int):
    """The benchmark list: (name, model, state, (v, width_s, noisy))."""
    pku = devices.StanfordPKU()
    pku_1t1r = devices.StanfordPKU(r_series=500.0, i_compliance=2e-3)
    lrs = pku.init_state((n,), gap=0.2e-9)
    hrs = pku.init_state((n,), gap=1.7e-9)
    # per-device amplitudes so no device is a copy of another
    v_reset = jnp.linspace(-1.4, -1.2, n)
    v_set = jnp.linspace(2.0, 2.4, n)
    return [
        ("StanfordPKU partial RESET (-1.3 V, 100 ns)", pku, lrs, (v_reset, 100e-9, False)),
        ("StanfordPKU RESET + C2C noise", pku, lrs, (v_reset, 100e-9, True)),
        ("StanfordPKU SET (+1.8 V, 1 us) + C2C noise", pku, hrs, (1.8, 1e-6, True)),
        ("StanfordPKU 1T1R SET (500 Ohm, 2 mA)", pku_1t1r, hrs, (v_set, 1e-6, False)),
    ]


def run(n: int, repeats: int):
    rows = []
    gpu = jax.default_backend() == "gpu"
    target = TARGET_GPU if gpu else TARGET_CPU
    for name, model, state, (v, width, noisy) in workloads(n):
        key = jax.random.key(0) if noisy else None
        step = jax.jit(lambda s, v, k, m=model, w=width: m.apply_pulse(s, v, w, k))
        t = median_time(lambda s=state, v=v, k=key, f=step: f(s, v, k), repeats)
        # scan steps actually executed: the noisy path interleaves the noise intervals
        steps = model.n_substeps + (model.noise_step_budget * model.n_noise_steps if noisy else 0)
        rate = n * steps / t
        rows.append((name, n, steps, t, rate, target))
    return rows, gpu


def main():
    fast = os.environ.get("XBAR_FAST") == "1"
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10_000 if fast else 1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-write", action="store_true")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 10^4 devices, 1 repeat, no write"
    )
    args = p.parse_args()
    if args.quick:
        args.n, args.repeats, args.no_write = 10_000, 1, True

    rows, gpu = run(args.n, args.repeats)
    header = (
        "| workload | devices | substeps | time [s] | throughput [device-substeps/s] | target |\n"
        "|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {name} | {n:.0e} | {ns} | {t:.4f} | {rate:.3g} | "
        f"{'>=' if rate >= tgt else '<'} {tgt:.0e} |\n"
        for name, n, ns, t, rate, tgt in rows
    )
    dev = jax.devices()[0].device_kind if gpu else cpu_name()
    info = (
        f"{datetime.date.today().isoformat()}, jax {jax.__version__}, backend "
        f"{jax.default_backend()} ({dev}), {os.cpu_count()} CPU threads, float32, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(info)
    print(table)
    note = (
        "GPU run."
        if gpu
        else "No GPU lent for this run: the GPU target (>= 1e10 device-substeps/s) is not measured."
    )
    print(note)
    if not args.no_write:
        append_to_section(
            SECTION,
            f"{info}\n\n{table}\n{note}",
            intro="Stanford-PKU RRAM (`benchmarks/devices.py`). Targets: >= 5e7 "
            "device-substeps/s (2-core CPU), >= 1e10 /s (GPU), 10^6 devices, float32.",
        )


if __name__ == "__main__":
    main()
