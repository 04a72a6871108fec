"""Gradient training: mini-batch BPTT with optax, early stopping, resumable checkpoints.

:func:`fit` trains a model (any ``eqx.Module`` called as ``model(x, key=key) -> Trace``, such
as :class:`~xbar.learning.SpikingMLP`) on a labelled data set. One epoch:

1. ``k_epoch = fold_in(key, epoch)`` gives a permutation of the samples, one key per
   mini-batch and a validation key, so that every epoch is a function of ``(key, epoch)``
   and of the parameters and optimiser state at its start;
2. the samples are shuffled and cut into ``n // batch_size`` batches (the remainder, a
   different set each epoch, is left out so that every step has the same shape);
3. per batch: the inputs are encoded into spike trains (``encoding``, with its own key), the
   network runs over time (``lax.scan``), the loss and its gradient (backpropagation through
   time with surrogate spike derivatives) are computed, and the optax optimiser updates the
   trainable leaves (``trainable``: an Equinox filter, default every inexact array);
4. the metrics of the steps are averaged; the validation set, if any, is scored.

Checkpoints (``checkpoint_dir``) hold the parameters, the optimiser state, the best
parameters kept by early stopping, the epoch, the key, the history and the early-stopping
counters (:mod:`xbar.learning.checkpoint`). A run started again with the same arguments
resumes after the last completed epoch; since the work of an epoch depends only on the
state saved with it, a run killed at any point and resumed ends with parameters bit for
bit equal to those of an uninterrupted run (on the same machine and software: XLA's CPU
kernels are deterministic for a fixed program).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray
from tqdm import TqdmWarning

with warnings.catch_warnings():  # without ipywidgets, tqdm.auto warns in notebooks (and
    warnings.simplefilter("ignore", TqdmWarning)  # falls back to the text bar)
    from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, read_header, save_checkpoint
from .datasets import AbstractEncoding, Split
from .losses import AbstractLoss, AbstractMetric, Accuracy, SpikeCountCrossEntropy

__all__ = ["EarlyStopping", "FitResult", "fit", "score", "train_step"]

CHECKPOINT_NAME = "checkpoint.eqx"


class EarlyStopping(eqx.Module):
    """Stop when the history entry ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; ``maximise`` for entries such as accuracies; ``restore_best`` returns
    the parameters of the best epoch instead of the last."""

    monitor: str = eqx.field(static=True, default="val_loss")
    patience: int = eqx.field(static=True, default=5)
    min_delta: float = eqx.field(static=True, default=0.0)
    maximise: bool = eqx.field(static=True, default=False)
    restore_best: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if not (isinstance(self.patience, int) and self.patience >= 1):
            raise ValueError(f"patience must be an integer >= 1, got {self.patience!r}")
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be non-negative and finite, got {self.min_delta}")

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best + self.min_delta if self.maximise else value < best - self.min_delta


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns: the trained ``model`` (the best one under early stopping with
    ``restore_best``), the final ``opt_state``, the ``history`` (name -> one value per epoch:
    ``loss``, each metric, ``val_`` entries with validation data, ``time_s`` wall time of the
    epoch [s]), ``epochs`` completed, ``best_epoch`` (early stopping; else None) and
    ``stopped_early``."""

    model: Any
    opt_state: Any
    history: dict[str, list[float]]
    epochs: int
    best_epoch: int | None
    stopped_early: bool


def _as_split(data) -> Split:
    if isinstance(data, Split):
        return data
    x, y = data
    return Split(jnp.asarray(x), jnp.asarray(y))


def _inputs(x, encoding, key, time_major=False):
    """Time-major network input for a batch ``x``: encoded ``(T, B, ...)``, or spike trains
    ``(B, T, n)`` moved to ``(T, B, n)`` (kept as they are when ``time_major``)."""
    if encoding is None:
        return x if time_major else jnp.swapaxes(x, 0, 1)
    return encoding(x, key=key)


def _forward(model, x, y, key, loss, metrics, encoding, time_major=False):
    k_enc, k_model = jax.random.split(key)
    trace = model(_inputs(x, encoding, k_enc, time_major), key=k_model)
    return loss(trace, y), tuple(m(trace, y, loss) for m in metrics)


