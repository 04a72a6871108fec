"""Shared helpers of the benchmark scripts: timing, machine name, RESULTS.md sections.

Imported by the scripts of this folder (run as scripts, the folder is first on ``sys.path``)
it imports nothing but the standard library and jax.
"""

from __future__ import annotations

import os
import pathlib
import platform
import statistics
import time

import jax

RESULTS = pathlib.Path(
    os.environ.get("XBAR_RESULTS", pathlib.Path(__file__).with_name("RESULTS.md"))
)
"""The file the scripts write their sections into: ``benchmarks/RESULTS.md``, or the file
named by the environment variable ``XBAR_RESULTS`` (for trial runs)."""


def median_time(fn, repeats: int) -> float:
    """Median wall time [s] of ``fn()`` over ``repeats`` calls after one warm-up call
    (compilation), each waited for with ``jax.block_until_ready``."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _read() -> str:
    return RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"


def _bounds(text: str, heading: str) -> tuple[int, int]:
    """Start of ``heading`` and end of its section (next ``## `` heading or end of text)."""
    start = text.index(heading + "\n")
    nxt = text.find("\n## ", start + len(heading))
    return start, len(text) if nxt < 0 else nxt


def append_to_section(heading: str, entry: str, intro: str = "") -> None:
    """Add ``entry`` at the end of section ``heading`` of RESULTS.md (created with
    ``intro`` at the end of the file if missing); other sections stay as they are."""
    text = _read()
    if heading + "\n" not in text:
        text = text.rstrip("\n") + f"\n\n{heading}\n" + (f"\n{intro}\n" if intro else "")
    _, end = _bounds(text, heading)
    text = text[:end].rstrip("\n") + "\n\n" + entry.strip("\n") + "\n" + text[end:]
    RESULTS.write_text(text)


def replace_section(heading: str, body: str) -> None:
    """Replace section ``heading`` of RESULTS.md with ``body`` (or append it)."""
    text = _read()
    new = heading + "\n\n" + body.strip("\n") + "\n"
    if heading + "\n" not in text:
        text = text.rstrip("\n") + "\n\n" + new
    else:
        start, end = _bounds(text, heading)
        text = text[:start] + new + text[end:]
    RESULTS.write_text(text)
