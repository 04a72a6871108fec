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
#     name: python3
# ---

# %% [markdown]
# # PCM devices: programming curves, multilevel RESET, drift and read noise
#
# **Question.** How does a phase-change cell respond to RESET and SET pulses, how can the falling edge of a pulse program intermediate levels, and how do drift and 1/f noise degrade a programmed conductance over time?
#
# We use the physics model `devices.PCM` (electro-thermal mushroom cell: Joule heating, melt-quench, Gaussian crystal-growth velocity, threshold switching, drift) and the statistical model `devices.PCMStatistical` (Joshi et al., Nat. Commun. 2020).

# %%
import os
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from xbar import devices

FAST = os.environ.get("XBAR_FAST") == "1"
OUT = os.environ.get("XBAR_NOTEBOOK_OUT")


def show(fig, name):
    if OUT:
        fig.savefig(pathlib.Path(OUT) / f"{name}.png", dpi=100)
        plt.close(fig)
    else:
        plt.show()


pcm = devices.PCM()
s_set = pcm.init_state(())
s_reset = pcm.apply_pulse(s_set, 1.6, 40e-9)
print(
    "read resistance SET / RESET [Ohm]:",
    float(pcm.read_resistance(s_set)),
    float(pcm.read_resistance(s_reset)),
)

# %% [markdown]
# ## RESET and SET programming curves
#
# RESET: 40 ns pulses of increasing amplitude on a crystalline cell. Nothing happens until the interface reaches the melting temperature; above it the molten (then quenched) region grows with the pulse power. SET: 150 ns pulses on a RESET cell; the cell must first threshold-switch, then crystal growth is fastest when the interface sits near the peak of the growth window, and too large pulses re-melt.

# %%
n = 25 if FAST else 81
v_reset = jnp.linspace(1.0, 1.8, n)
r_reset = pcm.read_resistance(pcm.apply_pulse(s_set, v_reset, 40e-9))
t_peak = pcm.peak_temperature(s_set, v_reset, 40e-9)
v_set = jnp.linspace(0.9, 1.4, n)
r_set = pcm.read_resistance(pcm.apply_pulse(s_reset, v_set, 150e-9))

fig, ax = plt.subplots(1, 2, figsize=(10, 4))
ax[0].semilogy(v_reset, r_reset, "o-", label="read R")
ax[0].set_xlabel("RESET amplitude [V] (40 ns)")
ax[0].set_ylabel("read resistance [Ohm]")
ax2 = ax[0].twinx()
ax2.plot(v_reset, t_peak, "r--", label="peak T")
ax2.axhline(pcm.t_melt_k, color="r", lw=0.5)
ax2.set_ylabel("peak interface temperature [K]")
ax[1].semilogy(v_set, r_set, "s-")
ax[1].set_xlabel("SET amplitude [V] (150 ns, from RESET)")
ax[1].set_ylabel("read resistance [Ohm]")
fig.tight_layout()
show(fig, "programming_curves")

# %% [markdown]
# ## The threshold-switching I-V
#
# Below threshold the amorphous cap conducts by Poole-Frenkel hopping (nonlinear); above `V_th = V_th0 + E_th u_a` the cell snaps to the ON branch, where the cell voltage plateaus near 0.8 V (as measured on mushroom cells: Sci. Rep. 12 (2022), "Experimental validation of state equations and dynamic route maps for phase change memristive devices", Fig. 5).

# %%
v = jnp.linspace(0.0, 2.0, 201)
fig, ax = plt.subplots(figsize=(5, 4))
for u in (10e-9, 30e-9, 50e-9):
    s = pcm.init_state((), u_a=u)
    ax.semilogy(pcm.cell_voltage(s, v), pcm.current(s, v) + 1e-12, label=f"u_a={u * 1e9:.0f} nm")
ax.set_xlabel("cell voltage [V]")
ax.set_ylabel("current [A]")
ax.legend()
show(fig, "iv")

# %% [markdown]
# ## Multilevel programming by the falling edge
#
# The same RESET amplitude, but the trailing edge is made slower: while the temperature falls through the growth window, part of the melt re-crystallises, so the final conductance rises with the fall time. Repeated partial-SET pulses raise the conductance step by step until the cell is crystalline.

