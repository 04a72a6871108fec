"""The ``xbar`` command: demo table against its references, sweep configs, catalogue, info."""

import pathlib
import re

import pytest

from xbar import cli

EXAMPLES = pathlib.Path(__file__).parents[2] / "examples"


def _number(pattern: str, text: str) -> tuple[float, float]:
    """(xbar value, reference value) of the table row matching ``pattern``."""
    m = re.search(pattern + r"\s+(-?[\d.]+)[^\n]*?\s{2,}≈?\s*(-?[\d.]+)", text)
    assert m, f"row {pattern!r} not in the table:\n{text}"
    return float(m.group(1)), float(m.group(2))


def test_demo_table_matches_references_and_writes_figures(tmp_path, capsys):
    assert cli.main(["demo", "--fast", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    # every row stands beside the reference of the same quantity
    for row, rtol in [
        (r"gap 0.2 nm", 0.01),  # MemTorch r_on
        (r"gap 1.7 nm", 0.01),  # MemTorch r_off
        (r"DC SET voltage \(4 ms ramp\)", 0.05),  # analytic field gate
        (r"DC RESET voltage \(4 ms ramp\)", 0.05),
        (r"programming error σ at G_T = 12.5 µS \(2000 devices\)", 0.1),  # Eq. 3.1, 2000 draws
        (r"256-cell line \(1 Ω, 50 µS\)", 1e-3),  # closed-form ladder
        (r"right after programming \(32 arrays\)", 0.1),  # variance propagation
    ]:
        value, ref = _number(row, text)
        assert abs(value - ref) <= rtol * abs(ref), (row, value, ref)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert {"pcm_set_train.png", "pcm_drift.png", "array_ir_drop.png", "pcm_design_map.png"} <= set(
        pngs
    )
    assert all((tmp_path / p).stat().st_size > 10_000 for p in pngs)
    # the training study: with drift compensation a day costs little against the same
    # crossbars read right after programming; without it, a year costs more than with it
    assert "lifetime.png" in pngs
    day, ref = _number(r"hardware-aware training, 1 day, with drift comp\.", text)
    assert day >= ref - 10.0 and day > 50.0, (day, ref)
    with_dc, _ = _number(r"plain training, 1 year, with drift comp\.", text)
    without_dc, _ = _number(r"plain training, 1 year, without drift comp\.", text)
    assert with_dc >= without_dc - 2.0, (with_dc, without_dc)


def test_version_help_info_devices(capsys):
    for argv in (["--version"], ["--help"], ["demo", "--help"], ["sweep", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"xbar \d+\.\d+", out) and "CONFIG" not in out.split("usage")[0]
    assert cli.main(["info"]) == 0
    info = capsys.readouterr().out
    assert "JAX backend: cpu" in info and re.search(r"jax \d", info)
    assert cli.main(["devices"]) == 0
    text = capsys.readouterr().out
    for name in cli.device_classes():
        assert f"{name}:" in text
    # parameters with their units, read from the models' docstrings
    assert re.search(r"g_max\s+= 2.5e-05\s+.*\[S\]", text)


BASE = """
[device]
model = "PCMStatistical"
[array]
rows = 4
cols = 2
inputs = 4
[grid]
t_s = [20.0, 1e6]
[sweep]
n_seeds = 2
chunk_size = 2
"""


@pytest.mark.parametrize(
    "edit, key",
    [
        (("[array]", "[arrray]"), "'arrray'"),  # unknown table
        (("rows = 4", "rows = 4\ncolumns = 3"), "array.columns"),  # unknown key
        (("rows = 4", 'rows = "four"'), "array.rows"),  # wrong type
        (("n_seeds = 2", "n_seeds = 2.5"), "sweep.n_seeds"),  # wrong type
        (('"PCMStatistical"', '"PCMX"'), "device.model"),  # unknown device
        (("t_s = [20.0, 1e6]", "t_drift = [1.0]"), "grid.t_drift"),  # unknown grid name
    ],
)
def test_bad_config_names_the_key(tmp_path, capsys, edit, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BASE.replace(*edit))
    assert cli.main(["sweep", str(cfg), "--out", str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    assert "valid" in err or "must be" in err, err
    assert not (tmp_path / "s.zarr").exists()


def test_unusable_out_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["demo", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(blocker / "sub") in err
    cfg = tmp_path / "ok.toml"
    cfg.write_text(BASE)
    assert cli.main(["sweep", str(cfg), "--out", str(tmp_path / "no" / "such" / "s.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_examples_are_valid_configs():
    files = sorted(EXAMPLES.glob("*.toml"))
    assert files
    for f in files:
        cfg = cli.load_config(f)
        assert cfg["sweep"]["n_seeds"] >= 1


def test_sweep_command_runs_and_resumes(tmp_path, capsys):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(BASE)
    store = tmp_path / "s.zarr"
    assert cli.main(["sweep", str(cfg), "--out", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 chunks computed" in out
    import xarray as xr

    ds = xr.open_zarr(store)
    err = ds["error"].values
    assert err.shape == (2, 2) and (err > 0).all() and (err < 1).all()
    # drift lowers every conductance: the read after 1e6 s is worse than at 20 s
    assert (err[1] > err[0]).all()
    assert cli.main(["sweep", str(cfg), "--out", str(store), "--no-progress"]) == 0
    assert "0 of 2 chunks computed" in capsys.readouterr().out
    cfg.write_text(BASE.replace("n_seeds = 2", "n_seeds = 3"))
    assert cli.main(["sweep", str(cfg), "--out", str(store), "--no-progress"]) == 2
    assert "n_seeds" in capsys.readouterr().err
