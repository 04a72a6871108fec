"""Write a crossbar read as a SPICE netlist, run ngspice in batch mode, parse the result.

Independent of ``xbar``: every resistor, cell and source is an explicit netlist element
following the circuit convention of ``DESIGN.md``.  The operating point is written as an
ASCII raw file (16 significant digits).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

NGSPICE = shutil.which("ngspice")


def netlist(
    G,
    v_in,
    r_wl,
    r_bl,
    r_src=0.0,
    r_sense=0.0,
    sinh_v0: float | None = None,
    raw_path: str = "out.raw",
    v_col=0.0,
) -> str:
    """SPICE deck for one input vector.  ``r_wl``, ``r_bl``: scalars or (M, N) arrays.

    Cells are resistors ``1/G`` (linear) or behavioural sources
    ``I = G v0 sinh(V/v0)`` when ``sinh_v0`` is given.  The sense amplifier is a 0 V source
    whose current ``i(vs_j)`` (into its + terminal) is ``i_out[j]``; it holds its column
    at ``v_col[j]`` (0 V for a read).
    """
    G = np.asarray(G, float)
    M, N = G.shape
    r_wl = np.broadcast_to(np.asarray(r_wl, float), (M, N))
    r_bl = np.broadcast_to(np.asarray(r_bl, float), (M, N))
    r_src = np.broadcast_to(np.asarray(r_src, float), (M,))
    r_sense = np.broadcast_to(np.asarray(r_sense, float), (N,))
    v_col = np.broadcast_to(np.asarray(v_col, float), (N,))
    lines = ["* crossbar read"]
    for i in range(M):
        lines.append(f"vin{i} in{i} 0 {v_in[i]:.17g}")
        drv = f"in{i}"
        if r_src[i] > 0:
            lines.append(f"rsrc{i} in{i} d{i} {r_src[i]:.17g}")
            drv = f"d{i}"
        for k in range(N):
            a = drv if k == 0 else f"w{i}_{k - 1}"
            lines.append(f"rw{i}_{k} {a} w{i}_{k} {r_wl[i, k]:.17g}")
    for j in range(N):
        for i in range(M):
            b = f"b{i + 1}_{j}" if i < M - 1 else f"s{j}"
            lines.append(f"rb{i}_{j} b{i}_{j} {b} {r_bl[i, j]:.17g}")
        amp = f"s{j}"
        if r_sense[j] > 0:
            lines.append(f"rsense{j} s{j} a{j} {r_sense[j]:.17g}")
            amp = f"a{j}"
        lines.append(f"vs{j} {amp} 0 {v_col[j]:.17g}")
    for i in range(M):
        for j in range(N):
            if sinh_v0 is None:
                lines.append(f"rc{i}_{j} w{i}_{j} b{i}_{j} {1.0 / G[i, j]:.17g}")
            else:
                lines.append(
                    f"bc{i}_{j} w{i}_{j} b{i}_{j} I = {G[i, j] * sinh_v0:.17g}"
                    f"*sinh(V(w{i}_{j},b{i}_{j})/{sinh_v0:.17g})"
                )
    lines += [
        ".options reltol=1e-11 abstol=1e-18 vntol=1e-13 itl1=500",
        ".control",
        "op",
        "set filetype=ascii",
        f"write {raw_path} all",
        ".endc",
        ".end",
    ]
    return "\n".join(lines) + "\n"


def _parse_raw(path: str) -> dict[str, float]:
    with open(path) as f:
        text = f.read()
    head, values = text.split("Values:\n")
    names = []
    in_vars = False
    for line in head.splitlines():
        if line.startswith("Variables:"):
            in_vars = True
            continue
        if in_vars and line.strip():
            names.append(line.split()[1].lower())
    nums = values.split()
    # first token is the point index
    vals = [float(x) for x in nums[1 : 1 + len(names)]]
    return dict(zip(names, vals, strict=True))


def run(G, v_in, r_wl, r_bl, r_src=0.0, r_sense=0.0, sinh_v0=None, timeout=120, v_col=0.0):
    """Return ``(i_out (N,), v_wl (M, N), v_bl (M, N))`` computed by ngspice."""
    if NGSPICE is None:
        raise RuntimeError("ngspice not found")
    G = np.asarray(G, float)
    M, N = G.shape
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "out.raw")
        cir = os.path.join(d, "xbar.cir")
        with open(cir, "w") as f:
            f.write(
                netlist(G, np.asarray(v_in, float), r_wl, r_bl, r_src, r_sense, sinh_v0, raw, v_col)
            )
        proc = subprocess.run(
            [NGSPICE, "-b", cir], capture_output=True, text=True, timeout=timeout, cwd=d
        )
        if not os.path.exists(raw):
            raise RuntimeError(f"ngspice failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        res = _parse_raw(raw)
    i_out = np.array([res[f"i(vs{j})"] for j in range(N)])
    v_wl = np.array([[res[f"v(w{i}_{j})"] for j in range(N)] for i in range(M)])
    v_bl = np.array([[res[f"v(b{i}_{j})"] for j in range(N)] for i in range(M)])
    return i_out, v_wl, v_bl
