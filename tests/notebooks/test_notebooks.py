"""The notebooks: each jupytext source runs top to bottom in fast mode (XBAR_FAST=1), and
the committed executed ``.ipynb`` beside it holds the same cells, with outputs."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

FOLDER = pathlib.Path(__file__).parents[2] / "notebooks"
SOURCES = sorted(FOLDER.glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


def test_every_notebook_has_a_source_and_an_executed_copy():
    assert SOURCES, "no notebook sources in notebooks/"
    stray = sorted(p.name for p in FOLDER.glob("*.ipynb") if not p.with_suffix(".py").exists())
    assert not stray, f"notebooks without a jupytext source: {stray}"
    for src in SOURCES:
        ipynb = src.with_suffix(".ipynb")
        assert ipynb.exists(), f"{src.name}: no executed {ipynb.name} beside it"
        committed = nbformat.read(ipynb, as_version=4)
        # in sync: the same markdown and code cells, in the same order
        assert _cells(committed) == _cells(jupytext.read(src)), (
            f"{ipynb.name} is out of sync with {src.name}: "
            f"run `jupytext --to ipynb --execute {src.relative_to(FOLDER.parent)}`"
        )
        code = [c for c in committed.cells if c.cell_type == "code" and c.source.strip()]
        assert all(c.get("execution_count") for c in code), f"{ipynb.name} is not executed"
        errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{ipynb.name} was committed with an error: {errors[0].ename}"
        figures = [
            o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})
        ]
        assert figures, f"{ipynb.name} shows no figure"


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_runs_in_fast_mode(src, tmp_path, monkeypatch):
    monkeypatch.setenv("XBAR_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("XBAR_NOTEBOOK_OUT", str(tmp_path))
    nb = jupytext.read(src)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
