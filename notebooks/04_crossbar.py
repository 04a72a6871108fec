# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — The crossbar: mapping, programming, non-idealities, energy
#
# **Question.** A weight matrix is put on a memristive crossbar. How well do the devices
# hold the weights after programming, how much does each non-ideality (converters, read
# noise, drift, IR drop, stuck cells) cost the accuracy of one analog matrix-vector
# product, and where does the energy of a read go?

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import xbar
from xbar import devices

jax.config.update("jax_enable_x64", True)
FAST = os.environ.get("XBAR_FAST") == "1"
OUT = os.environ.get("XBAR_NOTEBOOK_OUT")
M, N = (32, 16) if FAST else (128, 64)


def show(fig, name):
    if OUT:
        fig.savefig(os.path.join(OUT, name), dpi=80)
        plt.close(fig)
    else:
        plt.show()


# %% [markdown]
# ## 1. Mapping signed weights on differential pairs
# Each weight `w` sits on a pair `(G+, G-)`; one device carries `|w|`, the other stays at
# `g_min`.

# %%
mapping = xbar.DifferentialMapping(g_min=5e-6, g_max=100e-6)
w = jax.random.uniform(jax.random.PRNGKey(1), (M, N), minval=-1, maxval=1)
g = mapping.to_conductance(w)
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
ax[0].scatter(w.ravel(), g[:, 0::2].ravel() * 1e6, s=4, label="G+")
ax[0].scatter(w.ravel(), g[:, 1::2].ravel() * 1e6, s=4, label="G-")
ax[0].set(xlabel="weight", ylabel="G [uS]")
ax[0].legend()
ax[1].imshow(g * 1e6, aspect="auto")
ax[1].set(title="physical array [uS]")
show(fig, "04_mapping.png")
print("max |inverse(map(w)) - w| =", float(jnp.max(jnp.abs(mapping.from_conductance(g) - w))))

# %% [markdown]
# ## 2. Programming: write-verify vs open loop (Stanford-PKU RRAM, 1T1R series resistor)

# %%
rram = devices.StanfordPKU(r_series=2e3, delta_gap0=5e-3)
xb0 = xbar.Crossbar.create(
    rram,
    (M, N),
    key=jax.random.PRNGKey(0),
    variability={"i0": 0.05, "f_min": 0.02},
    mapping=mapping,
    gap=1.7e-9,
    dac=xbar.DAC(v_read=0.1),
)
wv = xbar.WriteVerify(
    tol=0.02,
    max_pulses=200,
    v_set0=1.5,
    v_set_step=0.05,
    v_set_max=3.5,
    v_reset0=-1.2,
    v_reset_step=-0.05,
    v_reset_max=3.5,
)
ol = xbar.OpenLoop(v_grid=jnp.linspace(1.5, 5.0, 200), width_s=100e-9, start={"gap": 1.7e-9})
prog = jax.jit(xbar.program)
xb_wv, rep_wv = prog(xb0, w, wv, jax.random.PRNGKey(2))
xb_ol, rep_ol = prog(xb0, w, ol, jax.random.PRNGKey(2))
for name, r in (("write-verify", rep_wv), ("open loop", rep_ol)):
    s = xbar.write_summary(r)
    print(
        f"{name:13s} success {float(s['success_rate']):.3f}  mean pulses "
        f"{float(s['mean_pulses']):.1f}  energy {float(s['energy_j']) * 1e9:.2f} nJ  "
        f"std(rel err) {float(jnp.std(r.rel_error)):.4f}"
    )
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
bins = np.linspace(-0.2, 0.2, 61)
ax[0].hist(np.asarray(rep_wv.rel_error).ravel(), bins, alpha=0.6, label="write-verify")
ax[0].hist(np.asarray(rep_ol.rel_error).ravel(), bins, alpha=0.6, label="open loop")
ax[0].set(xlabel="(G - G_target) / (g_max - g_min)", ylabel="cells")
ax[0].legend()
ax[1].hist(np.asarray(rep_wv.pulses).ravel(), 40)
ax[1].set(xlabel="pulses per cell (write-verify)")
show(fig, "04_programming.png")

