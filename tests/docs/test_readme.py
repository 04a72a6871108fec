"""The README's examples run as written and print what its text says they print."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _run(code: str, cwd) -> str:
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["MPLBACKEND"] = "Agg"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _percentages(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"([0-9.]+)%", text)]


def test_readme_has_its_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path):
    code = BLOCKS[index]
    out = _run(code, tmp_path)
    if "cells in tolerance" in code:
        success, error = _percentages(out.splitlines()[-1])[:2]
        assert success >= 99.0, out  # the presets' recipes reach tolerance on >= 99 % of cells
        # the text beside each example says what the error is made of (IR drop, drift, noise)
        assert 5.0 <= error <= 20.0, out
    if "networks.measure" in code:
        ideal, hw = (int(v) for v in re.findall(r"ideal (\d+), PCM crossbars (\d+)", out)[0])
        assert ideal > 0 and abs(hw - ideal) <= 0.5 * ideal, out