def train_step(
    static,
    optimizer: optax.GradientTransformation,
    *,
    loss: AbstractLoss = SpikeCountCrossEntropy(),
    metrics: Sequence[AbstractMetric] = (),
    encoding: AbstractEncoding | None = None,
    time_major: bool = False,
) -> Callable:
    """The compiled training step of :func:`fit`, for a model split by
    ``params, static = eqx.partition(model, trainable)``:
    ``step(params, opt_state, x, y, key) -> (params, opt_state, loss, metric values)``.

    One step encodes the batch ``x`` (``(B, ...)`` with ``encoding``; ``(B, T, n_in)`` spike
    trains without), runs the model with ``key``, backpropagates through time and applies
    one optimiser update (``time_major``: ``x`` are spike trains ``(T, B, n_in)`` already, no
    encoding). Everything but the arguments is compiled in: the arrays of
    ``static`` are passed to the compiled function and its other leaves, the optimiser, the
    loss, the metrics and the encoding are fixed, so that a call costs one dispatch of the
    parameter and optimiser-state arrays (``eqx.filter_jit`` would flatten and hash the
    whole model on every call, about a millisecond for a crossbar network). Steps made for
    equal (hashable) ``static`` structures, optimisers, losses, metrics and encodings share
    one compiled function."""
    metrics = tuple(metrics)
    frozen, skeleton = eqx.partition(static, eqx.is_array)
    if time_major and encoding is not None:
        raise ValueError("time_major inputs are spike trains: give encoding=None")
    cache_key = (skeleton, optimizer, loss, metrics, encoding, bool(time_major))
    try:
        compiled = _STEPS.get(cache_key)
    except TypeError:  # an unhashable part (e.g. arrays in the loss): no sharing
        cache_key, compiled = None, None
    if compiled is None:

        @jax.jit
        def compiled(params, frozen, opt_state, x, y, key):
            def objective(p):
                model = eqx.combine(p, frozen, skeleton)
                return _forward(model, x, y, key, loss, metrics, encoding, time_major)

            (value, values), grads = jax.value_and_grad(objective, has_aux=True)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return eqx.apply_updates(params, updates), opt_state, value, values

        if cache_key is not None:
            while len(_STEPS) >= _MAX_STEPS:
                _STEPS.pop(next(iter(_STEPS)))
            _STEPS[cache_key] = compiled

    def step(params, opt_state, x, y, key):
        return compiled(params, frozen, opt_state, x, y, key)

    return step


_STEPS: dict = {}  # compiled steps by (skeleton, optimizer, loss, metrics, encoding)
_MAX_STEPS = 16


@eqx.filter_jit
def _eval_step(model, x, y, key, loss, metrics, encoding):
    return _forward(model, x, y, key, loss, metrics, encoding)


