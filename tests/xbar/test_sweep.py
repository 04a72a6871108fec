"""xbar.sweep: same numbers on every execution path; resumable, refusing Zarr stores.

The reference is a plain Python loop over every grid point and seed calling the jitted
function one item at a time with the documented per-seed key ``fold_in(key, seed)``: it
shares no code with the sweep's chunking, padding, vmap, sharding or storage.
"""

import hashlib
import itertools
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
import zarr
from _sweep_cases import CHUNK, GRID, N_SEEDS, mvm_error

from xbar.sweep import sweep

HERE = pathlib.Path(__file__).parent
KEY = 7


@pytest.fixture(scope="module")
def serial():
    f = jax.jit(mvm_error)
    key = jax.random.key(KEY)
    names = list(GRID)
    shape = tuple(len(v) for v in GRID.values()) + (N_SEEDS,)
    out = {"y": np.zeros(shape + (4,)), "rmse": np.zeros(shape)}
    for idx in itertools.product(*(range(len(v)) for v in GRID.values())):
        p = {n: GRID[n][i] for n, i in zip(names, idx, strict=True)}
        for s in range(N_SEEDS):
            r = f(p, jax.random.fold_in(key, s))
            out["y"][idx + (s,)] = r["y"]
            out["rmse"][idx + (s,)] = r["rmse"]
    return out