# %%
falls = jnp.logspace(-9, np.log10(400e-9), 8 if FAST else 24)
g_fall = pcm.conductance(pcm.apply_pulse(s_set, 1.6, 40e-9, fall_s=falls))
_, g_train = pcm.pulse_train(s_reset, jnp.full((20,), 1.1), 10e-9)
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
ax[0].semilogx(falls * 1e9, g_fall * 1e6, "o-")
ax[0].set_xlabel("fall time [ns]")
ax[0].set_ylabel("conductance at 0.1 V [uS]")
ax[1].semilogy(np.arange(1, 21), g_train * 1e6, "o-")
ax[1].set_xlabel("number of partial-SET pulses (1.1 V, 10 ns)")
ax[1].set_ylabel("conductance [uS]")
fig.tight_layout()
show(fig, "multilevel")

# %% [markdown]
# ## Drift fan-out over eight decades
#
# Cells programmed to different levels (physics model, with a 20 % device-to-device spread of the amorphous drift exponent): the amorphous share of the resistance drifts with `nu ~ 0.1`, the crystalline path barely, so low-conductance states fan out.

# %%
n_dev = 16 if FAST else 64
t = jnp.logspace(0, 8, 33)
pcm_var = pcm.sample(jax.random.key(0), (n_dev,), {"nu_a": devices.Spread(0.2)})
fig, ax = plt.subplots(figsize=(6, 4))
for u, c in ((5e-9, "C0"), (20e-9, "C1"), (50e-9, "C2")):
    s0 = pcm_var.init_state((n_dev,), u_a=u)
    g = jax.vmap(lambda tt, s0=s0: pcm_var.conductance(pcm_var.drift(s0, tt)))(t)
    ax.loglog(t, g * 1e6, color=c, alpha=0.4, lw=0.8)
ax.set_xlabel("time since programming [s]")
ax.set_ylabel("conductance [uS]")
show(fig, "drift")

# %% [markdown]
# ## Read noise growth and drift compensation (statistical model)
#
# The statistical model gives the relative 1/f read noise `Q_s sqrt(ln((t + t_read) / (2 t_read)))`, growing with log time; global drift compensation rescales the summed output by `readout(t0) / readout(t)`.

# %%
stat = devices.PCMStatistical()
n_s = 20_000 if FAST else 200_000
key = jax.random.key(1)
g_t = jax.random.uniform(key, (n_s,)) * stat.g_max
st = stat.program(jax.random.key(2), g_t)
times = jnp.logspace(0, 7.5, 12)
rel = [
    float(
        jnp.std(stat.read(st, jax.random.key(3), t_s=tt) / stat.conductance(stat.drift(st, tt)) - 1)
    )
    for tt in times
]
g_map = g_t.reshape(-1, 100)
g0 = stat.read(stat.program(jax.random.key(4), g_map), jax.random.key(5), t_s=0.0)
means = []
for tt in times:
    gt = stat.read(stat.program(jax.random.key(4), g_map), jax.random.key(6), t_s=tt)
    alpha = devices.drift_compensation(g0, gt)
    means.append((float(gt.sum() / g0.sum()), float(alpha * gt.sum() / g0.sum())))
means = np.array(means)
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
ax[0].semilogx(times, np.array(rel) * 100, "o-")
ax[0].set_xlabel("time after programming [s]")
ax[0].set_ylabel("relative read noise [%] (all levels)")
ax[1].semilogx(times, means[:, 0], "o-", label="raw")
ax[1].semilogx(times, means[:, 1], "s-", label="drift compensated")
ax[1].set_xlabel("time after programming [s]")
ax[1].set_ylabel("summed output / value at t0")
ax[1].legend()
fig.tight_layout()
show(fig, "noise_gdc")

# %% [markdown]
# **What it shows.** RESET needs melting (a sharp threshold in amplitude), and the read resistance then grows with the RESET power; SET has a window in amplitude. The falling edge is a second knob for multilevel programming. Drift fans out the low-conductance levels over eight decades, read noise grows only as sqrt(log t), and a single global scale restores the mean output after drift.
