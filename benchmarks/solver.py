"""Benchmark of xbar.solve / xbar.effective_matrix (float64, CPU).

Workload: uniform random G in [1e-6, 1e-4] S, 1 ohm word- and bit-line segments, inputs
uniform in [0, 0.3] V.  Compared side by side with a direct sparse solve of the same
2MN-node nodal system (scipy.sparse.linalg.spsolve, SuperLU) and, up to 128x128, with
ngspice.  Times are medians after warm-up (compilation excluded) with
``jax.block_until_ready``.  Prints a table and replaces the section
"## Solver (xbar.solve)" of benchmarks/RESULTS.md.

Usage: ``python benchmarks/solver.py [--quick]``
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from _results import RESULTS, replace_section  # this folder (sys.path[0])

HERE = os.path.dirname(os.path.abspath(__file__))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

import xbar  # noqa: E402

# the ngspice reference of the tests, loaded from its file (no sys.path edit)
_spec = importlib.util.spec_from_file_location(
    "_spice", os.path.join(HERE, "..", "tests", "xbar", "_spice.py"))
_spice = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_spice)

R_WIRE = 1.0
V0 = 0.25


def sinh_cell(G, v):
    return G * V0 * jnp.sinh(v / V0)


def problem(M, N, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-6, 1e-4, (M, N)), rng.uniform(0.0, 0.3, M)


def median_time(fn, repeats=5, min_time=0.5):
    fn()  # warm-up (compilation)
    times = []
    t_start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - t_start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def nodal_matrix(G, r):
    """Vectorised assembly of the nodal conductance matrix (uniform wire resistance r)."""
    M, N = G.shape
    idx_w = np.arange(M * N).reshape(M, N)
    idx_b = M * N + idx_w
    g = 1.0 / r
    rows, cols, vals = [], [], []

    def stamp(p, q, c):
        p, q, c = p.ravel(), q.ravel(), np.broadcast_to(c, p.shape).ravel()
        rows.extend([p, q, p, q])
        cols.extend([p, q, q, p])
        vals.extend([c, c, -c, -c])

    stamp(idx_w[:, :-1], idx_w[:, 1:], g)
    stamp(idx_b[:-1, :], idx_b[1:, :], g)
    stamp(idx_w, idx_b, G)
    rows += [idx_w[:, 0], idx_b[-1, :]]
    cols += [idx_w[:, 0], idx_b[-1, :]]
    vals += [np.full(M, g), np.full(N, g)]
    Y = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(2 * M * N,) * 2
    )
    return Y, idx_w, idx_b


def scipy_solve(Y, idx_w, idx_b, V, r):
    """Outputs for inputs V (B, M) by one sparse LU solve with B right-hand sides."""
    M, N = idx_w.shape
    rhs = np.zeros((Y.shape[0], V.shape[0]))
    rhs[idx_w[:, 0]] = V.T / r
    x = spla.spsolve(Y, rhs).reshape(Y.shape[0], -1)
    return x[idx_b[-1, :]].T / r


def ngspice_time(G, v):
    """Wall time of one ngspice operating-point run (netlist parse + solve + write)."""
    with tempfile.TemporaryDirectory() as d:
        cir = os.path.join(d, "x.cir")
        raw = os.path.join(d, "out.raw")
        with open(cir, "w") as f:
            f.write(_spice.netlist(G, v, R_WIRE, R_WIRE, raw_path=raw))
        t0 = time.perf_counter()
        try:
            subprocess.run([_spice.NGSPICE, "-b", cir], capture_output=True, cwd=d, timeout=300)
        except subprocess.TimeoutExpired:
            return None  # reported as not measured
        dt = time.perf_counter() - t0
        assert os.path.exists(raw)
    return dt


def copy_bandwidth():
    """Streaming copy bandwidth of this CPU (numpy, 256 MB, preallocated): bytes read +
    written per second; the memory-traffic floor for the batched solves."""
    a = np.ones(32 * 1024 * 1024)
    b = np.empty_like(a)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - t0)
    return 2 * a.nbytes / statistics.median(times)


PRECONDITIONERS = ("jacobi", "line", "direct")


def main(quick: bool = False):
    rows = []
    fns = {}
    for pc in PRECONDITIONERS:
        kw = dict(r_wl=R_WIRE, r_bl=R_WIRE, preconditioner=pc)
        fns[pc] = (
            jax.jit(lambda G, v, kw=kw: xbar.solve(G, v, **kw)),
            jax.jit(lambda G, v, kw=kw: xbar.solve(G, v, iv=sinh_cell, **kw)),
            jax.jit(lambda G, kw=kw: xbar.effective_matrix(G, **kw)),
        )
    solve, solve_nl, weff = fns["jacobi"]
    # The marching solver sizes its segments from concrete arrays, so it is called the
    # way a user calls it (eagerly; its core is compiled inside xbar.solve).
    kw_m = dict(r_wl=R_WIRE, r_bl=R_WIRE, preconditioner="march")
    fns["march"] = (lambda G, v: xbar.solve(G, v, **kw_m), None,
                    lambda G: xbar.effective_matrix(G, **kw_m))
    targets = {64: None, 128: None, 256: 0.1, 512: 1.0, 1024: None}
    bandwidth = copy_bandwidth()
    print(f"numpy streaming copy bandwidth: {bandwidth / 1e9:.1f} GB/s", flush=True)
    sizes = [64, 128, 256, 512] if quick else [64, 128, 256, 512, 1024]

    def add(workload, size, t, target, t_scipy=None, t_spice=None, iters=None, err=None):
        rows.append(dict(workload=workload, size=size, t=t, target=target, t_scipy=t_scipy,
                         t_spice=t_spice, iters=iters, err=err, load=os.getloadavg()[0]))
        print(_fmt_row(rows[-1]), flush=True)

    def add_variant(pc, workload, size, fn, args, target, repeats=5, min_time=0.5, **ref):
        """Row of another method for the same workload (its own error vs scipy)."""
        t = median_time(lambda: jax.block_until_ready(fn(*args)), repeats, min_time)
        out = fn(*args)
        iters = None if isinstance(out, jax.Array) else int(out.cg_iterations)
        err = None
        if "ref" in ref and ref["ref"] is not None:
            got = np.asarray(out if isinstance(out, jax.Array) else out.i_out)
            err = float(np.max(np.abs(got - ref["ref"])) / np.max(np.abs(ref["ref"])))
        add(workload + f" [{pc}]", size, t, target, iters=iters, err=err)

    def add_line(*args, **kw):
        add_variant("line", *args, **kw)

    print(_header(), flush=True)
    spice_ok = True
    for n in sizes:
        G, v = problem(n, n)
        Gj, vj = jnp.asarray(G), jnp.asarray(v)
        t = median_time(lambda Gj=Gj, vj=vj: jax.block_until_ready(solve(Gj, vj)))
        sol = solve(Gj, vj)
        ref, err, t_sc = None, None, None
        if n <= 512:  # the sparse LU at 1024x1024 (2M nodes) takes minutes
            Y, iw, ib = nodal_matrix(G, R_WIRE)
            ref = scipy_solve(Y, iw, ib, v[None], R_WIRE)[0]
            err = float(np.max(np.abs(sol.i_out - ref) / np.abs(ref)))
            t_sc = median_time(
                lambda Y=Y, iw=iw, ib=ib, v=v: scipy_solve(Y, iw, ib, v[None], R_WIRE),
                repeats=3, min_time=0.0)
        t_sp = None
        # ngspice: one run per size, up to 128x128 (the next size only if this run took < 10 s)
        if _spice.NGSPICE and n <= 128 and spice_ok:
            t_sp = ngspice_time(G, v)
            spice_ok = t_sp is not None and t_sp < 10
        add("linear, 1 input", f"{n}x{n}", t, targets[n], t_sc, t_sp, int(sol.cg_iterations), err)
        add_line("linear, 1 input", f"{n}x{n}", fns["line"][0], (Gj, vj), targets[n],
                 ref=None if ref is None else ref[None])

    n = 256
    G, v = problem(n, n)
    Gj = jnp.asarray(G)
    V = np.random.default_rng(1).uniform(0, 0.3, (256, n))
    Vj = jnp.asarray(V)
    t = median_time(lambda: jax.block_until_ready(solve(Gj, Vj)), repeats=3, min_time=0.0)
    Y, iw, ib = nodal_matrix(G, R_WIRE)
    ref = scipy_solve(Y, iw, ib, V, R_WIRE)
    sol = solve(Gj, Vj)
    err = float(np.max(np.abs(sol.i_out - ref) / np.abs(ref)))
    t_sc = median_time(lambda: scipy_solve(Y, iw, ib, V, R_WIRE), repeats=3, min_time=0.0)
    add("linear, batch 256", "256x256", t, 1.0, t_sc, None, int(sol.cg_iterations), err)
    add_line("linear, batch 256", "256x256", fns["line"][0], (Gj, Vj), 1.0, 3, 0.0, ref=ref)
    add_variant("direct", "linear, batch 256", "256x256", fns["direct"][0], (Gj, Vj), 1.0, 3, 0.0,
                ref=ref)
    add_variant("march", "linear, batch 256", "256x256", fns["march"][0], (Gj, Vj), 1.0, 5, 0.0,
                ref=ref)
    for b in (16, 64):  # where the factorising solvers start to pay off ("auto" threshold)
        add(f"linear, batch {b}", "256x256", median_time(
            lambda b=b: jax.block_until_ready(solve(Gj, Vj[:b])), 3, 0.0), None)
        add_variant("direct", f"linear, batch {b}", "256x256", fns["direct"][0],
                    (Gj, Vj[:b]), None, 3, 0.0)
        add_variant("march", f"linear, batch {b}", "256x256", fns["march"][0],
                    (Gj, Vj[:b]), None, 3, 0.0)
    for n2 in (512, 1024):  # the marching solver on larger arrays, batch 256 / 64
        G2, _ = problem(n2, n2)
        B2 = 256 if n2 == 512 else 64
        V2 = jnp.asarray(np.random.default_rng(2).uniform(0, 0.3, (B2, n2)))
        add_variant("march", f"linear, batch {B2}", f"{n2}x{n2}", fns["march"][0],
                    (jnp.asarray(G2), V2), None, 3, 0.0)
    # memory-traffic floor: one pass over one (B, M, N) float64 array, read + write
    pass_s = 2 * V.shape[0] * n * n * 8 / bandwidth
    print(f"  one read+write pass over a (256, 256, 256) float64 array at the copy bandwidth: "
          f"{pass_s * 1e3:.0f} ms", flush=True)

    vj = jnp.asarray(v)
    t = median_time(lambda: jax.block_until_ready(solve_nl(Gj, vj)), repeats=3, min_time=0.0)
    sol = solve_nl(Gj, vj)
    t_sp = None
    add("sinh cells, 1 input", "256x256", t, 1.0, None, t_sp, int(sol.cg_iterations),
        None)
    add_line("sinh cells, 1 input", "256x256", fns["line"][1], (Gj, vj), 1.0, 3, 0.0)

    t = median_time(lambda: jax.block_until_ready(weff(Gj)), repeats=3, min_time=0.0)
    W = weff(Gj)
    ref = scipy_solve(Y, iw, ib, np.eye(n), R_WIRE)
    err = float(np.max(np.abs(W - ref)) / np.max(np.abs(ref)))
    t_sc = median_time(lambda: scipy_solve(Y, iw, ib, np.eye(n), R_WIRE), repeats=3, min_time=0.0)
    add("effective_matrix", "256x256", t, 5.0, t_sc, None, None, err)
    add_line("effective_matrix", "256x256", fns["line"][2], (Gj,), 5.0, 3, 0.0, ref=ref)
    add_variant("direct", "effective_matrix", "256x256", fns["direct"][2], (Gj,), 5.0, 3, 0.0,
                ref=ref)
    add_variant("march", "effective_matrix", "256x256", fns["march"][2], (Gj,), 5.0, 3, 0.0,
                ref=ref)
    for n in (64, 128, 512):  # growth of the direct effective matrix with size
        Gn = jnp.asarray(problem(n, n)[0])
        add_variant("direct", "effective_matrix", f"{n}x{n}", fns["direct"][2], (Gn,), None,
                    3, 0.0)

    # sinh cells against ngspice at a size ngspice handles quickly
    if _spice.NGSPICE:
        G, v = problem(64, 64)
        Gj, vj = jnp.asarray(G), jnp.asarray(v)
        t = median_time(lambda: jax.block_until_ready(solve_nl(Gj, vj)))
        sol = solve_nl(Gj, vj)
        with tempfile.TemporaryDirectory() as d:
            cir, raw = os.path.join(d, "x.cir"), os.path.join(d, "o.raw")
            with open(cir, "w") as f:
                f.write(_spice.netlist(G, v, R_WIRE, R_WIRE, sinh_v0=V0, raw_path=raw))
            t0 = time.perf_counter()
            subprocess.run([_spice.NGSPICE, "-b", cir], capture_output=True, cwd=d)
            t_sp = time.perf_counter() - t0
        add("sinh cells, 1 input", "64x64", t, None, None, t_sp, int(sol.cg_iterations), None)

    write_results(rows, bandwidth, pass_s)


def _header():
    return (f"{'workload':<22}{'size':>10}{'xbar [s]':>11}{'target':>8}{'scipy [s]':>11}"
            f"{'x scipy':>9}{'ngspice [s]':>13}{'x ngspice':>10}{'CG it':>7}{'rel.err':>10}")


def _fmt(x, f="{:.4f}"):
    return "-" if x is None else f.format(x)


def _fmt_row(r):
    su = r["t_scipy"] / r["t"] if r["t_scipy"] else None
    sn = r["t_spice"] / r["t"] if r["t_spice"] else None
    return (f"{r['workload']:<22}{r['size']:>10}{_fmt(r['t']):>11}{_fmt(r['target'], '{:g}'):>8}"
            f"{_fmt(r['t_scipy']):>11}{_fmt(su, '{:.1f}'):>9}{_fmt(r['t_spice']):>13}"
            f"{_fmt(sn, '{:.0f}'):>10}{_fmt(r['iters'], '{}'):>7}{_fmt(r['err'], '{:.1e}'):>10}")


def write_results(rows, bandwidth, pass_s):
    lines = [
        "## Solver (xbar.solve)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.processor() or platform.machine()}"
        f" ({os.cpu_count()} CPU cores visible), {platform.platform()}; jax {jax.__version__},"
        f" backend {jax.default_backend()}, scipy {scipy.__version__}, float64,"
        f" ngspice {'found' if _spice.NGSPICE else 'not installed'}.",
        "Workload: G uniform in [1e-6, 1e-4] S, 1 ohm wire segments, medians after warm-up "
        "(`python benchmarks/solver.py`). scipy = `spsolve` of the 2MN-node nodal matrix "
        "(factorisation + solve, all right-hand sides at once); ngspice = one `-b` run "
        "(parse + operating point + write), only up to the sizes listed (nothing extrapolated).",
        "No GPU was lent for this run: GPU targets are not measured.",
        "Rows without a tag use Jacobi-preconditioned CG; `[line]` rows use "
        "`preconditioner=\"line\"` (Woodbury + tridiagonal line solves, fewer CG iterations, "
        "dearer iterations); `[direct]` rows use `preconditioner=\"direct\"` (Woodbury + "
        "block-tridiagonal factorisation, iterative refinement; the CG column counts "
        "refinement steps), which the default `\"auto\"` picks for `effective_matrix`; "
        "`[march]` rows use `preconditioner=\"march\"` (marching / multiple shooting, "
        "O(MN) per input, called eagerly as a user would), which `\"auto\"` picks for "
        "linear cells with >= 16 inputs. The machine is shared: the "
        "1-minute load average at each row is listed.",
        f"Memory floor: numpy streaming copy {bandwidth / 1e9:.1f} GB/s (read + write), i.e. "
        f"{pass_s * 1e3:.0f} ms per read+write pass over one (256, 256, 256) float64 array "
        "(134 MB); a CG iteration on the batch needs >= ~10 such passes.",
        "",
        "| workload | size | xbar [s] | target [s] | met | scipy [s] | speed-up vs scipy | ngspice [s] |"
        " speed-up vs ngspice | CG iterations | max rel. error vs scipy | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        su = r["t_scipy"] / r["t"] if r["t_scipy"] else None
        sn = r["t_spice"] / r["t"] if r["t_spice"] else None
        lines.append(
            f"| {r['workload']} | {r['size']} | {_fmt(r['t'])} | {_fmt(r['target'], '{:g}')} | "
            f"{'-' if r['target'] is None else ('yes' if r['t'] <= r['target'] else 'NO')} | "
            f"{_fmt(r['t_scipy'])} | {_fmt(su, '{:.1f}x')} | {_fmt(r['t_spice'])} | "
            f"{_fmt(sn, '{:.0f}x')} | {_fmt(r['iters'], '{}')} | {_fmt(r['err'], '{:.1e}')} |"
            f" {r['load']:.1f} |"
        )
    replace_section(lines[0], "\n".join(lines[1:]))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
