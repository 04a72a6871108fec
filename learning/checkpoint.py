"""Training checkpoints: one file holding a pytree of arrays and a small JSON header.

Layout: the line ``xbar-checkpoint 1``, one line of JSON (epoch, key, history, early-stopping
state, configuration), then the array leaves written by ``equinox.tree_serialise_leaves``
(NumPy ``.npy`` records, exact bit for bit). A checkpoint is written to a temporary file in
the same folder, flushed to disk, and moved over the old one with ``os.replace`` (atomic on
POSIX file systems), so a run killed at any moment leaves either the previous or the new
checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

import equinox as eqx

__all__ = ["load_checkpoint", "save_checkpoint"]

_MAGIC = b"xbar-checkpoint 1\n"


def save_checkpoint(path: str | os.PathLike, tree: Any, header: dict) -> None:
    """Write ``tree`` (its array leaves) and the JSON-serialisable ``header`` to ``path``,
    atomically (module docstring)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC)
            f.write(json.dumps(header).encode() + b"\n")
            eqx.tree_serialise_leaves(f, tree)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of the checkpoint at ``path``."""
    with open(path, "rb") as f:
        if f.readline() != _MAGIC:
            raise ValueError(f"{path} is not an xbar checkpoint")
        return json.loads(f.readline())


def load_checkpoint(path: str | os.PathLike, like: Any) -> tuple[Any, dict]:
    """``(tree, header)`` from ``path``; ``like`` is a pytree of the saved structure whose
    array leaves give shapes and dtypes (``equinox.tree_deserialise_leaves``)."""
    with open(path, "rb") as f:
        if f.readline() != _MAGIC:
            raise ValueError(f"{path} is not an xbar checkpoint")
        header = json.loads(f.readline())
        tree = eqx.tree_deserialise_leaves(f, like)
    return tree, header
