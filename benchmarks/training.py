"""Benchmark: time per training step of a spiking network, plain JAX against xbar.

Workload (issue "Surrogate-gradient and hardware-aware training"): a 784-256-10 LIF network,
T = 25 time steps, batch 128, Adam, fast-sigmoid surrogate (slope 25), cross-entropy on the
output spike counts; inputs are Bernoulli spike trains of rate 0.1 per step (MNIST-sized
rate-coded images without the download). One training step = forward pass over T, BPTT,
optimiser update. float32, medians after a warm-up (compile), ``jax.block_until_ready``.

Rows, measured in one run:

1. **plain JAX**: the baseline written here with nothing but ``jax`` and ``optax``: dense
   weights, ideal LIF neurons in normalised units (``u <- 0.95 u + W x + b``, spike where
   ``u > 1``, reset to 0), the same network as the xbar rows in the units of
   ``xbar.learning.unit_current`` (tau 20 ms, dt 1 ms), the input layer computed for all
   time steps before the time loop, as ``SpikingMLP`` does;
2. **xbar ideal**: ``xbar.learning.SpikingMLP`` with ``DenseSynapse`` layers and
   ``xbar.networks.LIF`` neurons; every xbar row runs ``xbar.learning.train_step`` (the
   compiled step of ``fit``) on time-major spike trains (``input_spikes=True``: the spikes
   drive the crossbar rows as read pulses, no DAC conversion);
3. **xbar hardware-aware, the issue's workload** (the target row): the same network with
   ``xbar.learning.CrossbarSynapse`` layers seeing the 1/f read noise of
   ``devices.PCMStatistical`` one day after programming (drawn into the weights once per
   forward pass, ``noise_draw=xbar.PerCall()``: the weight-noise injection of Joshi et al.
   2020), 8-bit DAC and ADC with straight-through gradients, and NeuroSim wires with the
   first-order IR-drop model (``xbar.effective_matrix_first_order``, once per forward pass);
   the 784-input layer is one tile (the spec's 512-row limit lifted for the benchmark);
4. **all of PCM at one day** (``HardwareSpec.pcm``): row 3 plus the programming noise and
   the drift-exponent spread drawn per step; and the same with the read noise drawn per
   read (every time step) at the outputs;
5. **fit loop**: ``xbar.learning.fit`` on the ideal network, per step (its Python loop,
   batch gathering and dispatch included), from the second epoch.

Target: row 3 / plain JAX <= 1.5 on CPU and on GPU (where a GPU is lent). Anchor
(reference figure, not measured here): plain JAX 27 ms per step on a 2-core CPU of this kind,
snnTorch 1.0 37 ms (about 1.4x).

Usage: ``python benchmarks/training.py [--repeats 20] [--breakdown] [--no-write]``;
``--breakdown`` adds rows with one non-ideality of the crossbar layer at a time; ``--quick``
(or ``XBAR_FAST=1``) runs a small smoke version (784-32-10, T 5, batch 16), writes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from _results import cpu_name, replace_section  # this folder (sys.path[0])
from xbar.learning import (  # noqa: E402
    FastSigmoid,
    SpikeCountCrossEntropy,
    SpikingMLP,
    fit,
    hardware_aware,  # noqa: E402
    train_step,
)
from xbar.networks import LIF  # noqa: E402

import xbar
from xbar import devices  # noqa: E402

SECTION = "## Training step (benchmarks/training.py)"
TARGET_ROW = (
    "xbar hardware-aware: PCM 1 day read noise (once per pass), 8-bit DAC/ADC, 1st-order IR drop"
)
TARGET_RATIO = 1.5
ANCHOR_PLAIN_MS, ANCHOR_SNNTORCH_MS = 27.0, 37.0
DT, TAU, SLOPE, LR = 1e-3, 20e-3, 25.0, 1e-3


# ---- 1. the plain-JAX baseline ----------------------------------------------------------
@jax.custom_jvp
def _spike(x):
    return (x > 0).astype(x.dtype)


@_spike.defjvp
def _spike_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _spike(x), dx / (SLOPE * jnp.abs(x) + 1.0) ** 2


def plain_init(key, sizes):
    params = []
    for k, n_in, n_out in zip(
        jax.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:], strict=True
    ):
        bound = 1.0 / jnp.sqrt(n_in)
        w = jax.random.uniform(k, (n_in, n_out), jnp.float32, -bound, bound)
        params.append((w, jnp.zeros((n_out,), jnp.float32)))
    return params


def plain_loss(params, x, y):
    beta = 1.0 - DT / TAU
    (w_in, b_in), deeper = params[0], params[1:]
    i_in = x @ w_in + b_in  # the input layer for all steps at once, as SpikingMLP does

    def step(us, i_t):
        new, z = [], None
        for l, u in enumerate(us):
            u = beta * u + (i_t if l == 0 else z @ deeper[l - 1][0] + deeper[l - 1][1])
            z = _spike(u - 1.0)
            new.append((1.0 - z) * u)
        return tuple(new), z

    us = tuple(jnp.zeros(x.shape[1:-1] + (w.shape[1],), x.dtype) for w, _ in params)
    _, z_out = jax.lax.scan(step, us, i_in)
    logp = jax.nn.log_softmax(z_out.sum(0), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))


def plain_step_fn(optimizer):
    @jax.jit
    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(plain_loss)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


# ---- 2./3. xbar networks ------------------------------------------------------------------
def xbar_step_fn(model, optimizer, loss):
    """``(step, params)``: the compiled step of ``xbar.learning.fit``
    (``xbar.learning.train_step``) and the trainable part of ``model``."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    return train_step(static, optimizer, loss=loss, time_major=True), params


