"""GPU targets of the crossbar solver (issue: ``xbar.solve``), float32.

Run on a machine with a GPU (``python benchmarks/solver_gpu.py``): times, after
compilation, ``xbar.solve`` on 1024x1024 with a batch of 256 inputs (target 0.5 s) and
``xbar.effective_matrix`` of 1024x1024 (target 10 s), both with the default
``solver=xbar.Auto()``, and sets each beside the memory-bandwidth floor of the
device: the time one read + write pass over the batch of ``(B, M, N)`` float32 fields
takes at the measured device copy bandwidth.  Writes the section "Solver on GPU" of
``benchmarks/RESULTS.md``.  ``--size N --cpu`` runs the same rows at ``N x N`` on any
backend without writing (a smoke check of this script).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

from _results import median_time, replace_section  # this folder (sys.path[0])

HERE = os.path.dirname(os.path.abspath(__file__))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import xbar  # noqa: E402


def device_copy_bandwidth(n_bytes=1 << 30):
    """Bytes read + written per second by an on-device copy of a float32 array."""
    x = jnp.ones(n_bytes // 4, jnp.float32)
    copy = jax.jit(lambda a: a * 1.0 + 0.0)
    return 2 * n_bytes / median_time(lambda: copy(x), 7)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--cpu", action="store_true", help="run on any backend, do not write")
    a = ap.parse_args(argv)
    backend = jax.default_backend()
    if backend == "cpu" and not a.cpu:
        print("no GPU backend: nothing measured (pass --cpu for a smoke run)")
        return 1
    n, B = a.size, a.batch
    rng = np.random.default_rng(0)
    G = jnp.asarray(rng.uniform(1e-6, 1e-4, (n, n)), jnp.float32)
    V = jnp.asarray(rng.uniform(0.0, 0.3, (B, n)), jnp.float32)
    kw = dict(r_wl=1.0, r_bl=1.0)
    bw = device_copy_bandwidth(1 << 28 if a.cpu else 1 << 30)
    pass_s = 2 * B * n * n * 4 / bw  # one read + write pass over the (B, n, n) fields
    sol = xbar.solve(G, V, **kw)
    ref = xbar.solve(
        G.astype(jnp.float64) if jax.config.jax_enable_x64 else G, V, **kw, solver=xbar.Direct()
    )
    err = float(jnp.max(jnp.abs(sol.i_out - ref.i_out)) / jnp.max(jnp.abs(ref.i_out)))
    t_solve = median_time(lambda: xbar.solve(G, V, **kw), 5)
    pass_w = 2 * n * n * n * 4 / bw  # the same for the n unit inputs of effective_matrix
    t_weff = median_time(lambda: xbar.effective_matrix(G, **kw), 3)
    rows = [
        (
            f"linear, batch {B}",
            t_solve,
            0.5 if (n, B) == (1024, 256) else None,
            pass_s,
            int(sol.cg_iterations),
            err,
        ),
        ("effective_matrix", t_weff, 10.0 if n == 1024 else None, pass_w, None, None),
    ]
    dev = jax.devices()[0]
    head = (
        f"{'workload':<22}{'size':>11}{'t [s]':>9}{'target':>8}{'1 pass [ms]':>13}"
        f"{'t / pass':>10}{'iters':>7}{'rel.err':>10}"
    )
    print(f"{dev.device_kind} ({backend}); copy bandwidth {bw / 1e9:.0f} GB/s")
    print(head)
    for w, t, target, p, it, e in rows:
        print(
            f"{w:<22}{f'{n}x{n}':>11}{t:>9.3f}{'-' if target is None else target:>8}"
            f"{p * 1e3:>13.2f}{t / p:>10.0f}{'-' if it is None else it:>7}"
            f"{'-' if e is None else f'{e:.1e}':>10}"
        )
    if a.cpu:
        return 0
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {dev.device_kind} (backend "
        f"{backend}), host {platform.platform()}; jax {jax.__version__}, float32, 1 ohm "
        "wires, G uniform in [1e-6, 1e-4] S, `solver=xbar.Auto()`, medians after "
        "compilation (`python benchmarks/solver_gpu.py`).",
        f"Device copy bandwidth {bw / 1e9:.0f} GB/s (read + write). Floor: one read + write "
        "pass over the batch of (B, M, N) float32 fields at that bandwidth; `t / pass` says "
        "how many such passes the solve costs (a solve writes at least its 3 output fields).",
        "",
        "| workload | size | t [s] | target [s] | met | 1 pass [ms] | t / pass | iterations "
        "| rel. error vs direct |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w, t, target, p, it, e in rows:
        met = "-" if target is None else ("yes" if t <= target else "NO")
        lines.append(
            f"| {w} | {n}x{n} | {t:.3f} | {'-' if target is None else target} | {met} "
            f"| {p * 1e3:.2f} | {t / p:.0f} | {'-' if it is None else it} | "
            f"{'-' if e is None else f'{e:.1e}'} |"
        )
    replace_section("## Solver on GPU (xbar.solve)", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
