"""The documentation site builds without a warning, and every document cited exists."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[2]
PACKAGES = ("xbar", "devices", "networks", "learning")


def test_cited_documents_are_in_the_repository():
    missing = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for doc in re.findall(r"\bdocs/[\w./-]+\.md\b", path.read_text()):
                if not (ROOT / doc).exists():
                    missing.append(f"{path.relative_to(ROOT)} cites {doc}")
    assert not missing, "\n".join(missing)


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_strict(tmp_path):
    # the notebooks are rendered from their committed outputs, not executed
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    site = tmp_path / "site"
    for page in ("getting-started", "sweeps", "cluster", "api/devices", "api/sweep"):
        assert (site / page / "index.html").exists(), page
    api = (site / "api" / "sweep" / "index.html").read_text()
    assert "resumable" in api.lower() or "fingerprint" in api.lower()  # the docstring made it
    assert list((site / "notebooks").glob("*/index.html")), "no notebook rendered"
