"""Benchmark of xbar.solve / xbar.effective_matrix (float64, CPU), new and old side by side.

Workload: uniform random G in [1e-6, 1e-4] S, 1 ohm word- and bit-line segments, inputs
uniform in [0, 0.3] V.  Anchors measured in the same run: a direct sparse solve of the
same 2MN-node nodal system (``scipy.sparse.linalg.spsolve``; for the effective matrix
``splu`` of the nodal matrix + the M unit-input solves), ngspice up to 128x128, and, with
``--old PATH`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/xbar_old
<commit>``), the same workloads with that version of the solver (run in a subprocess
with ``PYTHONPATH=PATH``, using its string options ``preconditioner=...``).  Times are
medians after warm-up (compilation excluded) with ``jax.block_until_ready``.  Prints a
table and replaces the section "## Solver (xbar.solve)" of benchmarks/RESULTS.md.

Usage: ``python benchmarks/solver.py [--quick] [--old PATH] [--old-max N] [--only PATTERNS]``
(``--old-max N``: measure the old version only up to ``N x N``)
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import shutil
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

LEGACY = "--legacy" in sys.argv  # run by the main script under PYTHONPATH=<old checkout>

if not LEGACY:
    # the ngspice reference of the tests, loaded from its file (no sys.path edit)
    _spec = importlib.util.spec_from_file_location(
        "_spice", os.path.join(HERE, "..", "tests", "xbar", "_spice.py")
    )
    _spice = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_spice)

R_WIRE = 1.0
V0 = 0.25
KW = dict(r_wl=R_WIRE, r_bl=R_WIRE)


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


# ---------------------------------------------------------------------------------------
# The methods, new API (solver objects) and old API (preconditioner strings)
# ---------------------------------------------------------------------------------------


def method(name, G):
    """Keyword arguments that select method ``name`` for array ``G`` (old or new API).

    ``"march"``: the planned march; the plan is made here, outside jit (new API), as the
    old API made it inside an eager call."""
    if LEGACY:
        return dict(preconditioner={"cg": "jacobi", "auto": "auto"}.get(name, name))
    if name == "march":
        return dict(solver=xbar.March.plan(G, **KW))
    return dict(
        solver={
            "cg": xbar.CG(),
            "line": xbar.CG(xbar.LinePreconditioner()),
            "direct": xbar.Direct(),
            "auto": xbar.Auto(),
        }[name]
    )


def fn_solve(name, G, nonlinear=False):
    kw = dict(KW, **method(name, G))
    if nonlinear:
        kw["iv"] = sinh_cell
    if name == "march" or name == "auto":  # eager, as a user calls it (plan / concrete G)
        return lambda G, v: xbar.solve(G, v, **kw)
    return jax.jit(lambda G, v: xbar.solve(G, v, **kw))


def fn_matrix(name, G):
    kw = dict(KW, **method(name, G))
    if name in ("march", "auto"):
        return lambda G: xbar.effective_matrix(G, **kw)
    return jax.jit(lambda G: xbar.effective_matrix(G, **kw))


def workloads(quick):
    """``(workload, size, method, kind, shape, batch)``: the rows of the table
    (``--only "a;b"``: only the rows whose ``workload|size|method`` contains one of them)."""
    rows = _workloads(quick)
    if "--only" in sys.argv:
        pats = sys.argv[sys.argv.index("--only") + 1].split(";")
        rows = [r for r in rows if any(p in f"{r[0]}|{r[1]}|{r[2]}" for p in pats)]
    return rows


def _workloads(quick):
    rows = []
    for n in [64, 128, 256, 512] + ([] if quick else [1024]):
        for m in ("cg", "line"):
            rows.append(("linear, 1 input", n, m, "solve", (n, n), 0))
    for m in ("cg", "line", "direct", "march"):
        rows.append(("linear, batch 256", 256, m, "solve", (256, 256), 256))
    for b in (16, 64):
        for m in ("cg", "direct", "march"):
            rows.append((f"linear, batch {b}", 256, m, "solve", (256, 256), b))
    rows.append(("linear, batch 256", 512, "march", "solve", (512, 512), 256))
    if not quick:
        rows.append(("linear, batch 64", 1024, "march", "solve", (1024, 1024), 64))
    for m in ("cg", "line"):
        rows.append(("sinh cells, 1 input", 256, m, "nonlinear", (256, 256), 0))
    rows.append(("sinh cells, 1 input", 64, "cg", "nonlinear", (64, 64), 0))
    for m in ("auto", "cg", "line", "direct", "march"):
        rows.append(("effective_matrix", 256, m, "matrix", (256, 256), 0))
    for n in (64, 128, 512):
        for m in ("auto", "direct"):
            if quick and n == 512 and m == "direct":
                continue
            rows.append(("effective_matrix", n, m, "matrix", (n, n), 0))
    return rows


def time_row(row):
    """(time, result) of one row; the result is i_out or the matrix."""
    _, n, m, kind, shape, batch = row
    G, v = problem(*shape)
    Gj = jnp.asarray(G)
    if kind == "matrix":
        f = fn_matrix(m, G)
        call = lambda: jax.block_until_ready(f(Gj))  # noqa: E731
        reps = 3
    else:
        V = v if batch == 0 else np.random.default_rng(1).uniform(0, 0.3, (batch, shape[0]))
        if shape[0] == 512 and batch:
            V = np.random.default_rng(2).uniform(0, 0.3, (batch, shape[0]))
        f = fn_solve(m, G, kind == "nonlinear")
        Vj = jnp.asarray(V)
        call = lambda: jax.block_until_ready(f(Gj, Vj))  # noqa: E731
        reps = 5 if batch == 0 else 3
    t = median_time(call, reps, 0.5 if batch == 0 and kind != "matrix" else 0.0)
    out = call()
    if kind == "matrix":
        return t, np.asarray(out), None
    return t, np.asarray(out.i_out), int(out.cg_iterations)


# ---------------------------------------------------------------------------------------
# Anchors
# ---------------------------------------------------------------------------------------


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
    rhs = np.zeros((Y.shape[0], V.shape[0]))
    rhs[idx_w[:, 0]] = V.T / r
    x = spla.spsolve(Y, rhs).reshape(Y.shape[0], -1)
    return x[idx_b[-1, :]].T / r


def scipy_matrix(Y, idx_w, idx_b, r):
    """The effective matrix by ``splu`` of the nodal matrix and the M unit-input solves."""
    M = idx_w.shape[0]
    lu = spla.splu(Y)
    rhs = np.zeros((Y.shape[0], M))
    rhs[idx_w[:, 0], np.arange(M)] = 1.0 / r
    x = lu.solve(rhs)
    return x[idx_b[-1, :]].T / r


def ngspice_time(G, v):
    """Wall time of one ngspice operating-point run (netlist parse + solve + write)."""
    with tempfile.TemporaryDirectory() as d:
        cir = os.path.join(d, "x.cir")
        raw = os.path.join(d, "out.raw")
        with open(cir, "w") as f:
            f.write(_spice.netlist(G, v, R_WIRE, R_WIRE, raw_path=raw, sinh_v0=None))
        t0 = time.perf_counter()
        try:
            subprocess.run([_spice.NGSPICE, "-b", cir], capture_output=True, cwd=d, timeout=300)
        except subprocess.TimeoutExpired:
            return None
        dt = time.perf_counter() - t0
        assert os.path.exists(raw)
    return dt


def anchors(row, quick):
    """(scipy time, reference output, ngspice time) of a row, where measured."""
    name, n, _, kind, shape, batch = row
    G, v = problem(*shape)
    if n > 512 or kind == "nonlinear":
        return None, None, None
    Y, iw, ib = nodal_matrix(G, R_WIRE)
    if kind == "matrix":
        ref = scipy_matrix(Y, iw, ib, R_WIRE)
        t = median_time(lambda: scipy_matrix(Y, iw, ib, R_WIRE), 1 if n >= 512 else 3, 0.0)
        return t, ref, None
    V = v[None] if batch == 0 else np.random.default_rng(1).uniform(0, 0.3, (batch, shape[0]))
    if shape[0] == 512 and batch:
        return None, None, None
    ref = scipy_solve(Y, iw, ib, V, R_WIRE)
    t = median_time(lambda: scipy_solve(Y, iw, ib, V, R_WIRE), 3, 0.0)
    t_sp = None
    if batch == 0 and n <= (64 if quick else 128) and _spice.NGSPICE:
        t_sp = ngspice_time(G, v)
    return t, (ref[0] if batch == 0 else ref), t_sp


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def key(row):
    return f"{row[0]}|{row[1]}|{row[2]}"


def run_legacy(quick, out_path):
    res = {}
    old_max = int(sys.argv[sys.argv.index("--old-max") + 1]) if "--old-max" in sys.argv else 1 << 30
    for row in workloads(quick):
        if (row[2] == "auto" and row[3] != "matrix") or row[1] > old_max:
            continue
        try:
            t, _, it = time_row(row)
        except Exception as err:  # a method the old version did not have
            print(f"{key(row)}: {type(err).__name__}", flush=True)
            continue
        res[key(row)] = dict(t=t, load=os.getloadavg()[0])
        print(f"{key(row)}: {t:.4f} s", flush=True)
    with open(out_path, "w") as f:
        json.dump(res, f)


def main(quick, old):
    old_times = {}
    if old:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "old.json")
            env = dict(os.environ, PYTHONPATH=old)
            # run a copy from the temporary folder: from this folder, benchmarks/devices.py
            # would shadow the old version's top-level ``devices`` package
            for name in ("solver.py", "_results.py"):
                shutil.copy(os.path.join(HERE, name), d)
            cmd = [sys.executable, os.path.join(d, "solver.py"), "--legacy", out]
            if quick:
                cmd.append("--quick")
            for opt in ("--only", "--old-max"):
                if opt in sys.argv:
                    cmd += [opt, sys.argv[sys.argv.index(opt) + 1]]
            print(f"old version ({old}) ...", flush=True)
            subprocess.run(cmd, env=env, check=True, cwd=d)
            with open(out) as f:
                old_times = json.load(f)
    rows = []
    print(_header(), flush=True)
    for row in workloads(quick):
        t, out, it = time_row(row)
        t_sc, ref, t_sp = anchors(row, quick)
        err = None
        if ref is not None:
            err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
        o = old_times.get(key(row))
        rows.append(
            dict(
                workload=row[0],
                size=f"{row[1]}x{row[1]}",
                method=row[2],
                t=t,
                t_old=None if o is None else o["t"],
                t_scipy=t_sc,
                t_spice=t_sp,
                iters=it,
                err=err,
                load=os.getloadavg()[0],
                load_old=None if o is None else o["load"],
            )
        )
        print(_fmt_row(rows[-1]), flush=True)
    write_results(rows, old)


TARGETS = {
    ("linear, 1 input", "256x256"): 0.1,
    ("linear, 1 input", "512x512"): 1.0,
    ("linear, batch 256", "256x256"): 1.0,
    ("sinh cells, 1 input", "256x256"): 1.0,
    ("effective_matrix", "256x256"): 0.2,
    ("effective_matrix", "512x512"): 3.0,
}


def _header():
    return (
        f"{'workload':<22}{'size':>10}{'method':>8}{'new [s]':>10}{'old [s]':>10}"
        f"{'new/old':>8}{'scipy [s]':>11}{'x scipy':>9}{'ngspice':>9}{'it':>5}{'rel.err':>10}"
    )


def _fmt(x, f="{:.4f}"):
    return "-" if x is None else f.format(x)


def _fmt_row(r):
    ratio = r["t"] / r["t_old"] if r["t_old"] else None
    su = r["t_scipy"] / r["t"] if r["t_scipy"] else None
    return (
        f"{r['workload']:<22}{r['size']:>10}{r['method']:>8}{_fmt(r['t']):>10}"
        f"{_fmt(r['t_old']):>10}{_fmt(ratio, '{:.2f}'):>8}{_fmt(r['t_scipy']):>11}"
        f"{_fmt(su, '{:.1f}'):>9}{_fmt(r['t_spice'], '{:.2f}'):>9}"
        f"{_fmt(r['iters'], '{}'):>5}{_fmt(r['err'], '{:.1e}'):>10}"
    )


def write_results(rows, old):
    lines = [
        "## Solver (xbar.solve)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.processor() or platform.machine()}"
        f" ({os.cpu_count()} CPU cores visible), {platform.platform()}; jax {jax.__version__},"
        f" backend {jax.default_backend()}, scipy {scipy.__version__}, float64,"
        f" ngspice {'found' if _spice.NGSPICE else 'not installed'}.",
        "Workload: G uniform in [1e-6, 1e-4] S, 1 ohm wire segments, medians after warm-up "
        "(`python benchmarks/solver.py --old <checkout>`). Methods: `cg` = `xbar.CG()` "
        "(Jacobi), `line` = `xbar.CG(xbar.LinePreconditioner())`, `direct` = "
        "`xbar.Direct()`, `march` = `xbar.March.plan(G, ...)` (plan made outside jit, "
        "called eagerly), `auto` = `xbar.Auto()` (the default). `old` = the same workload "
        f"with the solver before the solver-object restructuring ({old or 'not measured'}; "
        "its string options `preconditioner=...`), measured in the same run. scipy = "
        "`spsolve` of the 2MN-node nodal matrix (all right-hand sides at once); for "
        "`effective_matrix`: `splu` of the nodal matrix + the M unit-input solves. ngspice = "
        "one `-b` run (parse + operating point + write), up to 128x128.",
        "No GPU was lent for this run: GPU targets are not measured. The machine is shared "
        "with other jobs: the 1-minute load average (2 cores) at each row is listed, for "
        "the new and the old measurement; ratios are only comparable at similar load.",
        "",
        "| workload | size | method | new [s] | old [s] | new/old | target [s] | met | "
        "scipy [s] | speed-up vs scipy | ngspice [s] | steps | max rel. error vs scipy | "
        "load new / old |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["t"] / r["t_old"] if r["t_old"] else None
        su = r["t_scipy"] / r["t"] if r["t_scipy"] else None
        target = (
            TARGETS.get((r["workload"], r["size"]))
            if r["method"] == "auto"
            or (r["workload"] != "effective_matrix" and r["method"] in ("cg", "march"))
            else None
        )
        met = "-" if target is None else ("yes" if r["t"] <= target else "NO")
        lines.append(
            f"| {r['workload']} | {r['size']} | {r['method']} | {_fmt(r['t'])} | "
            f"{_fmt(r['t_old'])} | {_fmt(ratio, '{:.2f}')} | {_fmt(target, '{:g}')} | {met} | "
            f"{_fmt(r['t_scipy'])} | {_fmt(su, '{:.1f}x')} | {_fmt(r['t_spice'], '{:.2f}')} | "
            f"{_fmt(r['iters'], '{}')} | {_fmt(r['err'], '{:.1e}')} | {r['load']:.1f} / "
            f"{_fmt(r['load_old'], '{:.1f}')} |"
        )
    heading = lines[0]
    if "--only" in sys.argv:  # a partial run gets its own section; the full table stays
        heading = "## Solver (xbar.solve): selected rows, new and old side by side"
    replace_section(heading, "\n".join(lines[1:]))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if LEGACY:
        run_legacy(quick, sys.argv[sys.argv.index("--legacy") + 1])
    else:
        old = sys.argv[sys.argv.index("--old") + 1] if "--old" in sys.argv else None
        main(quick, old)
