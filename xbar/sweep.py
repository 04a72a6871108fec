"""Variability sweeps: one function over a parameter grid and many device instances.

A co-design question ("how does accuracy fall with device-to-device spread, read noise and
drift time?") is a function ``f(params, key) -> {name: array}`` evaluated at every point of
a grid of named parameters and for ``n_seeds`` random device instances per point.
:func:`sweep` runs it and returns an ``xarray.Dataset`` with one dimension per grid axis
plus ``seed`` (plus any dimensions of the outputs).

Random numbers. Seed ``s`` receives ``jax.random.fold_in(key, s)`` at every grid point:
the same seed draws the same device instance everywhere (common random numbers), so the
difference between two grid points is not blurred by drawing new devices for each; the
seeds are independent of each other. A result depends only on ``(params, seed, key)``,
never on how the sweep was cut into chunks or where a chunk ran.

Execution. The ``(grid point, seed)`` items are cut into rectangular chunks of about
``chunk_size`` items (all seeds of a point first, then along the grid axes from the last).
Each chunk is one call of one compiled function (``jax.vmap`` over the chunk, or
``jax.lax.map(..., batch_size=k)`` to bound memory), padded to the full chunk size so that
it compiles once. Then:

* one device: chunks run one after another;
* several local devices (GPUs, or host devices forced with
  ``XLA_FLAGS=--xla_force_host_platform_device_count=n``): chunks are dispatched round-robin,
  one per device at a time, and run concurrently;
* ``client=`` a ``dask.distributed.Client``: each missing chunk is one task; the worker
  process imports JAX, compiles the function once (cached per worker) and, with a store,
  writes its own region and returns a small status. Workers must be separate processes that
  start fresh (``LocalCluster(processes=True)`` spawns them; never fork a process that has
  JAX loaded). ``f`` travels to the workers with cloudpickle: a module-level function is
  sent by reference and must be importable there (the usual case: it lives in an installed
  package or a module on the workers' path); to send a function of a local script or a
  notebook by value, ``cloudpickle.register_pickle_by_value(module)`` first.

Storage (``store=`` a path). The Zarr store is laid out first (all coordinates and metadata,
no data), each chunk is written to its own region aligned with the Zarr chunks, and a
per-chunk ``sweep_done`` flag is set after the data (:mod:`xbar._sweep_store`). An
interrupted sweep re-run with the same arguments recomputes only the chunks not marked
done; re-run with different arguments against the same store, it raises ``ValueError``
naming what differs and leaves the store untouched. The fingerprint covers the grid, the
seeds, the key, the chunk layout, the output shapes and dtypes, the name of ``f`` and the
user ``config``; it cannot see an edit of ``f``'s body, so give a new store (or a changed
``config``) after changing the model.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _sweep_store

__all__ = ["sweep"]


_COMPILED: dict[tuple, Callable] = {}


@dataclasses.dataclass(frozen=True, eq=False)
class _Plan:
    """Everything a chunk needs (sent to Dask workers)."""

    f: Callable
    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    static: tuple[bool, ...]
    n_seeds: int
    key_data: np.ndarray
    key_impl: str
    chunk_shape: tuple[int, ...]  # per dimension, the seed axis last
    batch_size: int | None
    x64: bool
    fingerprint: str
    f_digest: str  # SHA-256 of cloudpickle(f): the same function in every process
    # compiled chunk functions, one per static value (filled where the plan runs: in this
    # process, or once per Dask worker, which holds one copy of the scattered plan)
    compiled: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values) + (self.n_seeds,)

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / c) for n, c in zip(self.sizes, self.chunk_shape, strict=True))

    @property
    def n_chunks(self) -> int:
        return math.prod(self.chunk_grid)

    def region(self, cid: int) -> tuple[slice, ...]:
        idx = np.unravel_index(cid, self.chunk_grid)
        return tuple(
            slice(int(i) * c, min((int(i) + 1) * c, n))
            for i, c, n in zip(idx, self.chunk_shape, self.sizes, strict=True)
        )

    def inputs(self, cid: int):
        """(static values, traced params, seeds, block shape) of chunk ``cid``, padded."""
        region = self.region(cid)
        block = tuple(s.stop - s.start for s in region)
        starts = np.array([s.start for s in region])[:, None]
        idx = np.indices(block).reshape(len(block), -1) + starts
        n_full = math.prod(self.chunk_shape)
        # pad with copies of the last item so that every chunk has one shape (one compile)
        idx = np.pad(idx, ((0, 0), (0, n_full - idx.shape[1])), mode="edge")
        static = tuple(
            _python(self.values[d][region[d].start])
            for d in range(len(self.names))
            if self.static[d]
        )
        params = {
            name: self.values[d][idx[d]] for d, name in enumerate(self.names) if not self.static[d]
        }
        return static, params, idx[-1].astype(np.uint32), block

    def function(self, static: tuple) -> Callable:
        if static not in self.compiled:
            # shared by sweeps of the same function (a repeated or resumed sweep compiles
            # once per process, and once per Dask worker across sweeps)
            k = (self.f_digest, self.names, static, self.key_data.tobytes(), self.key_impl,
                 self.batch_size, self.x64)  # fmt: skip
            if k not in _COMPILED:
                _COMPILED[k] = _compile(self, static)
            self.compiled[static] = _COMPILED[k]
        return self.compiled[static]


def _python(v):
    return v.item() if isinstance(v, np.generic) else v


def _compile(plan: _Plan, static: tuple) -> Callable:
    key = jax.random.wrap_key_data(jnp.asarray(plan.key_data), impl=plan.key_impl)
    static_names = [n for n, s in zip(plan.names, plan.static, strict=True) if s]
    fixed = dict(zip(static_names, static, strict=True))

    def one(params, seed):
        p = {n: (fixed[n] if n in fixed else params[n]) for n in plan.names}
        out = plan.f(p, jax.random.fold_in(key, seed))
        return {k: jnp.asarray(v) for k, v in out.items()}

    def chunk(params, seeds):
        if plan.batch_size is None:
            return jax.vmap(one)(params, seeds)
        return jax.lax.map(lambda a: one(*a), (params, seeds), batch_size=plan.batch_size)

    return jax.jit(chunk)


def _finish(out: dict, n_valid: int, block: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[:n_valid].reshape(block + v.shape[1:]) for k, v in out.items()}


def _dask_task(plan: _Plan, cid: int, store: str | None):
    """One chunk on a Dask worker: compile (once per worker), compute, store or return."""
    jax.config.update("jax_enable_x64", plan.x64)
    t0 = time.perf_counter()
    static, params, seeds, block = plan.inputs(cid)
    out = _finish(plan.function(static)(params, seeds), math.prod(block), block)
    if store is None:
        return cid, out
    _sweep_store.Writer(store).write(cid, plan.region(cid), out)
    return cid, time.perf_counter() - t0


def _chunk_shape(sizes, static, chunk_size: int) -> tuple[int, ...]:
    shape, left = [], chunk_size
    for n, is_static in zip(reversed(sizes), reversed(static), strict=True):
        c = 1 if is_static else max(1, min(n, left))
        shape.append(c)
        left = max(1, left // c)
    return tuple(reversed(shape))


def _key_data(key) -> tuple[np.ndarray, str]:
    if key is None:
        key = 0
    if isinstance(key, int | np.integer):
        key = jax.random.key(int(key))
    if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    if key.shape != ():
        raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
    impl = str(jax.random.key_impl(key))
    return np.asarray(jax.random.key_data(key)), impl


def _jsonable(v):
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray | np.generic):
        return _jsonable(v.tolist())
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return repr(v)


def sweep(
    f: Callable[[dict[str, Any], jax.Array], Mapping[str, Any]],
    grid: Mapping[str, Sequence],
    n_seeds: int,
    *,
    store=None,
    client=None,
    chunk_size: int = 256,
    batch_size: int | None = None,
    key=None,
    static: Sequence[str] = (),
    dims: Mapping[str, Sequence[str]] | None = None,
    units: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    callback: Callable[[int, int, int], None] | None = None,
):
    """Evaluate ``f(params, key)`` on every grid point and seed; see the module docstring.

    Args:
        f: ``f(params, key) -> {name: array}``; ``params`` maps every grid name to one value
            (a traced scalar, or the Python value for static axes), ``key`` is the seed's
            PRNG key. Must be traceable (it is ``vmap``-ed and ``jit``-ted).
        grid: ``{name: 1-D values}``; the dataset's dimensions, in this order, then ``seed``.
            May be empty (seeds only).
        n_seeds: device instances per grid point (``>= 1``).
        store: path of a Zarr store to write to and resume from (``None``: in memory).
        client: a ``dask.distributed.Client``; chunks become tasks on its workers.
        chunk_size: items (point x seed) per chunk, the unit of compilation, storage and
            resumption (``>= 1``). Zarr chunks equal the compute chunks.
        batch_size: evaluate a chunk with ``jax.lax.map(..., batch_size=batch_size)``
            (bounds memory); ``None`` vmaps the whole chunk.
        key: ``jax.random`` key or integer seed of the whole sweep (default 0).
        static: grid names whose values are Python constants to ``f`` (they set shapes or
            pick a model: ADC bits, a device preset name). Axes of non-numeric values are
            static anyway; a chunk never spans two static values (one compile per value).
        dims: names of the output dimensions, ``{output: (dim, ...)}`` (default
            ``{output}_{i}``).
        units: ``{variable or coordinate name: unit}``, stored as ``units`` attributes.
        config: JSON-like description of the study (e.g. the TOML of ``xbar sweep``),
            stored in the attributes and part of the fingerprint.
        meta: further JSON-like metadata (device presets and their parameters, ...),
            stored in the attributes, not part of the fingerprint.
        devices: local JAX devices to spread chunks over (default all local devices of
            the default backend).
        progress: show a progress bar (chunks done, time left).
        callback: ``callback(chunk_id, n_done, n_chunks)`` called on the host after each
            chunk is finished (and stored).

    Returns:
        ``xarray.Dataset`` with the outputs over ``(*grid, "seed", *output dims)``; with a
        ``store`` it is the store opened lazily (``.load()`` to read it into memory). Its
        attributes hold the metadata (xbar and JAX versions, key, config, fingerprint,
        ``meta``); ``sweep_chunks_computed`` / ``sweep_chunks_total`` say how many chunks
        this call computed.
    """
    import xarray as xr

    if not callable(f):
        raise ValueError(f"f must be callable, got {f!r}")
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid must be a mapping {{name: values}}, got {type(grid).__name__}")
    if int(n_seeds) != n_seeds or n_seeds < 1:
        raise ValueError(f"n_seeds must be an integer >= 1, got {n_seeds!r}")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
    names = tuple(str(n) for n in grid)
    values = []
    for n in names:
        v = np.asarray(grid[n])
        if v.ndim != 1 or v.size == 0:
            raise ValueError(f"grid[{n!r}] must be a non-empty 1-D sequence, got shape {v.shape}")
        values.append(v)
    if "seed" in names:
        raise ValueError("grid name 'seed' is reserved for the device-instance dimension")
    for s in static:
        if s not in names:
            raise ValueError(f"static name {s!r} is not a grid name; grid names: {list(names)}")
    is_static = tuple(
        n in static or not (np.issubdtype(v.dtype, np.number) or v.dtype == bool)
        for n, v in zip(names, values, strict=True)
    )
    key_data, key_impl = _key_data(key)
    n_seeds = int(n_seeds)
    sizes = tuple(len(v) for v in values) + (n_seeds,)
    chunk_shape = _chunk_shape(sizes, is_static + (False,), int(chunk_size))

    # output shapes and dtypes from one abstract evaluation at the first grid point
    fixed = {n: _python(v[0]) for n, v, s in zip(names, values, is_static, strict=True) if s}
    traced = {
        n: jnp.asarray(v[0]) for n, v, s in zip(names, values, is_static, strict=True) if not s
    }
    k0 = jax.random.wrap_key_data(jnp.asarray(key_data), impl=key_impl)
    shapes = jax.eval_shape(lambda p: f({n: {**fixed, **p}[n] for n in names}, k0), traced)
    if not isinstance(shapes, Mapping) or not shapes:
        raise ValueError(
            f"f must return a non-empty dict {{name: array}}, got {type(shapes).__name__}"
        )
    dims = dict(dims or {})
    out_dims = {}
    for name, sds in shapes.items():
        if name in names or name == "seed":
            raise ValueError(f"output name {name!r} clashes with a grid dimension")
        d = tuple(dims.get(name, (f"{name}_{i}" for i in range(len(sds.shape)))))
        if len(d) != len(sds.shape):
            raise ValueError(
                f"dims[{name!r}] = {d} names {len(d)} dimensions, the output has {len(sds.shape)}"
            )
        out_dims[name] = d

    fn = getattr(f, "__qualname__", type(f).__qualname__)
    sweep_config = {
        "function": f"{getattr(f, '__module__', '?')}.{fn}",
        "grid": {n: _jsonable(v) for n, v in zip(names, values, strict=True)},
        "static": [n for n, s in zip(names, is_static, strict=True) if s],
        "n_seeds": n_seeds,
        "key": _jsonable(key_data),
        "key_impl": key_impl,
        "chunk_shape": list(chunk_shape),
        "outputs": {
            k: {"shape": list(s.shape), "dtype": str(s.dtype), "dims": list(out_dims[k])}
            for k, s in shapes.items()
        },
        "config": _jsonable(dict(config or {})),
    }
    fp = _sweep_store.fingerprint(sweep_config)
    plan = _Plan(
        f=f,
        names=names,
        values=tuple(values),
        static=is_static,
        n_seeds=n_seeds,
        key_data=key_data,
        key_impl=key_impl,
        chunk_shape=chunk_shape,
        batch_size=None if batch_size is None else int(batch_size),
        x64=bool(jax.config.jax_enable_x64),
        fingerprint=fp,
        f_digest=_digest(f),
    )
    attrs = _attrs(sweep_config, meta)
    units = dict(units or {})
    coords = {n: v for n, v in zip(names, values, strict=True)}
    coords["seed"] = np.arange(n_seeds)
    dim_names = names + ("seed",)

    if store is not None:
        import dask.array as da

        data = {
            k: (
                dim_names + out_dims[k],
                da.full(
                    sizes + s.shape,
                    _fill(s.dtype),
                    dtype=s.dtype,
                    chunks=chunk_shape + s.shape,
                ),
                {"units": units[k]} if k in units else {},
            )
            for k, s in shapes.items()
        }
        data[_sweep_store.DONE] = (
            (_sweep_store.CHUNK_DIM,),
            da.zeros(plan.n_chunks, dtype=np.int8, chunks=1),
            {"description": "1 once the chunk's data are written"},
        )
        template = xr.Dataset(data, coords=coords, attrs=attrs)
        for c, u in units.items():
            if c in template.coords:
                template[c].attrs["units"] = u
        done = _sweep_store.check_or_create(store, template, sweep_config)
        writer = _sweep_store.Writer(store)
        results = None
    else:
        done = np.zeros(plan.n_chunks, dtype=bool)
        writer = None
        results = {k: np.full(sizes + s.shape, _fill(s.dtype), s.dtype) for k, s in shapes.items()}

    todo = [int(c) for c in np.flatnonzero(~done)]
    n_done = plan.n_chunks - len(todo)

    if progress:
        from tqdm.auto import tqdm
    else:  # tqdm.auto warns in notebooks without ipywidgets, even for a disabled bar
        from tqdm import tqdm

    bar = tqdm(
        total=plan.n_chunks, initial=n_done, unit="chunk", desc="sweep", disable=not progress
    )

    def finished(cid: int, out: dict | None) -> None:
        nonlocal n_done
        if out is not None:
            region = plan.region(cid)
            if writer is not None:
                writer.write(cid, region, out)
            else:
                for k, v in out.items():
                    results[k][region] = v
        n_done += 1
        bar.update(1)
        if callback is not None:
            callback(cid, n_done, plan.n_chunks)

    try:
        if client is not None:
            _run_dask(plan, todo, client, None if store is None else str(store), finished)
        else:
            _run_local(plan, todo, devices, finished)
    finally:
        bar.close()

    if store is not None:
        ds = xr.open_zarr(str(store), consolidated=False).drop_vars(_sweep_store.DONE)
    else:
        ds = xr.Dataset(
            {
                k: (dim_names + out_dims[k], v, {"units": units[k]} if k in units else {})
                for k, v in results.items()
            },
            coords=coords,
            attrs=attrs,
        )
        ds.attrs["sweep_fingerprint"] = fp
        for c, u in units.items():
            if c in ds.coords:
                ds[c].attrs["units"] = u
    ds.attrs["sweep_chunks_computed"] = len(todo)
    ds.attrs["sweep_chunks_total"] = plan.n_chunks
    return ds


def _digest(f) -> str:
    import hashlib

    import cloudpickle

    try:
        return hashlib.sha256(cloudpickle.dumps(f)).hexdigest()
    except Exception:  # not picklable: fine in this process (the Dask path will say so)
        return f"id:{id(f)}"


def _fill(dtype):
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating):
        return np.nan
    return 0


def _attrs(sweep_config: dict, meta) -> dict:
    import json
    import sys

    attrs = {
        "xbar_version": _version(),
        "jax_version": jax.__version__,
        "python_version": sys.version.split()[0],
        "jax_backend": jax.default_backend(),
        "sweep_function": sweep_config["function"],
        "sweep_key": json.dumps(sweep_config["key"]),
        "sweep_n_seeds": sweep_config["n_seeds"],
    }
    for k, v in dict(meta or {}).items():
        v = _jsonable(v)
        attrs[str(k)] = v if isinstance(v, str | int | float | bool) else json.dumps(v)
    return attrs


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xbar")
    except PackageNotFoundError:
        return "unknown"


def _run_local(plan: _Plan, todo: list[int], devices, finished) -> None:
    devs = list(devices) if devices is not None else jax.local_devices()
    pending: collections.deque = collections.deque()
    for i, cid in enumerate(todo):
        static, params, seeds, block = plan.inputs(cid)
        dev = devs[i % len(devs)]
        # inputs committed to a device make the compiled chunk run there; dispatch is
        # asynchronous, so one chunk per device is in flight at a time
        args = jax.device_put((params, seeds), dev)
        pending.append((cid, block, plan.function(static)(*args)))
        if len(pending) >= len(devs):
            c, b, out = pending.popleft()
            finished(c, _finish(out, math.prod(b), b))
    while pending:
        c, b, out = pending.popleft()
        finished(c, _finish(out, math.prod(b), b))


def _run_dask(plan: _Plan, todo: list[int], client, store: str | None, finished) -> None:
    from distributed import as_completed

    if not todo:
        return
    remote_plan = client.scatter(plan, broadcast=True)
    futures = client.map(_dask_task, [remote_plan] * len(todo), todo, store=store, pure=False)
    for fut in as_completed(futures):
        cid, res = fut.result()
        finished(cid, res if store is None else None)