def hardware_spec(n_in):
    spec = hardware_aware.HardwareSpec.pcm(devices.PCMStatistical(), t_s=86400.0)
    return dataclasses.replace(spec, max_inputs=max(n_in, spec.max_inputs))


def ideal_spec(full):
    """``HardwareSpec.ideal()`` with the tile height of ``full``."""
    return dataclasses.replace(hardware_aware.HardwareSpec.ideal(), max_inputs=full.max_inputs)


def target_spec(n_in):
    """The issue's workload: read noise (drawn into the weights once per pass), 8-bit DAC
    and ADC, the first-order IR drop; no programming noise."""
    full = hardware_spec(n_in)
    return dataclasses.replace(
        ideal_spec(full),
        mapping=full.mapping,
        wiring=full.wiring,
        ir_drop=full.ir_drop,
        dac=full.dac,
        adc=full.adc,
        read_noise=full.read_noise,
        noise_draw=xbar.PerCall(),
    )


def breakdown_specs(n_in):
    """The hardware-aware spec with one non-ideality at a time (``--breakdown``)."""
    full = hardware_spec(n_in)
    ideal = ideal_spec(full)
    return {
        "crossbar layer, every non-ideality off": ideal,
        "crossbar layer, first-order IR drop only": dataclasses.replace(
            ideal, wiring=full.wiring, ir_drop=full.ir_drop
        ),
        "crossbar layer, 8-bit DAC/ADC only": dataclasses.replace(
            ideal, dac=full.dac, adc=full.adc
        ),
        "crossbar layer, read noise only": dataclasses.replace(ideal, read_noise=full.read_noise),
        "crossbar layer, programming noise only": dataclasses.replace(
            ideal, prog_noise=full.prog_noise
        ),
    }


