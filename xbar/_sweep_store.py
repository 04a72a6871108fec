"""The on-disk side of :func:`xbar.sweep`: a Zarr store laid out first, filled chunk by chunk.

Layout (one store per sweep):

* every output variable over the dimensions ``(*grid names, "seed", *output dims)``, with its
  Zarr chunks equal to the compute chunks, so each chunk's write covers whole Zarr chunks and
  touches no other chunk's files (misaligned region writes can lose data: xarray issue #8371);
* ``sweep_done`` over ``("sweep_chunk",)``, one Zarr chunk per compute chunk, set to 1 after
  that chunk's data are written. zarr 3 does not write a chunk equal to the fill value, so the
  existence of a data file says nothing; this variable is the record of what finished;
* attributes: ``sweep_fingerprint`` (SHA-256 of the canonical JSON of the sweep's
  configuration), ``sweep_config`` (that JSON), and the metadata of the run.

The template is written once with ``to_zarr(..., compute=False)``: all coordinates and all
metadata, no data. A re-run opens the store, compares fingerprints (refusing on a mismatch
before writing anything), reads ``sweep_done`` and computes only the chunks not marked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

DONE = "sweep_done"
CHUNK_DIM = "sweep_chunk"


def fingerprint(config: dict) -> str:
    """SHA-256 of the canonical JSON of ``config`` (sorted keys, no whitespace)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def check_or_create(store, template, config: dict) -> np.ndarray:
    """Open ``store`` for this sweep and return its done flags (one per chunk).

    A store that does not exist is created from ``template`` (an ``xarray.Dataset`` of
    dask arrays; nothing is computed). An existing store must hold the same sweep
    (same fingerprint); otherwise a ``ValueError`` says which configuration keys differ
    and nothing is written."""
    import zarr

    fp = fingerprint(config)
    path = Path(os.fspath(store))
    if path.exists() and any(path.iterdir()):
        try:
            group = zarr.open_group(str(path), mode="r")
        except Exception as err:
            raise ValueError(
                f"store {str(path)!r} exists and is not a Zarr store; give a new path or delete it"
            ) from err
        attrs = dict(group.attrs)
        if "sweep_fingerprint" not in attrs or DONE not in group:
            raise ValueError(
                f"store {str(path)!r} exists but holds no xbar sweep "
                "(no sweep_fingerprint attribute); give a new path or delete it"
            )
        if attrs["sweep_fingerprint"] != fp:
            try:
                old = json.loads(attrs.get("sweep_config", "{}"))
            except ValueError:
                old = {}
            diff = ", ".join(_differences(old, config)) or "unknown"
            raise ValueError(
                f"store {str(path)!r} holds a different sweep (differs in: {diff}); "
                "re-run with the same arguments to resume it, or give a new store"
            )
        return np.asarray(group[DONE][...]) > 0
    template.attrs["sweep_fingerprint"] = fp
    template.attrs["sweep_config"] = json.dumps(config, sort_keys=True)
    template.to_zarr(str(path), mode="w", compute=False, consolidated=False)
    return np.zeros(template.sizes[CHUNK_DIM], dtype=bool)


class Writer:
    """Writes one chunk's block of every output, then its done flag (in that order)."""

    def __init__(self, store):
        import zarr

        self.group = zarr.open_group(os.fspath(store), mode="r+")

    def write(self, cid: int, region: tuple[slice, ...], results: dict) -> None:
        for name, block in results.items():
            arr = self.group[name]
            arr[region + (slice(None),) * (block.ndim - len(region))] = block
        self.group[DONE][cid] = 1
