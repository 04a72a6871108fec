"""STDP on a crossbar: synapse updates per second of a full learning step.

One step of pair STDP on an ``n x n`` synapse array: trace updates, the rule's
asked-for change in outer-product form, the pulse decisions of the stochastic
pulse-coincidence scheme (``xbar.learning.Coincidence``, one slot, V/2 biasing) and the
device updates of every cell that sees a voltage (selected and half-selected cells: the
device dynamics of ``xbar.apply_pulses`` evaluated on the driven lines only, which gives
the same result, since the other cells see 0 V), for the statistical PCM training model (``devices.PCMStatistical``) and the
Stanford-PKU RRAM model (8 gap sub-steps per pulse, deterministic pulse model: its
stochastic gap term integrates many noise sub-steps per pulse). Throughput: ``n^2 / t_step``
synapse-updates/s; the traces start at their steady state. Anchor, measured in the same run: the same STDP step on plain float
weights (dense outer products, no devices). Pre and post neurons spike with probability
``--rate`` per step (Poisson). Targets: >= 1e7 synapse-updates/s on a 2-core CPU,
>= 1e9 /s on a GPU.
"""

from __future__ import annotations

import argparse
import datetime
import os

import jax
import jax.numpy as jnp
from _results import cpu_name, median_time, replace_section  # this folder (sys.path[0])
from xbar.learning import stdp, transfer

import xbar
from xbar import devices

SECTION = "## STDP on crossbars (`benchmarks/stdp.py`)"
INTRO = (
    "One pair-STDP learning step on an n x n array (traces, pulse decisions, device updates "
    "of every cell that sees a voltage). Targets: >= 1e7 synapse-updates/s (2-core CPU), "
    ">= 1e9 /s (GPU)."
)
NOTES = (
    "Notes: the traces start at their steady state (200 steps of the rule first). A step has "
    "two non-empty outer-product terms of pair STDP (potentiation: rows driven with "
    "probability x_i / max x, the columns of the post spikes; depression: the rows of the pre "
    "spikes, columns driven with probability ~ y_j), one SET or RESET phase each. Under V/2 "
    "biasing only the cells on a driven row or column see a voltage; the device model is "
    "evaluated there (`Coincidence(lines_only=True)`, chunks of 1/32 of the lines) and the "
    "rest keep their state, exactly as `xbar.apply_pulses` on the whole array leaves them "
    "(the 'every cell' row computes all cells, as before). PCMStatistical has no write "
    "threshold, so its half-selected cells step too (their energy is counted); it draws its "
    "cycle-to-cycle noise per computed cell. Stanford-PKU uses the deterministic pulse model "
    "(its stochastic gap term costs many noise sub-steps per pulse)."
)


def _spikes(key, n, rate):
    k1, k2 = jax.random.split(key)
    return (
        (jax.random.uniform(k1, (n,)) < rate).astype(jnp.float32),
        (jax.random.uniform(k2, (n,)) < rate).astype(jnp.float32),
    )