# %% [markdown]
# Write-verify keeps almost every cell inside the ±2 % band at the cost of tens of
# pulses; the open-loop single shot lands wherever device-to-device spread and
# cycle-to-cycle noise take it.
#
# ## 3. Accuracy of one MVM vs each non-ideality (statistical PCM, Joshi 2020)

# %%
pcm = devices.PCMStatistical()
pmap = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
x = jax.random.uniform(jax.random.PRNGKey(5), (64, M), minval=-1, maxval=1)
ref = x @ w
ideal = dict(wiring=xbar.Wiring.ideal(), dac=xbar.ideal_dac(), adc=xbar.ideal_adc())
exact = pcm.program(None, pmap.to_conductance(w))
noisy = pcm.program(jax.random.PRNGKey(7), pmap.to_conductance(w))


def make(state=exact, **kw):
    return xbar.Crossbar.create(pcm, (M, N), mapping=pmap, state=state, **{**ideal, **kw})


def err(y):
    return float(jnp.sqrt(jnp.mean((y - ref) ** 2)) / jnp.sqrt(jnp.mean(ref**2)))


k = jax.random.PRNGKey(9)
faulty = xbar.Crossbar.create(
    pcm, (M, N), mapping=pmap, state=exact, key=k, faults=devices.StuckAtFaults(0.02, 0.02), **ideal
)
cases = {
    "ideal": make().mvm(x),
    "DAC 6 bit": make(dac=xbar.DAC(bits=6)).mvm(x),
    "ADC 6 bit": make(adc=xbar.ADC(bits=6, out_bound=8.0)).mvm(x),
    "programming noise": make(noisy).mvm(x),
    "read noise": make(noisy).mvm(x, k) - make(noisy).mvm(x) + ref,
    "drift 1 day": make(noisy).mvm(x, t_s=86400.0),
    "drift 1 day + GDC": make(noisy).mvm(x, t_s=86400.0, drift_compensation=True),
    "IR drop (22 nm wires)": make(wiring=xbar.Wiring()).mvm(x),
    "IR drop (10x wires)": make(wiring=xbar.Wiring(r_wl=21.2, r_bl=21.2)).mvm(x),
    "stuck cells 2%+2%": faulty.mvm(x),
}
names = list(cases)
errs = [err(cases[n]) for n in names]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(names, np.maximum(errs, 1e-16))
ax.set_xscale("log")
ax.set(xlabel="relative RMS error of y = x @ W")
show(fig, "04_nonidealities.png")
for n_, e_ in zip(names, errs, strict=True):
    print(f"{n_:24s} {e_:.2e}")

# %% [markdown]
# The ideal array is exact to rounding. Converters cost about a quantisation step;
# programming noise and drift dominate for PCM, and global drift compensation removes
# most of the drift error (the part common to all devices). IR drop grows with wire
# resistance (it scales as `r G N^2`); stuck cells corrupt only their own columns.
#
# ## 4. Energy breakdown of one read

# %%
xb_e = make(
    wiring=xbar.Wiring(r_wl=21.2, r_bl=21.2, r_src=50.0, r_sense=50.0),
    dac=xbar.DAC(bits=8),
    adc=xbar.ADC(bits=8),
)
e = xbar.read_energy(xb_e, x[:8])
parts = {
    k_: float(jnp.mean(getattr(e, k_)))
    for k_ in ("cells", "word_lines", "bit_lines", "driver", "sense", "dac", "adc")
}
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(list(parts), [v * 1e12 for v in parts.values()])
ax.set_yscale("log")
ax.set(ylabel="energy per read [pJ]")
show(fig, "04_energy.png")
print(
    {k_: f"{v * 1e12:.3g} pJ" for k_, v in parts.items()},
    f"latency {float(e.latency_s) * 1e9:.0f} ns",
    f"conservation error {float(jnp.max(jnp.abs(e.array / e.supplied - 1))):.1e}",
)

