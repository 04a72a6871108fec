"""Crossbar benchmarks: realistic read overhead over a plain matmul, write-verify time.

Run: ``python benchmarks/crossbar.py [--append] [--full] [--quick]`` (float32, the library
default). ``--append`` replaces the "Crossbar" section of ``RESULTS.md``; ``--full`` also
times the 256x256 Stanford-PKU write-verify with the device's default integrator
(minutes); ``--quick`` is a smoke run at small sizes (its numbers are not the targets').
Targets (issue): realistic read (differential pair, 8-bit ADC, read noise, IR drop through
the cached effective matrix), batch 256, 1024x1024: <= 3x a plain ``x @ W`` on GPU and
<= 5x on CPU; write-verify of a 256x256 array < 10 s on a 2-core CPU.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from _results import cpu_name, replace_section  # this folder (sys.path[0])

import xbar  # noqa: E402
from xbar import devices  # noqa: E402


def _median_time(fn, *args, n=7):
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def bench_read(m=1024, n=1024, b=256):
    key = jax.random.PRNGKey(0)
    w = jax.random.uniform(key, (m, n), minval=-1, maxval=1)
    x = jax.random.uniform(jax.random.PRNGKey(1), (b, m), minval=-1, maxval=1)
    pcm = devices.PCMStatistical()
    mapping = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
    xb = xbar.Crossbar.create(
        pcm,
        (m, n),
        mapping=mapping,
        state=pcm.program(key, mapping.to_conductance(w)),
        adc=xbar.ADC(bits=8, out_bound=40.0),
        dac=xbar.DAC(bits=8),
    )
    # The read cost does not depend on the values of the effective matrix: time the read
    # with a stand-in (the conductances, cached with their read-noise statistics) so the
    # benchmark does not wait for 1024 solves; the effective matrix itself is timed on a
    # 256x256 tile (blocked solves).
    xb = xb.with_cached_matrix(xb.conductances())
    small = xbar.Crossbar.create(
        pcm,
        (256, 256),
        mapping=mapping,
        state=pcm.program(key, mapping.to_conductance(w[:256, :256])),
    )
    eff = eqx.filter_jit(lambda c: c.with_effective_matrix(block_rows=32).g_eff)
    jax.block_until_ready(eff(small))
    t0 = time.perf_counter()
    jax.block_until_ready(eff(small))
    t_eff = time.perf_counter() - t0
    plain = jax.jit(lambda x, w: x @ w)
    read = eqx.filter_jit(lambda c, x, k: c.mvm(x, k))
    # One draw of every cell shared by the call (the per-cell path: M x P draws and the
    # per-cell noise model evaluated on every call).
    snap = eqx.filter_jit(lambda c, x, k: c.mvm(x, k, read_noise=xbar.PerCall()))
    # The machine is shared: interleave the timings so that load affects all alike.
    t_plain, t_read, t_noiseless = [], [], []
    for _ in range(3):
        t_plain.append(_median_time(plain, x, w))
        t_read.append(_median_time(read, xb, x, jax.random.PRNGKey(2)))
        t_noiseless.append(_median_time(read, xb, x, None))
    t_snap = _median_time(snap, xb, x, jax.random.PRNGKey(2), n=3)
    return min(t_plain), min(t_read), t_eff, t_snap, min(t_noiseless)


def bench_write_verify(m=256, n=256):
    pcm = devices.PCMStatistical()
    mapping = xbar.DifferentialMapping(g_min=0.0, g_max=20e-6)
    w = jax.random.uniform(jax.random.PRNGKey(1), (m, n), minval=-1, maxval=1)
    xb = xbar.Crossbar.create(pcm, (m, n), mapping=mapping)
    wv = xbar.WriteVerify(
        tol=0.02, max_pulses=200, v_set0=1.0, v_set_step=0.0, v_reset0=-1.0, v_reset_step=0.0
    )
    prog = eqx.filter_jit(xbar.program)
    t0 = time.perf_counter()
    _, rep = prog(xb, w, wv, jax.random.PRNGKey(2))
    jax.block_until_ready(rep.pulses)
    t_first = time.perf_counter() - t0
    t = _median_time(lambda k: prog(xb, w, wv, k)[1].pulses, jax.random.PRNGKey(3), n=3)
    return t, t_first, float(rep.success_rate)


def bench_write_verify_rram(m, n, **integrator):
    """Stanford-PKU (1T1R, 2 kOhm) write-verify of an ``m x n`` weight array (``2n``
    devices per row); ``integrator``: ``pulse_substeps`` / ``pulse_newton`` of WriteVerify."""
    rram = devices.StanfordPKU(r_series=2e3, delta_gap0=5e-3)
    w = jax.random.uniform(jax.random.PRNGKey(1), (m, n), minval=-1, maxval=1)
    xr = xbar.Crossbar.create(
        rram,
        (m, n),
        mapping=xbar.DifferentialMapping(5e-6, 100e-6),
        gap=1.7e-9,
        dac=xbar.DAC(v_read=0.1),
    )
    wv_r = xbar.WriteVerify(
        tol=0.02,
        max_pulses=200,
        v_set0=1.5,
        v_set_step=0.05,
        v_set_max=3.5,
        v_reset0=-1.2,
        v_reset_step=-0.05,
        v_reset_max=3.5,
        **integrator,
    )
    prog = eqx.filter_jit(xbar.program)
    t0 = time.perf_counter()
    _, rep = prog(xr, w, wv_r, jax.random.PRNGKey(2))
    jax.block_until_ready(rep.pulses)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, rep = prog(xr, w, wv_r, jax.random.PRNGKey(3))
    jax.block_until_ready(rep.pulses)
    return time.perf_counter() - t0, t_first, float(rep.success_rate), float(jnp.mean(rep.pulses))


def main(append=False, full=False, quick=False):
    load0 = os.getloadavg()
    if quick:
        t_plain, t_read, t_eff, t_snap, t_quiet = bench_read(256, 256, 32)
        t_wv, t_wv_first, succ = bench_write_verify(32, 32)
        capped = dict(pulse_substeps=16)
        r256 = bench_write_verify_rram(32, 32, **capped)
        r64 = bench_write_verify_rram(16, 16)
        print("quick smoke run (small sizes; the table's size column is not what ran)")
    else:
        t_plain, t_read, t_eff, t_snap, t_quiet = bench_read()
        t_wv, t_wv_first, succ = bench_write_verify()
        capped = dict(pulse_substeps=16)
        r256 = bench_write_verify_rram(256, 256, **capped)
        r64 = bench_write_verify_rram(64, 64)
    r256_dev = bench_write_verify_rram(256, 256) if full else None
    load1 = os.getloadavg()
    dev = jax.devices()[0]
    rows = [
        ("plain x @ W", "B256 1024x1024", f"{t_plain * 1e3:.1f} ms", "-", "reference"),
        (
            "realistic read (diff. pair, 8b DAC/ADC, noise, IR eff.)",
            "B256 1024x1024",
            f"{t_read * 1e3:.1f} ms",
            f"{t_read / t_plain:.2f}x",
            "<= 5x CPU / 3x GPU",
        ),
        (
            "same, read_noise=xbar.PerCall() (one per-cell draw per call)",
            "B256 1024x1024",
            f"{t_snap * 1e3:.1f} ms",
            f"{t_snap / t_plain:.2f}x",
            "-",
        ),
        (
            "same without read noise",
            "B256 1024x1024",
            f"{t_quiet * 1e3:.1f} ms",
            f"{t_quiet / t_plain:.2f}x",
            "-",
        ),
        ("effective matrix, 22 nm wires (once per state)", "256x512", f"{t_eff:.2f} s", "-", "-"),
        (
            "write-verify PCMStatistical",
            "256x256 (x2 devices)",
            f"{t_wv:.2f} s",
            f"success {succ:.4f}, first call {t_wv_first:.1f} s",
            "< 10 s",
        ),
        (
            "write-verify Stanford-PKU, pulse_substeps=16",
            "256x256 (x2 devices)",
            f"{r256[0]:.2f} s",
            f"success {r256[2]:.4f}, {r256[3]:.1f} pulses/cell, first call {r256[1]:.1f} s",
            "< 10 s",
        ),
        (
            "write-verify Stanford-PKU, device integrator (128 sub-steps)",
            "64x64 (x2 devices)",
            f"{r64[0]:.2f} s",
            f"success {r64[2]:.4f}, {r64[3]:.1f} pulses/cell, first call {r64[1]:.1f} s",
            "-",
        ),
    ]
    if r256_dev is not None:
        rows.append(
            (
                "write-verify Stanford-PKU, device integrator (128 sub-steps)",
                "256x256 (x2 devices)",
                f"{r256_dev[0]:.2f} s",
                f"success {r256_dev[2]:.4f}, {r256_dev[3]:.1f} pulses/cell, "
                f"first call {r256_dev[1]:.1f} s",
                "< 10 s",
            )
        )
    head = "| workload | size | time | ratio / note | target |\n|---|---|---|---|---|"
    table = head + "\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows)
    info = (
        f"Machine: {platform.machine()} ({cpu_name()}), {os.cpu_count()} CPU cores, "
        f"backend {dev.platform} ({dev.device_kind}), jax {jax.__version__}, float32. "
        f"Load average (1 min) {load0[0]:.2f} at the start, {load1[0]:.2f} at the end (the "
        "machine is shared). Read times: best of 3 interleaved medians of 7. No GPU was "
        "lent for this run: the GPU target is not measured."
    )
    print(table)
    print(info)
    if append and not quick:
        replace_section("## Crossbar", info + "\n\n" + table)


if __name__ == "__main__":
    main(append="--append" in sys.argv, full="--full" in sys.argv, quick="--quick" in sys.argv)
