"""The ``xbar demo`` console command: runs end to end, prints its table, writes PNGs."""

import re

from xbar import cli


def test_demo_prints_table_and_writes_figures(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) >= 6, pngs
    assert all((tmp_path / p).stat().st_size > 5_000 for p in pngs)
    # the demo's headline numbers are physics checked elsewhere; here: the table shows them
    r_lrs = float(re.search(r"R_LRS at 0.1 V \(gap 0.2 nm\)\s+([\d.]+) Ω", text).group(1))
    assert abs(r_lrs - 541.8) / 541.8 < 0.05  # reference V1
    v_set = float(re.search(r"DC SET voltage \(4 ms ramp\)\s+([\d.]+) V", text).group(1))
    assert abs(v_set - 1.39) / 1.39 < 0.05  # reference V2/V3
    assert "figures written to" in text
