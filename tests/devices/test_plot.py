"""devices.plot: the helpers draw what they are given and save non-empty figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from xbar import devices  # noqa: E402


def test_iv_loop_lines_and_floor(tmp_path):
    v = np.linspace(-1, 1, 21)
    i = np.stack([1e-3 * np.sinh(v), 1e-5 * np.sinh(v)], axis=1)
    ax = devices.plot.iv_loop(v, i, labels=["LRS", "HRS"])
    assert len(ax.lines) == 2
    assert ax.get_yscale() == "log"
    y = ax.lines[0].get_ydata()
    assert np.all(y > 0) and y[10] == 1e-12  # |I(0)| drawn at the floor
    np.testing.assert_allclose(y[-1], 1e-3 * np.sinh(1.0))
    path = tmp_path / "iv.png"
    ax.figure.savefig(path)
    assert path.stat().st_size > 1000
    plt.close(ax.figure)


def test_pulse_response_on_given_axes(tmp_path):
    fig, ax = plt.subplots()
    g = np.linspace(1e-5, 1e-4, 30)
    out = devices.plot.pulse_response(g, ax=ax, unit="uS")
    assert out is ax and len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), g * 1e6)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(1, 31))
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    plt.close(fig)


def test_variability_spread_bars_and_cdf(tmp_path):
    rng = np.random.default_rng(0)
    lrs, hrs = np.exp(rng.normal(7, 0.2, 500)), np.exp(rng.normal(12, 0.3, 500))
    ax_h, ax_c = devices.plot.variability_spread([lrs, hrs], labels=["LRS", "HRS"], bins=25)
    assert len(ax_h.patches) == 50  # 25 bars per population
    heights = [p.get_height() for p in ax_h.patches]
    assert sum(heights) == 1000
    assert len(ax_c.lines) == 2
    np.testing.assert_allclose(ax_c.lines[0].get_ydata()[-1], 1.0)
    ax_h.figure.savefig(tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000
    plt.close(ax_h.figure)