def interleaved_medians(fns, repeats):
    """Median wall time and median process CPU time [s] of each of ``fns``, after one warm-up
    call each, the calls taken in turn (one of each per round) so that every row sees the same
    machine load; each call is waited for with ``jax.block_until_ready``. CPU time (all
    threads of this process) is less disturbed by other processes than wall time."""
    for fn in fns:
        jax.block_until_ready(fn())
    wall, cpu = [[] for _ in fns], [[] for _ in fns]
    for _ in range(repeats):
        for fn, w, c in zip(fns, wall, cpu, strict=True):
            t, p = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            w.append(time.perf_counter() - t)
            c.append(time.process_time() - p)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def run(sizes, n_steps, batch, repeats, breakdown=False):
    key = jax.random.key(0)
    k_x, k_y, k_init, k_model = jax.random.split(key, 4)
    x = (jax.random.uniform(k_x, (n_steps, batch, sizes[0])) < 0.1).astype(jnp.float32)
    y = jax.random.randint(k_y, (batch,), 0, sizes[-1])
    optimizer = optax.adam(LR)
    loss = SpikeCountCrossEntropy()
    fns = {}

    params = plain_init(k_init, sizes)
    state = {"p": params, "o": optimizer.init(params)}
    step = plain_step_fn(optimizer)

    def plain():
        state["p"], state["o"], value = step(state["p"], state["o"], x, y)
        return value

    fns["plain JAX (dense, ideal LIF)"] = plain

    neuron = LIF(tau=TAU, spike_fn=FastSigmoid(slope=SLOPE))

    def build(spec=None):
        synapse = {} if spec is None else {"synapse": spec.synapse_factory()}
        return SpikingMLP.build(
            sizes, key=k_init, dt=DT, neuron=neuron, input_spikes=True, **synapse
        )

    full = hardware_spec(sizes[0])
    models = {
        "xbar ideal (SpikingMLP, DenseSynapse)": build(),
        TARGET_ROW: build(target_spec(sizes[0])),
        "xbar hardware-aware, all of PCM at 1 day (+ programming noise and drift spread)": build(
            dataclasses.replace(full, noise_draw=xbar.PerCall())
        ),
        "xbar hardware-aware, all of PCM at 1 day, read noise drawn per read": build(full),
    }
    if breakdown:
        for name, spec in breakdown_specs(sizes[0]).items():
            models[name] = build(spec)
    step_keys = jax.random.split(k_model, 4 * repeats + 8)  # one per step, drawn beforehand
    for name, model in models.items():
        xstep, params = xbar_step_fn(model, optimizer, loss)
        st = {"p": params, "o": optimizer.init(params), "i": 0}

        def xbar_run(st=st, xstep=xstep):
            st["i"] += 1
            st["p"], st["o"], value, _ = xstep(st["p"], st["o"], x, y, step_keys[st["i"]])
            return value

        fns[name] = xbar_run
    rows = list(zip(fns, interleaved_medians(list(fns.values()), repeats), strict=True))

    # 4. the fit loop, ideal network, per step from the second epoch on
    n_fit = batch * max(4, repeats // 2)
    xf = (jax.random.uniform(k_x, (n_fit, n_steps, sizes[0])) < 0.1).astype(jnp.float32)
    yf = jax.random.randint(k_y, (n_fit,), 0, sizes[-1])
    result = fit(
        models["xbar ideal (SpikingMLP, DenseSynapse)"],
        (xf, yf),
        optimizer,
        epochs=2,
        batch_size=batch,
        key=k_model,
        loss=loss,
        metrics=(),
        progress=False,
    )
    rows.append(
        (
            "xbar fit loop (ideal; Python loop and dispatch included)",
            (result.history["time_s"][1] / (n_fit // batch), None),
        )
    )
    return rows


def main():
    tuned = xbar.tune_allocator()  # keep freed host memory (xbar.host); both sides benefit
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--quick", action="store_true", help="small smoke run, writes nothing")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--breakdown", action="store_true", help="also time one non-ideality at a time")
    args = p.parse_args()
    quick = args.quick or os.environ.get("XBAR_FAST") == "1"
    sizes, n_steps, batch = ((784, 32, 10), 5, 16) if quick else ((784, 256, 10), 25, 128)
    repeats = 3 if quick else args.repeats

    load0 = os.getloadavg()[0]
    rows = run(sizes, n_steps, batch, repeats, args.breakdown)
    load1 = os.getloadavg()[0]
    w_plain, c_plain = rows[0][1]
    size = f"{'-'.join(map(str, sizes))}, T={n_steps}, B={batch}"
    header = (
        "| workload | size | wall per step [ms] | steps/s | vs plain (wall) | CPU per step "
        "[ms] | vs plain (CPU) | target |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for name, (w, c) in rows:
        target = ""
        if name == TARGET_ROW:  # the quantity: time per step (wall clock)
            verdict = "met" if w / w_plain <= TARGET_RATIO else "missed"
            target = f"<= {TARGET_RATIO}x wall ({verdict})"
        cpu = ("", "") if c is None else (f"{1e3 * c:.1f}", f"{c / c_plain:.2f}x")
        lines.append(
            f"| {name} | {size} | {1e3 * w:.2f} | {1 / w:.1f} | {w / w_plain:.2f}x | "
            f"{cpu[0]} | {cpu[1]} | {target} |\n"
        )
    lines.append(
        f"| anchor: plain JAX, 2-core CPU (reference, not measured here) | 784-256-10, T=25, "
        f"B=128 | {ANCHOR_PLAIN_MS:.0f} | {1e3 / ANCHOR_PLAIN_MS:.1f} | 1.00x | | | |\n"
    )
    lines.append(
        f"| anchor: snnTorch 1.0, same CPU (reference) | 784-256-10, T=25, B=128 | "
        f"{ANCHOR_SNNTORCH_MS:.0f} | {1e3 / ANCHOR_SNNTORCH_MS:.1f} | "
        f"{ANCHOR_SNNTORCH_MS / ANCHOR_PLAIN_MS:.2f}x | | | |\n"
    )
    table = header + "".join(lines)
    gpu = jax.default_backend() == "gpu"
    dev = jax.devices()[0].device_kind if gpu else cpu_name()
    info = (
        f"{datetime.date.today().isoformat()}, jax {jax.__version__}, backend "
        f"{jax.default_backend()} ({dev}), {os.cpu_count()} CPU threads, float32, "
        f"{repeats} interleaved repeats; host allocator "
        f"{'tuned (xbar.tune_allocator)' if tuned else 'default'}; load average {load0:.1f} "
        f"before, {load1:.1f} after "
        f"(other processes shared the CPU: absolute times are upper bounds; the ratios, "
        f"from rows timed in turn, are the measurement; CPU = process time, all threads)"
    )
    note = (
        "GPU run." if gpu else "No GPU lent for this run: the GPU target (<= 1.5x) is not measured."
    )
    print(info)
    print(table)
    print(note)
    if not (quick or args.no_write):
        replace_section(SECTION, f"{info}\n\n{table}\n{note}")


if __name__ == "__main__":
    main()