def score(
    model,
    data: Split | tuple,
    *,
    key: PRNGKeyArray,
    loss: AbstractLoss = SpikeCountCrossEntropy(),
    metrics: Sequence[AbstractMetric] = (Accuracy(),),
    encoding: AbstractEncoding | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on all of ``data``, averaged over the samples
    (batches of ``batch_size``, the last one smaller). ``key`` draws the input encoding and
    the model's noise (batch ``b`` uses ``fold_in(key, b)``)."""
    data = _as_split(data)
    n = len(data)
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    metrics = tuple(metrics)
    totals = np.zeros(1 + len(metrics))
    for b, start in enumerate(range(0, n, batch_size)):
        xb, yb = data.x[start : start + batch_size], data.y[start : start + batch_size]
        value, values = _eval_step(
            model, xb, yb, jax.random.fold_in(key, b), loss, metrics, encoding
        )
        totals += len(yb) * np.array([float(value), *(float(v) for v in values)])
    totals /= n
    return {
        "loss": float(totals[0]),
        **{m.name: float(t) for m, t in zip(metrics, totals[1:], strict=True)},
    }


def _key_data(key) -> tuple[list[int], bool]:
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else key
    return np.asarray(data).astype(np.uint32).ravel().tolist(), bool(typed)


def fit(
    model,
    data: Split | tuple,
    optimizer: optax.GradientTransformation,
    *,
    epochs: int,
    batch_size: int,
    key: PRNGKeyArray,
    loss: AbstractLoss = SpikeCountCrossEntropy(),
    metrics: Sequence[AbstractMetric] = (Accuracy(),),
    encoding: AbstractEncoding | None = None,
    validation: Split | tuple | None = None,
    early_stopping: EarlyStopping | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    trainable: Any = eqx.is_inexact_array,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``data`` for ``epochs`` epochs (module docstring).

    Args:
        model: an ``eqx.Module``, ``model(x, key=key) -> Trace`` with ``x`` time first.
        data: a :class:`Split` (or ``(x, y)``): ``x`` of shape ``(n, ...)`` values to encode
            with ``encoding``, or ``(n, T, n_in)`` spike trains when ``encoding`` is None;
            ``y`` integer labels ``(n,)``.
        optimizer: an optax ``GradientTransformation`` (e.g. ``optax.adam(1e-3)``).
        epochs: number of epochs (>= 1; a resumed run counts the completed ones).
        batch_size: samples per step, in ``[1, n]``.
        key: the run's key; every random draw of the run derives from it.
        loss: an :class:`AbstractLoss`; metrics: :class:`AbstractMetric` s, averaged per epoch.
        encoding: an :class:`AbstractEncoding` applied per batch with a fresh key, or None.
        validation: data scored after every epoch (history entries ``val_*``).
        early_stopping: an :class:`EarlyStopping`, or None.
        checkpoint_dir: folder of the checkpoint (``checkpoint.eqx``), written every
            ``checkpoint_every`` epochs and at the end; an existing checkpoint there is
            resumed (with the same ``key`` and ``batch_size``, else ``ValueError``).
        trainable: Equinox filter of the trained leaves (a callable on leaves or a pytree
            of bools matching ``model``).
        progress: show a tqdm bar (steps; loss and metrics of the last epoch).
        on_epoch_end: ``f(epoch, history)`` called after each epoch (epoch counted from 1).
    """
    data = _as_split(data)
    n = len(data)
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not (isinstance(batch_size, int) and 1 <= batch_size <= n):
        raise ValueError(f"batch_size must be an integer in [1, {n}] (samples), got {batch_size!r}")
    if not (isinstance(checkpoint_every, int) and checkpoint_every >= 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
    if validation is not None:
        validation = _as_split(validation)
    if (
        early_stopping is not None
        and early_stopping.monitor.startswith("val_")
        and validation is None
    ):
        raise ValueError(
            f"early_stopping monitors {early_stopping.monitor!r}: give validation data"
        )
    metrics = tuple(metrics)
    names = [m.name for m in metrics]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"metric names must be distinct and not 'loss', got {names}")

    params, static = eqx.partition(model, trainable)
    step = train_step(static, optimizer, loss=loss, metrics=metrics, encoding=encoding)
    opt_state = optimizer.init(params)
    keep_best = early_stopping is not None and early_stopping.restore_best
    best_params = params if keep_best else None
    history: dict[str, list[float]] = {}
    start, best, best_epoch, wait, stopped = 0, None, None, 0, False
    key_list, key_typed = _key_data(key)
    config = {"batch_size": batch_size, "n_samples": n, "key": key_list, "keep_best": keep_best}

    ckpt = None if checkpoint_dir is None else pathlib.Path(checkpoint_dir) / CHECKPOINT_NAME
    if ckpt is not None and ckpt.exists():
        header = read_header(ckpt)
        if header["config"] != config:
            raise ValueError(
                f"the checkpoint {ckpt} was written by a run with another key, batch size, "
                f"data set size or early-stopping restore ({header['config']} vs {config})"
            )
        like = (params, opt_state, best_params)
        (params, opt_state, best_params), header = load_checkpoint(ckpt, like)
        start, history = header["epoch"], header["history"]
        best, best_epoch, wait, stopped = (
            header["best"],
            header["best_epoch"],
            header["wait"],
            header["stopped"],
        )

    def write_checkpoint(epoch):
        if ckpt is None:
            return
        header = {
            "epoch": epoch,
            "config": config,
            "key_typed": key_typed,
            "history": history,
            "best": best,
            "best_epoch": best_epoch,
            "wait": wait,
            "stopped": stopped,
        }
        save_checkpoint(ckpt, (params, opt_state, best_params), header)

    steps = n // batch_size
    bar = tqdm(
        total=epochs * steps,
        initial=min(start, epochs) * steps,
        desc="fit",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    epoch = start
    while epoch < epochs and not stopped:
        t0 = time.perf_counter()
        k_perm, k_steps, k_val = jax.random.split(jax.random.fold_in(key, epoch), 3)
        order = jax.random.permutation(k_perm, n)
        step_keys = jax.random.split(k_steps, steps)
        values = []
        for s in range(steps):
            idx = order[s * batch_size : (s + 1) * batch_size]
            params, opt_state, value, mvals = step(
                params, opt_state, data.x[idx], data.y[idx], step_keys[s]
            )
            values.append((value, *mvals))
            bar.update(1)
        means = np.asarray(jnp.mean(jnp.stack([jnp.stack(v) for v in values]), axis=0))
        row = {
            "loss": float(means[0]),
            **{nm: float(v) for nm, v in zip(names, means[1:], strict=True)},
        }
        if validation is not None:
            val = score(
                eqx.combine(params, static),
                validation,
                key=k_val,
                loss=loss,
                metrics=metrics,
                encoding=encoding,
                batch_size=batch_size,
            )
            row.update({f"val_{k}": v for k, v in val.items()})
        row["time_s"] = time.perf_counter() - t0
        for k, v in row.items():
            history.setdefault(k, []).append(v)
        epoch += 1
        if early_stopping is not None:
            if early_stopping.monitor not in row:
                raise ValueError(
                    f"early_stopping monitors {early_stopping.monitor!r}, not among {list(row)}"
                )
            value = row[early_stopping.monitor]
            if early_stopping.improved(value, best):
                best, best_epoch, wait = value, epoch, 0
                if keep_best:
                    best_params = params
            else:
                wait += 1
                stopped = wait >= early_stopping.patience
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "time_s"})
        if epoch % checkpoint_every == 0 or epoch == epochs or stopped:
            write_checkpoint(epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    bar.close()
    final = best_params if keep_best else params
    return FitResult(
        model=eqx.combine(final, static),
        opt_state=opt_state,
        history=history,
        epochs=epoch,
        best_epoch=best_epoch,
        stopped_early=stopped,
    )
