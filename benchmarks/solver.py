"""Benchmark of xbar.solve / xbar.effective_matrix (float64, CPU), new and old side by side.

Workload: uniform random G in [1e-6, 1e-4] S, 1 ohm word- and bit-line segments, inputs
uniform in [0, 0.3] V.  Anchors measured in the same run: a direct sparse solve of the
same 2MN-node nodal system (``scipy.sparse.linalg.spsolve``; for the effective matrix
``splu`` of the nodal matrix + the M unit-input solves), ngspice up to 128x128, and, with
``--old PATH`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/xbar_old
<commit>``), the same workloads with that version of the solver (a server subprocess
with ``PYTHONPATH=PATH``, using its string options ``preconditioner=...``), timed in
alternating rounds with the new version, row by row, so that both see the same machine
load.  Times are medians after warm-up (compilation excluded) with
``jax.block_until_ready``.  Prints a
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
    """:func:`timed` after one warm-up call (compilation)."""
    fn()
    return timed(fn, repeats, min_time)


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


def make_call(row):
    """``(call, repeats, min_time)`` of one row: ``call()`` runs it once (compiled on the
    first call) and returns its result."""
    _, n, m, kind, shape, batch = row
    G, v = problem(*shape)
    Gj = jnp.asarray(G)
    if kind == "matrix":
        f = fn_matrix(m, G)
        return (lambda: jax.block_until_ready(f(Gj))), 3, 0.0
    V = v if batch == 0 else np.random.default_rng(1).uniform(0, 0.3, (batch, shape[0]))
    if shape[0] == 512 and batch:
        V = np.random.default_rng(2).uniform(0, 0.3, (batch, shape[0]))
    f = fn_solve(m, G, kind == "nonlinear")
    Vj = jnp.asarray(V)
    call = lambda: jax.block_until_ready(f(Gj, Vj))  # noqa: E731
    return call, (5 if batch == 0 else 3), (0.5 if batch == 0 and kind != "matrix" else 0.0)


def result_of(row, out):
    """(result, iterations) of a row's call: i_out or the matrix."""
    if row[3] == "matrix":
        return np.asarray(out), None
    return np.asarray(out.i_out), int(out.cg_iterations)


def time_row(row):
    """(time, result, iterations) of one row."""
    call, reps, min_time = make_call(row)
    t = median_time(call, reps, min_time)
    return (t,) + result_of(row, call())


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


def serve_legacy(quick):
    """The old side, as a server on stdin/stdout (one JSON object per line): ``setup``
    compiles a row, ``time`` times it (``median_time`` without the warm-up), so that the
    main script alternates old and new rounds of the same row under the same load."""
    rows = {key(r): r for r in workloads(quick)}
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else the old version prints goes to stderr
    call = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "setup":
            try:
                call, _, _ = make_call(rows[cmd["key"]])
                call()
                reply = dict(ok=True)
            except Exception as err:  # a method the old version did not have
                call, reply = None, dict(ok=False, error=type(err).__name__)
        elif cmd["op"] == "time":
            reply = dict(t=timed(call, cmd["repeats"], cmd["min_time"]))
        else:
            break
        out.write(json.dumps(reply) + "\n")
        out.flush()


def timed(fn, repeats, min_time):
    """Median of ``repeats`` (or more, up to ``min_time`` s) calls of a warm ``fn``."""
    times = []
    t_start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - t_start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class OldSide:
    """The old version in a subprocess (``serve_legacy``), run from a temporary copy of
    this script: from this folder, benchmarks/devices.py would shadow the old version's
    top-level ``devices`` package."""

    def __init__(self, path, quick):
        self.dir = tempfile.TemporaryDirectory()
        for name in ("solver.py", "_results.py"):
            shutil.copy(os.path.join(HERE, name), self.dir.name)
        cmd = [sys.executable, os.path.join(self.dir.name, "solver.py"), "--legacy"]
        if quick:
            cmd.append("--quick")
        env = dict(os.environ, PYTHONPATH=path)
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=self.dir.name,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.write(json.dumps(dict(op="quit")) + "\n")
        self.proc.stdin.close()
        self.proc.wait()
        self.dir.cleanup()


ROUNDS = 3
"""Alternating new / old rounds per row (each a median of several calls); the row's time
is the median over the rounds."""


def main(quick, old):
    old_side = OldSide(old, quick) if old else None
    old_max = int(sys.argv[sys.argv.index("--old-max") + 1]) if "--old-max" in sys.argv else 1 << 30
    rows = []
    print(_header(), flush=True)
    for row in workloads(quick):
        call, reps, min_time = make_call(row)
        call()  # compile
        use_old = (
            old_side is not None
            and not (row[2] == "auto" and row[3] != "matrix")
            and row[1] <= old_max
            and old_side.ask(op="setup", key=key(row))["ok"]
        )
        t_new, t_old, loads = [], [], []
        for _ in range(ROUNDS if use_old else 1):
            loads.append(os.getloadavg()[0])
            t_new.append(timed(call, reps, min_time))
            if use_old:
                t_old.append(old_side.ask(op="time", repeats=reps, min_time=min_time)["t"])
        out, it = result_of(row, call())
        t_sc, ref, t_sp = anchors(row, quick)
        err = None
        if ref is not None:
            err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
        rows.append(
            dict(
                workload=row[0],
                size=f"{row[1]}x{row[1]}",
                method=row[2],
                t=statistics.median(t_new),
                t_old=statistics.median(t_old) if t_old else None,
                t_scipy=t_sc,
                t_spice=t_sp,
                iters=it,
                err=err,
                load=statistics.mean(loads),
            )
        )
        print(_fmt_row(rows[-1]), flush=True)
    if old_side is not None:
        old_side.close()
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


def _describe(old):
    """The old side named by its commit (never by a local path)."""
    if not old:
        return "not measured"
    try:
        out = subprocess.run(
            ["git", "-C", old, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return f"commit {out.stdout.strip()}" if out.returncode == 0 else "an older checkout"
    except OSError:
        return "an older checkout"


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
        f"with the solver before the solver-object restructuring ({_describe(old)}; "
        "its string options `preconditioner=...`), timed in the same run in alternating "
        f"rounds with the new version ({ROUNDS} rounds per row, each a median of several calls; "
        "the row's time is the median of its rounds), so both sides see the same load. scipy = "
        "`spsolve` of the 2MN-node nodal matrix (all right-hand sides at once); for "
        "`effective_matrix`: `splu` of the nodal matrix + the M unit-input solves. ngspice = "
        "one `-b` run (parse + operating point + write), up to 128x128.",
        "No GPU was lent for this run: GPU targets are not measured. The machine is shared "
        "with other jobs: the mean 1-minute load average (2 cores) over each row's rounds is "
        "listed.",
        "",
        "| workload | size | method | new [s] | old [s] | new/old | target [s] | met | "
        "scipy [s] | speed-up vs scipy | ngspice [s] | steps | max rel. error vs scipy | "
        "load |",
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
            f"{_fmt(r['iters'], '{}')} | {_fmt(r['err'], '{:.1e}')} | {r['load']:.1f} |"
        )
    heading = lines[0]
    if "--only" in sys.argv:  # a partial run gets its own section; the full table stays
        heading = "## Solver (xbar.solve): selected rows, new and old side by side"
    replace_section(heading, "\n".join(lines[1:]))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if LEGACY:
        serve_legacy(quick)
    else:
        old = sys.argv[sys.argv.index("--old") + 1] if "--old" in sys.argv else None
        main(quick, old)
