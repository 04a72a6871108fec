"""The distribution installs one namespace: ``xbar`` with ``xbar.devices``, ``xbar.networks``
and ``xbar.learning``, and no generic top-level ``devices``, ``networks`` or ``learning``."""

import ast
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).parents[2]
LAYERS = {"devices": "devices", "networks": "networks", "learning": "learning"}


def test_wheel_holds_one_namespace(tmp_path):
    # build the wheel with the installed setuptools (no download), as `pip install .` does
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        pytest.fail(f"pip wheel failed: {out.stderr[-2000:]}")
    (wheel,) = tmp_path.glob("xbar-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"xbar"}, f"top-level entries besides xbar: {sorted(tops - {'xbar'})}"
    for folder in LAYERS:
        sources = sorted(
            p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*.py")
        )
        packed = sorted(
            n[len(f"xbar/{folder}/") :]
            for n in names
            if n.startswith(f"xbar/{folder}/") and n.endswith(".py")
        )
        assert packed == sources, f"{folder}/ is not packed whole as xbar.{folder}"
    xbar_sources = {p.name for p in (ROOT / "xbar").glob("*.py")}
    assert xbar_sources <= {n[len("xbar/") :] for n in names if n.count("/") == 1}


def test_installed_names_resolve_to_the_folders(tmp_path):
    # run outside the repository, where the working directory is not on the path
    code = (
        "import importlib.util, pathlib, xbar\n"
        "for f in ('devices', 'networks', 'learning'):\n"
        "    m = getattr(xbar, f)\n"
        "    assert pathlib.Path(m.__file__).parent.name == f, m.__file__\n"
        "    assert importlib.util.find_spec(f) is None, f'top-level {f} importable'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_no_module_imports_the_old_top_level_names():
    bad = []
    for folder in ("devices", "xbar", "networks", "learning", "tests", "benchmarks", "notebooks"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                bad += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in LAYERS
                ]
    assert not bad, "imports of the old top-level names: " + "; ".join(bad)