# %% [markdown]
# At these conductances (tens of µS, 0.2 V) the cells take most of the array energy
# and the converters (UNCONFIRMED Walden figures of merit) dominate the total; the wires
# take a small share. The array energy equals the energy the drivers supply, as it must.

# %% [markdown]
# ## 5. Writing through resistive lines: where a write pulse really arrives
# A passive array is written with V/2 biasing: selected row at `V`, selected column at 0,
# every other line at `V/2`. `xbar.apply_pulses(..., ir_drop=True)` solves the whole array
# at the pulse voltage (every cell with its nonlinear Stanford-PKU I-V, here with a 2 kOhm
# series resistor) before the devices move, so the drop along the lines and the load of
# the half-selected cells are included. Cells nearest the drivers (row `M-1`, column 0)
# and farthest from them (row 0, last column) are selected in turn, in an array whose
# cells are all in the high-resistance state (SET pulse) and all in the low-resistance
# state (RESET pulse).

# %%
dev = devices.StanfordPKU(r_series=2e3)
wires = xbar.Wiring(r_wl=5.0, r_bl=5.0, r_src=20.0, r_sense=20.0)
wmap = xbar.DifferentialMapping(1e-6, 1e-3)
fig, ax = plt.subplots(2, 2, figsize=(9, 6))
for k, (label, gap, v_w) in enumerate(
    (("HRS array, SET", 1.7e-9, 3.0), ("LRS array, RESET", 0.3e-9, -2.4))
):
    xw = xbar.Crossbar.create(dev, (M, N), wiring=wires, mapping=wmap, gap=gap)
    m, p = xw.physical_shape
    for where, (r, c) in (("near", (m - 1, 0)), ("far", (0, p - 1))):
        rows = jnp.zeros(m, bool).at[r].set(True)
        cols = jnp.zeros(p, bool).at[c].set(True)
        rv, cv = xbar.bias_scheme((m, p), rows, cols, v_w, "V/2")
        new, rep = xbar.apply_pulses(xw, rv, cv, 10e-9, ir_drop=True)
        v = np.asarray(rep.v_cell) / v_w
        dgap = np.abs(np.asarray(new.state.gap - xw.state.gap))
        half = np.zeros((m, p), bool)
        half[r, :] = half[:, c] = True
        half[r, c] = False
        print(
            f"{label:17s} {where:4s}: selected cell {v[r, c]:.3f} V_w, half-selected "
            f"<= {np.max(np.abs(v[half])):.3f} V_w, selected gap moved "
            f"{dgap[r, c] * 1e9:.3f} nm, disturbed half-selected cells "
            f"{int(np.sum(dgap[half] > 1e-12))}, energy: cells "
            f"{float(jnp.sum(rep.energy_j)) * 1e12:.3g} pJ, lines "
            f"{float(rep.wire_energy_j) * 1e12:.3g} pJ"
        )
        if where == "far":
            im = ax[k, 0].imshow(v, aspect="auto")
            fig.colorbar(im, ax=ax[k, 0])
            ax[k, 0].set(title=f"{label}: v_cell / V_w, far cell selected")
            im = ax[k, 1].imshow(np.log10(dgap + 1e-16), aspect="auto")
            fig.colorbar(im, ax=ax[k, 1])
            ax[k, 1].set(title="log10 |gap change| [m]")
fig.tight_layout()
show(fig, "04_write_ir_drop.png")

# %% [markdown]
# The half-selected cells are not idle loads: at `V/2` the sinh-type I-V of the
# device conducts hundreds of times more than at a read voltage, so the selected row and
# column carry the currents of all their half-selected cells and their voltage sags along
# the line. A cell near the drivers gets most of the pulse; the farthest cell of the
# high-resistance array gets about half of it (128 x 128 cells), and in the low-resistance
# array almost none. Write-verify compensates
# a partial drop by stepping the amplitude; a drop this large needs shorter lines, a
# selector or an access transistor per cell.
