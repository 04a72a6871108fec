"""Network benchmarks: SNN inference on crossbar cores against plain JAX; cost per step vs cores.

Run: ``python benchmarks/networks.py [--append] [--quick]`` (float32, the library default).
``--append`` replaces the "Networks" section of ``RESULTS.md``; ``--quick`` is a small
smoke run (nothing recorded).

Targets (issue): a 784-256-10 LIF network, T = 100, batch 128, on crossbar cores with
read noise and IR drop through the effective matrix, runs in at most 2x the time of the
same network written as plain JAX with dense weights, measured side by side in this run
(CPU; on a GPU where one is lent). Also: the cost of one time step against the number of
256x256 cores (1 to 64, chained by address-event routing).

Both networks use the same forward-Euler LIF (dt/tau = 0.1, r = 10, threshold 0.5, reset to
0) and the same rate-coded input. The crossbar network is built with the public API
(``networks.Core`` on ``CrossbarSynapses`` of statistical PCM, differential pairs, 8-bit
DAC/ADC, NeuroSim wires with the first-order effective matrix cached per tile, read noise
drawn per read); the baseline is ``lax.scan`` over ``x @ W`` and the LIF update.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import equinox as eqx
import jax
import jax.numpy as jnp
from _results import cpu_name, median_time, replace_section  # this folder (sys.path[0])

import xbar
from xbar import devices
from xbar import networks as nw

DT, TAU, R, V_TH = 1e-3, 1e-2, 10.0, 0.5


def _config(tile=(256, 256), read_noise=True):
    return nw.CrossbarConfig(
        read_noise=read_noise,
        device=devices.PCMStatistical(),
        wiring=xbar.Wiring(),
        ir_drop=nw.FirstOrderIRDrop(),
        dac=xbar.DAC(bits=8),
        adc=xbar.ADC(bits=8, out_bound=40.0),
        tile_shape=tile,
    )


def _lif():
    return nw.LIF(tau=TAU, r=R, v_threshold=V_TH)


def _weights(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        jax.random.normal(k, (n_out, n_in), jnp.float32) * (2.0 / n_in) ** 0.5
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def crossbar_mlp(ws, key, tile=(256, 256), read_noise=True):
    """Input -> Core -> Core -> output on crossbars (weights scaled per layer)."""
    nodes = {"in": nw.Identity((ws[0].shape[1],))}
    edges, prev = [], "in"
    for i, w in enumerate(ws):
        cfg = _config(tile, read_noise)
        syn = nw.CrossbarSynapses.create(w, cfg, jax.random.fold_in(key, i))
        nodes[f"core{i}"] = nw.Core(synapses=syn, neuron=_lif(), dt=DT)
        edges.append((prev, f"core{i}"))
        prev = f"core{i}"
    nodes["out"] = nw.Identity((ws[-1].shape[0],))
    edges.append((prev, "out"))
    return nw.Network.create(nodes, edges, input="in", output="out", dt=DT)


def plain_mlp(ws, x):
    """The same LIF MLP in plain JAX: (T, B, n_in) -> output spikes (T, B, n_out)."""
    a = DT / TAU

    def step(vs, xt):
        s, new = xt, []
        for w, v in zip(ws, vs, strict=True):
            v = v + a * (-v + R * (s @ w.T))
            z = (v > V_TH).astype(v.dtype)
            new.append(v * (1 - z))
            s = z
        return new, s

    v0 = [jnp.zeros((x.shape[1], w.shape[0]), x.dtype) for w in ws]
    return jax.lax.scan(step, v0, x)[1]


def bench_inference(t=100, b=128, sizes=(784, 256, 10), repeats=3):
    key = jax.random.PRNGKey(0)
    ws = _weights(key, list(sizes))
    x = (jax.random.uniform(jax.random.PRNGKey(1), (t, b, sizes[0])) < 0.2).astype(jnp.float32)
    net = crossbar_mlp(ws, jax.random.PRNGKey(2))
    big = crossbar_mlp(ws, jax.random.PRNGKey(2), tile=(1024, 256))
    per_run = crossbar_mlp(ws, jax.random.PRNGKey(2), read_noise=xbar.PerCall())
    big_run = crossbar_mlp(ws, jax.random.PRNGKey(2), (1024, 256), read_noise=xbar.PerCall())
    run = eqx.filter_jit(lambda n, xx, k: n.run(xx, k))
    k = jax.random.PRNGKey(3)
    plain = jax.jit(plain_mlp)
    fns = {
        "xbar": lambda: run(net, x, k),
        "quiet": lambda: run(net, x, None),
        "big": lambda: run(big, x, k),
        "per_run": lambda: run(per_run, x, k),
        "big_run": lambda: run(big_run, x, k),
        "plain": lambda: plain(ws, x),
    }
    # interleaved rounds: each round times the three workloads back to back, so a change of
    # the machine's load between rounds affects all three; ratios are medians over rounds
    times = {n: [] for n in fns}
    for f in fns.values():
        jax.block_until_ready(f())  # compile
    for _ in range(repeats):
        for n, f in fns.items():
            times[n].append(median_time(f, 1))
    med = {n: statistics.median(v) for n, v in times.items()}
    ratio = statistics.median(a / b for a, b in zip(times["xbar"], times["plain"], strict=True))
    ratio_q = statistics.median(a / b for a, b in zip(times["quiet"], times["plain"], strict=True))
    ratio_b = statistics.median(a / b for a, b in zip(times["big"], times["plain"], strict=True))
    ratio_r = statistics.median(
        a / b for a, b in zip(times["per_run"], times["plain"], strict=True)
    )
    ratio_br = statistics.median(
        a / b for a, b in zip(times["big_run"], times["plain"], strict=True)
    )
    rate = float(jnp.mean(run(net, x, k)))
    return med, rate, (ratio, ratio_q, ratio_b, ratio_r, ratio_br)


def bench_cores(n_cores=(1, 4, 16, 64), t=20, b=16, repeats=3):
    """Time per step of a chain of ``n`` 256x256 cores (input -> core 1 -> ... -> core n)."""
    rows = []
    x = (jax.random.uniform(jax.random.PRNGKey(1), (t, b, 256)) < 0.2).astype(jnp.float32)
    for n in n_cores:
        ws = _weights(jax.random.PRNGKey(n), [256] * (n + 1))
        net = crossbar_mlp(ws, jax.random.PRNGKey(2))
        run = eqx.filter_jit(lambda nn, xx, k: nn.run(xx, k))
        k = jax.random.PRNGKey(3)
        tm = median_time(lambda run=run, net=net, k=k: run(net, x, k), repeats)
        rows.append((n, tm / t))
    return rows


def main(append=False, quick=False):
    tuned = xbar.tune_allocator()  # keep freed host memory (xbar.host); both sides benefit
    load0 = os.getloadavg()
    if quick:
        med, rate, ratios = bench_inference(t=10, b=16, repeats=2)
        cores = bench_cores((1, 4), t=5, b=4, repeats=2)
        size = "T=10, B=16, 784-256-10"
    else:
        med, rate, ratios = bench_inference(repeats=9)
        cores = bench_cores()
        size = "T=100, B=128, 784-256-10"
    load1 = os.getloadavg()
    dev = jax.devices()[0]
    gpu_note = "" if dev.platform == "gpu" else " (no GPU lent: CPU only)"
    t_x, t_q, t_b, t_p = med["xbar"], med["quiet"], med["big"], med["plain"]
    t_r, t_br = med["per_run"], med["big_run"]
    ratio, ratio_q, ratio_b, ratio_r, ratio_br = ratios
    lines = [
        "| workload | size | time | throughput | target |",
        "| --- | --- | --- | --- | --- |",
        f"| LIF MLP on 256x256 crossbar tiles (read noise per read, IR drop via effective "
        f"matrix) | {size} | {t_x:.3f} s | {1 / t_x:.2f} batches/s | <= 2x plain |",
        f"| same, read noise drawn once per run (xbar.PerCall) | {size} | {t_r:.3f} s "
        f"| {1 / t_r:.2f} batches/s | <= 2x plain |",
        f"| same, without read noise (IR drop, DAC/ADC) | {size} | {t_q:.3f} s "
        f"| {1 / t_q:.2f} batches/s | |",
        f"| same with read noise, one 784-row tile per layer | {size} | {t_b:.3f} s "
        f"| {1 / t_b:.2f} batches/s | |",
        f"| same, one 784-row tile per layer, read noise once per run | {size} | {t_br:.3f} s "
        f"| {1 / t_br:.2f} batches/s | <= 2x plain |",
        f"| same LIF MLP, plain JAX dense | {size} | {t_p:.3f} s | {1 / t_p:.2f} batches/s "
        "| anchor |",
        f"| ratio 256x256 tiles / plain (median of paired rounds) | | {ratio:.2f}x | "
        f"| <= 2x{gpu_note} |",
        f"| ratio read noise once per run / plain | | {ratio_r:.2f}x | | <= 2x{gpu_note} |",
        f"| ratio without read noise / plain | | {ratio_q:.2f}x | | |",
        f"| ratio one 784-row tile / plain | | {ratio_b:.2f}x | | |",
        f"| ratio one 784-row tile, read noise once per run / plain | | {ratio_br:.2f}x | "
        f"| <= 2x{gpu_note} |",
    ]
    for n, ts in cores:
        lines.append(
            f"| one time step, chain of {n} cores of 256x256 (batch {16 if not quick else 4}) "
            f"| {n} cores | {ts * 1e3:.2f} ms | {ts * 1e3 / n:.3f} ms per core | report |"
        )
    table = "\n".join(lines)
    print(table)
    print(f"mean output rate {rate:.3f}; load average before {load0}, after {load1}")
    if append and not quick:
        info = (
            f"Machine: {cpu_name()} ({os.cpu_count()} cores), {platform.system()}; "
            f"backend {dev.platform} ({dev.device_kind}), jax {jax.__version__}, float32; "
            f"no GPU lent; host allocator {'tuned (xbar.tune_allocator)' if tuned else 'default'}"
            f". Medians after warm-up (inference: 9 interleaved rounds; cores: 3); load average {load0[0]:.1f} before, "
            f"{load1[0]:.1f} after (other jobs may share the 2 cores)."
        )
        replace_section("## Networks", info + "\n\n" + table)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--append", action="store_true")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    main(append=a.append, quick=a.quick)