def _check(ds, ref):
    if hasattr(ds, "dims"):
        assert ds["rmse"].dims == ("sigma", "noise", "bits", "seed")
    np.testing.assert_allclose(np.asarray(ds["rmse"]), ref["rmse"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(ds["y"]), ref["y"], rtol=1e-12, atol=1e-15)


def _run(script: str, tmp_path, env=None, **kw):
    path = os.pathsep.join([str(HERE)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=full_env,
        stdout=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_vmapped_chunks_and_lax_map_match_serial(serial):
    ds = sweep(mvm_error, GRID, N_SEEDS, key=KEY, chunk_size=CHUNK, progress=False)
    _check(ds, serial)
    assert ds.attrs["sweep_chunks_computed"] == 8
    # chunks that straddle grid points and need padding (100 items: 64 seeds x 1 point)
    # and lax.map batches inside a chunk give the same numbers
    ds = sweep(mvm_error, GRID, N_SEEDS, key=KEY, chunk_size=48, batch_size=16, progress=False)
    _check(ds, serial)


def test_sharded_over_two_host_devices(serial, tmp_path):
    proc = _run(
        f"""
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        assert len(jax.devices()) == 2, jax.devices()
        from xbar.sweep import sweep
        from _sweep_cases import CHUNK, GRID, N_SEEDS, mvm_error
        ds = sweep(mvm_error, GRID, N_SEEDS, key={KEY}, chunk_size=CHUNK, progress=False)
        np.savez("out.npz", y=ds["y"].values, rmse=ds["rmse"].values)
        """,
        tmp_path,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert proc.wait(timeout=120) == 0
    _check(dict(np.load(tmp_path / "out.npz")), serial)


def test_dask_local_cluster_two_workers(serial, tmp_path):
    distributed = pytest.importorskip("distributed")
    import _sweep_cases
    import cloudpickle

    # workers are fresh spawned processes: they import JAX themselves; the function of
    # this test-only module travels by value
    cloudpickle.register_pickle_by_value(_sweep_cases)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ds = sweep(
            mvm_error,
            GRID,
            N_SEEDS,
            key=KEY,
            chunk_size=CHUNK,
            client=client,
            store=tmp_path / "dask.zarr",
            progress=False,
        )
        _check(ds.load(), serial)
    cloudpickle.unregister_pickle_by_value(_sweep_cases)


def _snapshot(path: pathlib.Path) -> dict:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_killed_sweep_resumes_and_mismatch_is_refused(serial, tmp_path):
    store = tmp_path / "sweep.zarr"
    proc = _run(
        f"""
        import time, jax
        jax.config.update("jax_enable_x64", True)
        from xbar.sweep import sweep
        from _sweep_cases import CHUNK, GRID, N_SEEDS, mvm_error

        def slow(cid, n_done, n_total):
            print("done", n_done, flush=True)
            time.sleep(0.5)

        sweep(mvm_error, GRID, N_SEEDS, key={KEY}, chunk_size=CHUNK,
                   store="{store}", progress=False, callback=slow)
        """,
        tmp_path,
    )
    for line in proc.stdout:
        if line.strip() == "done 3":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done_before = np.asarray(zarr.open_group(str(store), mode="r")["sweep_done"][...])
    n_done = int(done_before.sum())
    assert 3 <= n_done < 8

    ds = sweep(mvm_error, GRID, N_SEEDS, key=KEY, chunk_size=CHUNK, store=store, progress=False)
    assert ds.attrs["sweep_chunks_computed"] == 8 - n_done
    assert np.asarray(zarr.open_group(str(store), mode="r")["sweep_done"][...]).all()
    _check(ds.load(), serial)
    assert json.loads(ds.attrs["sweep_config"])["n_seeds"] == N_SEEDS
    assert ds.attrs["xbar_version"]

    before = _snapshot(store)
    with pytest.raises(ValueError, match=r"differs in: .*grid\.sigma"):
        sweep(
            mvm_error,
            {**GRID, "sigma": [0.02, 0.2]},
            N_SEEDS,
            key=KEY,
            chunk_size=CHUNK,
            store=store,
            progress=False,
        )
    with pytest.raises(ValueError, match=r"differs in: .*key"):
        sweep(mvm_error, GRID, N_SEEDS, key=KEY + 1, chunk_size=CHUNK, store=store, progress=False)
    assert _snapshot(store) == before


def test_bad_arguments_name_the_parameter(tmp_path):
    with pytest.raises(ValueError, match="n_seeds"):
        sweep(mvm_error, GRID, 0)
    with pytest.raises(ValueError, match=r"grid\['sigma'\]"):
        sweep(mvm_error, {**GRID, "sigma": []}, 4)
    with pytest.raises(ValueError, match="dict"):
        sweep(lambda p, k: p["sigma"], GRID, 4)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f.txt").write_text("not a store")
    with pytest.raises(ValueError, match="holds no xbar sweep|not a Zarr store"):
        sweep(mvm_error, GRID, 4, store=tmp_path / "x", progress=False)


def test_static_axis_and_units():
    def f(p, key):
        n = p["n"]  # a Python int: sets a shape
        return {"s": jax.random.normal(key, (n,)).sum() * 0 + n}

    ds = sweep(f, {"n": [1, 3]}, 5, static=["n"], units={"s": "A", "n": "1"}, progress=False)
    np.testing.assert_array_equal(ds["s"].values, [[1.0] * 5, [3.0] * 5])
    assert ds["s"].attrs["units"] == "A" and ds["n"].attrs["units"] == "1"


def test_sweep_plots_label_units_log_axes_and_target_region():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from xbar import sweep_plot

    rng = np.random.default_rng(0)
    t = np.logspace(0, 6, 4)
    s = np.array([0.0, 0.1, 0.2])
    acc = (
        1 - s[None, :, None] - 0.01 * np.log10(t)[:, None, None] - rng.uniform(0, 0.05, (4, 3, 16))
    )
    ds = xr.Dataset(
        {"acc": (("t_s", "sigma", "seed"), acc, {"units": "1"})},
        coords={"t_s": ("t_s", t, {"units": "s"}), "sigma": s, "seed": np.arange(16)},
    )
    ok = sweep_plot.meets(ds, "acc", target=0.85, reduce=0.1)
    np.testing.assert_array_equal(ok.values, np.quantile(acc, 0.1, axis=-1) >= 0.85)
    ax = sweep_plot.design_map(ds, "acc", "t_s", "sigma", target=0.85, reduce=0.1)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "t s [s]"  # spans 6 decades
    assert "10 % quantile" in ax.figure.axes[-1].get_ylabel()  # the colour bar says so
    ax = sweep_plot.metric_vs(ds.isel(sigma=0), "acc", "t_s")
    assert ax.get_xscale() == "log" and ax.get_legend() is not None
    ax = sweep_plot.heatmap(ds, "acc", "sigma", "t_s")
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="further dimensions"):
        sweep_plot.metric_vs(ds, "acc", "t_s")
    plt.close("all")