def workloads(n: int, rate: float):
    rule = stdp.PairSTDP(a_plus=0.01, a_minus=0.0105)
    dt = 1e-3
    mapping = xbar.ReferenceMapping(g_min=0.0, g_max=25e-6)
    pcm = devices.PCMStatistical()
    pku = devices.StanfordPKU(n_substeps=8)
    cases = [
        (
            "PCMStatistical (c2c noise), driven lines",
            xbar.Crossbar.create(pcm, (n, n), mapping=mapping, wiring=xbar.Wiring.ideal()),
            transfer.Coincidence(dw_pulse=0.02, v_set=1.0, v_reset=-1.0),
        ),
    ]
    xb_pku = xbar.Crossbar.create(
        pku,
        (n, n),
        mapping=xbar.ReferenceMapping(g_min=0.0, g_max=50e-6),
        wiring=xbar.Wiring.ideal(),
        gap=1.4e-9,
    )
    for label, lines_only in ((", driven lines", True), (", every cell (anchor)", False)):
        scheme = transfer.Coincidence(
            dw_pulse=0.02,
            v_set=1.45,
            v_reset=-1.3,
            width_set_s=5e-9,
            width_reset_s=20e-9,
            device_noise=False,
            lines_only=lines_only,
        )
        cases.append(("StanfordPKU (8 sub-steps, no c2c noise)" + label, xb_pku, scheme))

    def device_step(xb, scheme, n_iter):
        def one(carry, key):
            state, traces, e, pulses = carry
            k_s, k_d = jax.random.split(key)
            pre, post = _spikes(k_s, n, rate)
            rows, cols = rule.factors(traces, pre, post, dt)
            asked = rows.T @ cols
            _, traces = rule.update(None, traces, pre, post, dt)
            new, rep = transfer.deliver(
                xb.with_state(state), asked, scheme, k_d, factors=(rows, cols)
            )
            e = e + rep.total_energy_j.astype(jnp.float32)
            return (new.state, traces, e, pulses + jnp.sum(rep.pulses)), None

        @jax.jit
        def steps(state, traces, key):
            carry = (state, traces, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
            return jax.lax.scan(one, carry, jax.random.split(key, n_iter))[0]

        return steps

    def float_steps(n_iter):
        def one(carry, key):
            w, traces = carry
            pre, post = _spikes(key, n, rate)
            dw, traces = rule.update(None, traces, pre, post, dt)
            return (w + dw, traces), None

        @jax.jit
        def steps(w, traces, key):
            return jax.lax.scan(one, (w, traces), jax.random.split(key, n_iter))[0]

        return steps

    return cases, device_step, float_steps, rule


def run(n: int, rate: float, repeats: int, n_iter: int):
    cases, device_step, float_steps, rule = workloads(n, rate)
    key = jax.random.PRNGKey(0)
    # traces at their steady state (a run of 10 time constants), as in a running network
    w = jnp.full((n, n), 0.5, jnp.float32)
    _, traces0 = float_steps(200)(w, rule.init((n, n), jnp.float32), jax.random.PRNGKey(1))
    rows = []
    f = float_steps(n_iter)
    t = median_time(lambda: f(w, traces0, key), repeats) / n_iter
    rows.append(("float weights (anchor, no devices)", n, t, n * n / t, None))
    for name, xb, scheme in cases:
        steps = device_step(xb, scheme, n_iter)
        t = median_time(lambda s=steps, xb=xb: s(xb.state, traces0, key), repeats) / n_iter
        _, _, e, pulses = steps(xb.state, traces0, key)
        rows.append((name, n, t, n * n / t, (float(e) / n_iter, int(pulses) / n_iter)))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--rate", type=float, default=0.02, help="spike probability per step")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="learning steps per timed call")
    p.add_argument("--quick", action="store_true", help="smoke run: 128 x 128, no RESULTS entry")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    n = 128 if args.quick else args.n
    rows = run(n, args.rate, 2 if args.quick else args.repeats, args.steps)
    target = 1e7
    header = (
        "| workload | array | time per step [s] | throughput [synapse-updates/s] | energy, pulses per step | target |\n"
        "|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {name} | {n}x{n} | {t:.4f} | {rate:.3g} | "
        + ("-" if extra is None else f"{extra[0]:.3g} J, {extra[1]:.0f}")
        + (
            " | (anchor) |\n"
            if extra is None or "anchor" in name
            else f" | {'>=' if rate >= target else '<'} 1e7 |\n"
        )
        for name, n, t, rate, extra in rows
    )
    info = (
        f"{datetime.date.today().isoformat()}, jax {jax.__version__}, backend "
        f"{jax.default_backend()} ({cpu_name()}), {os.cpu_count()} CPU threads, float32, "
        f"spike probability {args.rate} per step, load average {os.getloadavg()[0]:.1f} "
        "(machine shared with other jobs: timings disturbed)"
    )
    note = "No GPU lent for this run: the GPU target (>= 1e9 synapse-updates/s) is not measured."
    print(info)
    print(table)
    print(note)
    if not (args.no_write or args.quick):
        replace_section(SECTION, f"{INTRO}\n\n{info}\n\n{table}\n{note}\n\n{NOTES}")


if __name__ == "__main__":
    main()
