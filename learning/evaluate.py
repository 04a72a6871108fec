"""Transfer and lifetime evaluation: trained weights on programmed crossbars, over time and faults.

:func:`program_network` puts every synapse layer of a trained
:class:`~xbar.learning.SpikingMLP` onto a fresh crossbar (``xbar.Crossbar.create`` with the
device model, its device-to-device variability and stuck-at faults drawn for one device
instance; then ``xbar.program`` with ``xbar.WriteVerify`` or ``xbar.OpenLoop``, or the
device's own statistical programming model, :class:`xbar.networks.DeviceProgramming`).
Weights are remapped per layer (``W / s``, ``s = max|W| / w_max``; the digital output is
multiplied by ``s``).

:func:`deployed` returns the network as it reads at a time ``t_s`` after programming: each
layer a :class:`ProgrammedSynapse` whose crossbar caches the exact effective matrix of the
drifted conductances (``xbar.effective_matrix``, IR drop through the full nodal solve) and
reads with ``Crossbar.mvm`` (DAC, read noise drawn per read, sense amplifier, ADC). Global
drift compensation (Joshi et al., Nat. Commun. 11:2473, 2020; aihwkit
``GlobalDriftCompensation``) scales each layer's output by
``alpha = sum_ij |W_read(0)_ij| / sum_ij |W_read(t)_ij|``, the summed magnitudes of
noiseless calibration reads with every row driven alone (``W_read = combine(W_eff) / scale``,
the logical matrix a read sees) at programming time and at ``t_s``.

:func:`lifetime` scores a network over times and device instances (mean and spread);
:func:`fault_tolerance` over the fraction of stuck cells, with and without retraining around
the known faults (hardware-aware fine-tuning with the fault mask in the forward pass, then
programming the new weights on the same instance). :func:`demo_study` runs a small study
(train, program, drift, table, plot) for the ``xbar demo`` command.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray
from xbar.networks import LI, CrossbarConfig, DeviceProgramming

import xbar
from xbar import devices

from .datasets import AbstractEncoding, RateEncoding, Split, load_digits
from .hardware_aware import CrossbarSynapse, HardwareSpec, with_spec
from .losses import AbstractLoss, MembraneCrossEntropy
from .model import AbstractSynapse, SpikingMLP
from .train import fit, score

__all__ = [
    "LIFETIME_TIMES_S",
    "accuracy",
    "pcm_config",
    "train_network",
    "ProgrammedSynapse",
    "demo_study",
    "deployed",
    "fault_tolerance",
    "lifetime",
    "program_network",
    "reference_matrices",
]

#: 1 s, 1 h, 1 day, 1 month (30 days), 1 year (365 days) [s]
LIFETIME_TIMES_S = (1.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)
TIME_LABELS = {
    1.0: "1 s",
    3600.0: "1 h",
    86400.0: "1 day",
    2592000.0: "1 month",
    31536000.0: "1 year",
}


class ProgrammedSynapse(AbstractSynapse):
    """A synapse layer read from a programmed crossbar (module docstring):
    ``i = i_unit (alpha s y + b)`` [A] with ``y = crossbar.mvm(x, key)`` (normalised
    units), ``s`` the layer's weight scale, ``alpha`` the drift-compensation factor
    (1 without) and ``b`` the digital bias."""

    crossbar: xbar.Crossbar
    scale: Array
    alpha: Array
    bias: Array | None
    i_unit: float = eqx.field(static=True)
    n_in: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)

    def realise(self, key):
        return self

    def __call__(self, x, *, key=None, spikes=False):
        y = self.crossbar.mvm(x, key) * (self.alpha * self.scale)
        if self.bias is not None:
            y = y + self.bias
        return self.i_unit * y


def _layers(model: SpikingMLP):
    for s in model.synapses:
        if not isinstance(s, CrossbarSynapse):
            raise ValueError(
                f"program_network needs CrossbarSynapse layers (HardwareSpec.synapse_factory), "
                f"got {type(s).__name__}"
            )
    return model.synapses


def program_network(
    model: SpikingMLP,
    config: CrossbarConfig,
    key: PRNGKeyArray,
    *,
    faults: devices.StuckAtFaults | None = None,
    state_values: dict | None = None,
) -> list[tuple[xbar.Crossbar, Array]]:
    """Program every layer of ``model`` onto a fresh crossbar of ``config`` (one device
    instance per ``key``: variability and fault mask drawn from it, then programming noise).

    Returns ``[(crossbar, s), ...]`` per layer: the programmed crossbar (at programming
    time) and the weight scale ``s`` (the crossbar holds ``W / s``). ``state_values``: the
    initial device state (e.g. ``{"gap": 1.7e-9}`` for an RRAM write-verify from HRS)."""
    out = []
    for l, syn in enumerate(_layers(model)):
        w = jnp.asarray(syn.layer.weight)
        k_dev, k_prog = jax.random.split(jax.random.fold_in(key, l))
        s = jnp.maximum(jnp.max(jnp.abs(w)), 1e-12) / config.mapping.w_max
        wm = w / s
        create_key = k_dev if (config.variability or faults is not None) else None
        xb = xbar.Crossbar.create(
            config.device,
            tuple(w.shape),
            key=create_key,
            variability=config.variability,
            mapping=config.mapping,
            wiring=config.wiring,
            dac=config.dac,
            adc=config.adc,
            sense=config.sense,
            faults=faults,
            **(state_values or {}),
        )
        prog = config.programming
        if isinstance(prog, DeviceProgramming):
            g_t = config.mapping.to_conductance(wm)
            state = xb.device.program(k_prog if prog.noise else None, g_t)
            xb = xb.with_state(state)
        else:
            xb, _ = eqx.filter_jit(xbar.program)(xb, wm, prog, k_prog)
        out.append((xb, s))
    return out


def _read_matrix(xb: xbar.Crossbar, t_s):
    """Physical effective matrix [S] of the (drifted) conductances at ``t_s`` (exact IR
    drop; the conductances themselves for ideal wires)."""
    g = xb.conductances(t_s)
    w = xb.wiring
    if all(float(r) == 0.0 for r in (w.r_wl, w.r_bl, w.r_src, w.r_sense)):
        return g
    return xbar.effective_matrix(g, **w.solve_kwargs())


def reference_matrices(programmed) -> list[Array]:
    """Physical read matrices [S] (exact IR drop) of programmed crossbars at programming
    time: the calibration reference of drift compensation."""
    return [_read_matrix(xb, None) for xb, _ in programmed]


def deployed(
    model: SpikingMLP,
    programmed: Sequence[tuple[xbar.Crossbar, Array]],
    t_s: float,
    *,
    drift_compensation: bool = True,
    reference: Sequence[Array] | None = None,
) -> SpikingMLP:
    """``model`` with each layer read from its programmed crossbar at ``t_s`` [s] after
    programming (module docstring), with or without global drift compensation.
    ``reference``: the physical read matrices at programming time per layer (computed if
    None; pass :func:`reference_matrices` to reuse them over many times)."""
    syn = []
    if drift_compensation and reference is None:
        reference = reference_matrices(programmed)
    for l, (s_old, (xb, s)) in enumerate(zip(_layers(model), programmed, strict=True)):
        g_t = _read_matrix(xb, t_s)
        xb_t = xb.with_cached_matrix(g_t, jnp.asarray(t_s, g_t.dtype))
        if drift_compensation:
            g_0 = reference[l]
            w0 = jnp.sum(jnp.abs(xb.mapping.combine(g_0)))
            wt = jnp.sum(jnp.abs(xb.mapping.combine(g_t)))
            alpha = w0 / jnp.maximum(wt, 1e-30)
        else:
            alpha = jnp.ones((), g_t.dtype)
        b = s_old.layer.bias
        syn.append(
            ProgrammedSynapse(
                crossbar=xb_t,
                scale=jnp.asarray(s),
                alpha=alpha,
                bias=b,
                i_unit=s_old.i_unit,
                n_in=s_old.n_in,
                n_out=s_old.n_out,
            )
        )
    return eqx.tree_at(lambda m: m.synapses, model, tuple(syn))


def accuracy(
    model,
    data: Split,
    key: PRNGKeyArray,
    loss: AbstractLoss = MembraneCrossEntropy(),
    encoding: AbstractEncoding | None = None,
    batch_size: int = 512,
) -> float:
    """Test accuracy of ``model`` on ``data`` (:func:`xbar.learning.score`; ``key`` draws
    the input encoding and the read noise)."""
    return score(model, data, key=key, loss=loss, encoding=encoding, batch_size=batch_size)[
        "accuracy"
    ]


_accuracy = accuracy


def lifetime(
    model: SpikingMLP,
    data: Split,
    config: CrossbarConfig,
    key: PRNGKeyArray,
    *,
    times_s: Sequence[float] = LIFETIME_TIMES_S,
    n_instances: int = 5,
    drift_compensation: Sequence[bool] = (False, True),
    loss: AbstractLoss = MembraneCrossEntropy(),
    encoding: AbstractEncoding | None = None,
    state_values: dict | None = None,
) -> list[dict]:
    """Test accuracy of ``model`` programmed on ``n_instances`` device instances of
    ``config`` (keys ``fold_in(key, i)``), read at each time in ``times_s`` [s], with and
    without drift compensation. Returns rows ``{"t_s", "drift_compensation", "mean",
    "std", "min", "max", "accuracies"}`` (spread over instances; the input encoding and
    read noise use the same key for every row, so rows differ only by the hardware)."""
    if not (isinstance(n_instances, int) and n_instances >= 1):
        raise ValueError(f"n_instances must be a positive integer, got {n_instances!r}")
    k_eval = jax.random.fold_in(key, 10**6)
    acc = {}
    for i in range(n_instances):
        prog = program_network(model, config, jax.random.fold_in(key, i), state_values=state_values)
        ref = reference_matrices(prog) if any(drift_compensation) else None
        for t in times_s:
            for dc in drift_compensation:
                net = deployed(model, prog, t, drift_compensation=dc, reference=ref)
                acc.setdefault((t, dc), []).append(_accuracy(net, data, k_eval, loss, encoding))
    return [_row(t=t, drift_compensation=dc, values=v) for (t, dc), v in acc.items()]


def _row(values, **fields):
    v = np.asarray(values, float)
    return {
        **{("t_s" if k == "t" else k): val for k, val in fields.items()},
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "accuracies": [float(a) for a in v],
    }


def _fault_model(fraction: float) -> devices.StuckAtFaults:
    """Stuck-at faults of total rate ``fraction``, split ON:OFF as the default rates of
    ``devices.StuckAtFaults`` (9.04 : 1.75)."""
    base = devices.StuckAtFaults()
    r = base.p_on / (base.p_on + base.p_off)
    return devices.StuckAtFaults(p_on=fraction * r, p_off=fraction * (1 - r))


def fault_tolerance(
    model: SpikingMLP,
    train: Split,
    test: Split,
    config: CrossbarConfig,
    spec: HardwareSpec,
    key: PRNGKeyArray,
    *,
    fractions: Sequence[float] = (0.0, 0.02, 0.05, 0.1),
    n_instances: int = 3,
    t_s: float = 1.0,
    retrain_epochs: int = 3,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    loss: AbstractLoss = MembraneCrossEntropy(),
    encoding: AbstractEncoding | None = None,
    state_values: dict | None = None,
) -> list[dict]:
    """Accuracy against the fraction of stuck-at-ON/OFF cells (the fault-tolerance curve).

    For each fraction and instance: program ``model`` on a crossbar with faults drawn at
    that rate and score it at ``t_s`` (with drift compensation); then retrain around the
    known faults: fine-tune ``retrain_epochs`` epochs under ``spec`` with the instance's
    fault mask in the forward pass (``CrossbarLinear.stuck``), program the new weights on
    the same instance (same key: same variability and faults) and score again. Rows
    ``{"fraction", "retrained", "mean", "std", ...}``."""
    k_eval = jax.random.fold_in(key, 10**6)
    rows = []
    for f in fractions:
        faults = _fault_model(f) if f > 0 else None
        plain, retrained = [], []
        for i in range(n_instances):
            k_i = jax.random.fold_in(key, i)
            prog = program_network(model, config, k_i, faults=faults, state_values=state_values)
            plain.append(_accuracy(deployed(model, prog, t_s), test, k_eval, loss, encoding))
            if faults is None:
                retrained.append(plain[-1])
                continue
            syn = tuple(
                sy.with_spec(
                    spec, stuck=xb.stuck, g_stuck_on=xb.g_stuck_on, g_stuck_off=xb.g_stuck_off
                )
                for sy, (xb, _) in zip(_layers(model), prog, strict=True)
            )
            tuned = eqx.tree_at(lambda m: m.synapses, model, syn)
            res = fit(
                tuned,
                train,
                optax.adam(learning_rate),
                epochs=retrain_epochs,
                batch_size=batch_size,
                key=jax.random.fold_in(k_i, 7),
                loss=loss,
                encoding=encoding,
                progress=False,
            )
            clean = with_spec(res.model, spec)  # the same weights, faults forgotten
            prog2 = program_network(clean, config, k_i, faults=faults, state_values=state_values)
            retrained.append(_accuracy(deployed(clean, prog2, t_s), test, k_eval, loss, encoding))
        rows.append(_row(fraction=f, retrained=False, values=plain))
        rows.append(_row(fraction=f, retrained=True, values=retrained))
    return rows


# ---- a small study for ``xbar demo`` ---------------------------------------------------------
def train_network(
    spec: HardwareSpec,
    train: Split,
    key: PRNGKeyArray,
    *,
    sizes: Sequence[int] = (64, 128, 10),
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    num_steps: int = 25,
    init: SpikingMLP | None = None,
    progress: bool = False,
) -> SpikingMLP:
    """A ``SpikingMLP`` (LIF hidden layers, ``LI`` readout, max-over-time membrane
    cross-entropy, rate-coded inputs of ``num_steps`` steps) trained with Adam against the
    hardware ``spec`` (``HardwareSpec.ideal()`` for plain training); ``init`` continues
    from a network (its weights moved onto ``spec``)."""
    if init is None:
        model = SpikingMLP.build(sizes, key=key, readout=LI(), synapse=spec.synapse_factory())
    else:
        model = with_spec(init, spec)
    res = fit(
        model,
        train,
        optax.adam(learning_rate),
        epochs=epochs,
        batch_size=batch_size,
        key=jax.random.fold_in(key, 1),
        loss=MembraneCrossEntropy(),
        encoding=RateEncoding(num_steps=num_steps),
        progress=progress,
    )
    return res.model


def pcm_config(**kw) -> CrossbarConfig:
    """The statistical PCM crossbar of the studies: ``devices.PCMStatistical`` on
    differential pairs 0-25 uS, NeuroSim 22 nm wires, 8-bit DAC/ADC, its own statistical
    write-verify model (Joshi 2020)."""
    pcm = devices.PCMStatistical()
    base = dict(
        device=pcm,
        mapping=xbar.DifferentialMapping(0.0, pcm.g_max),
        wiring=xbar.Wiring(),
        dac=xbar.DAC(),
        adc=xbar.ADC(),
        programming=DeviceProgramming(),
    )
    base.update(kw)
    return CrossbarConfig(**base)


def demo_study(
    out_dir: str | os.PathLike,
    key: PRNGKeyArray | None = None,
    *,
    epochs: int = 8,
    n_instances: int = 2,
    times_s: Sequence[float] = (1.0, 86400.0, 365 * 86400.0),
) -> list[dict]:
    """A small lifetime study (about a minute on 2 CPU cores): train a 64-64-10 spiking
    network on the 8x8 digits plainly and hardware-aware against statistical PCM at one
    day (:meth:`HardwareSpec.pcm`), program both on PCM crossbars (``n_instances`` device
    instances), read them at ``times_s`` with and without global drift compensation,
    write ``lifetime.csv`` and ``lifetime.png`` to ``out_dir`` and return the table rows
    ``{"training", "t_s", "drift_compensation", "mean", "std", ...}``."""
    key = jax.random.PRNGKey(0) if key is None else key
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_digits(seed=0)
    enc = RateEncoding(num_steps=25)
    cfg = pcm_config()
    t0 = time.perf_counter()
    plain = train_network(HardwareSpec.ideal(), train, key, sizes=(64, 64, 10), epochs=epochs)
    hwa = train_network(
        HardwareSpec.pcm(t_s=86400.0),
        train,
        key,
        sizes=(64, 64, 10),
        epochs=max(2, epochs // 2),
        init=plain,
    )
    rows = []
    for name, net in (("plain", plain), ("hardware-aware", hwa)):
        for r in lifetime(
            net,
            test,
            cfg,
            jax.random.fold_in(key, 3),
            times_s=times_s,
            n_instances=n_instances,
            encoding=enc,
        ):
            rows.append({"training": name, **r})
    _write_table(out / "lifetime.csv", rows)
    _plot_lifetime(out / "lifetime.png", rows)
    for r in rows:
        r["elapsed_s"] = time.perf_counter() - t0
    return rows


def _write_table(path, rows):
    keys = ["training", "t_s", "drift_compensation", "mean", "std", "min", "max"]
    with open(path, "w") as f:
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r.get(k, "")) for k in keys) + "\n")


def _plot_lifetime(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    groups = {}
    for r in rows:
        groups.setdefault((r["training"], r["drift_compensation"]), []).append(r)
    for (name, dc), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["t_s"])
        t = [r["t_s"] for r in rs]
        ax.errorbar(
            t,
            [100 * r["mean"] for r in rs],
            yerr=[100 * r["std"] for r in rs],
            marker="o",
            capsize=3,
            label=f"{name}, {'with' if dc else 'without'} drift comp.",
        )
    ax.set_xscale("log")
    ax.set_xlabel("time after programming [s]")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title("SNN on PCM crossbars: accuracy vs drift time", fontsize="medium")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
