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
# # 01 — A filamentary RRAM cell: the Stanford-PKU gap model
#
# **Question.** What does one HfOx RRAM cell do when we drive it the way a 1T1R array does:
# DC sweeps with a current compliance, trains of short programming pulses, and reads —
# and how much do cells differ from each other?
#
# The model is `devices.StanfordPKU` (Jiang & Wong, Stanford-PKU RRAM v1.0.0): the state is the
# tunnelling gap `g` between the filament tip and the electrode,
# `I = I0 exp(-g/g0) sinh(V/V0)`, and the gap moves by field-accelerated, thermally activated
# hopping once the field exceeds `F_min`. Positive voltage = SET.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from xbar import devices

FAST = os.environ.get("XBAR_FAST") == "1"
OUT = os.environ.get("XBAR_NOTEBOOK_OUT")


def show(fig, name):
    if OUT:
        fig.savefig(os.path.join(OUT, name), dpi=80)
        plt.close(fig)
    else:
        plt.show()


cell = devices.StanfordPKU(r_series=500.0, i_compliance=2e-3)  # a 1T1R cell
print(
    cell.resistance(cell.init_state((), gap=0.2e-9)),
    cell.resistance(cell.init_state((), gap=1.7e-9)),
)

# %% [markdown]
# ## 1. I–V loops with a compliance
#
# A triangular sweep 0 → +2.2 V → 0 → −1.6 V → 0. Without a compliance the SET runs away to the
# smallest gap (and amps of current); the 1T1R transistor caps the SET current, so the gap stops
# where the cell voltage drops to the switching threshold: the compliance sets the LRS.

# %%
n = 150 if FAST else 600


def ramp(a):
    return np.concatenate([np.linspace(0, a, n), np.linspace(a, 0, n)])


v = np.concatenate([ramp(2.2), ramp(-1.6)])
dt = 4e-3 / n
currents, labels = [], []
for icc in [0.5e-3, 1e-3, 2e-3]:
    m = devices.StanfordPKU(r_series=500.0, i_compliance=icc)
    _, i = m.sweep(m.init_state((), gap=1.7e-9), jnp.asarray(v), dt)
    currents.append(np.asarray(i))
    labels.append(f"I_cc = {icc * 1e3:.1f} mA")
ax = devices.plot.iv_loop(v, np.stack(currents, axis=1), labels=labels)
ax.set_title("1T1R I-V loops (pinched at 0 V)")
show(ax.figure, "01_iv_loops.png")

# %% [markdown]
# The loops are pinched at the origin (a memristor: `I(0) = 0` in every state), SET happens
# near the gate threshold `F_min t_ox / gamma` ≈ 1.4 V, and a larger compliance leaves a
# more conductive filament, which then needs a larger RESET current.
#
# ## 2. Pulse trains: analog potentiation and depression
#
# Short partial pulses move the gap a little at a time. SET pulses below the full-SET
# amplitude potentiate gradually (each pulse closes the gap a bit, and the growing current
# heats the filament, so steps first grow), saturating towards the compliance-limited
# state. RESET pulses through the series resistance are self-accelerating: as the gap
# opens, the cell takes a larger share of the applied voltage.

# %%
n_p = 20 if FAST else 50
amps = jnp.concatenate([jnp.full(n_p, 1.65), jnp.full(n_p, -1.85)])
s0 = cell.init_state((), gap=1.7e-9)
_, g = cell.pulse_train(s0, amps, 20e-9)
ax = devices.plot.pulse_response(np.asarray(g), unit="mS")
ax.axvline(n_p + 0.5, color="gray", ls=":")
ax.set_title("+1.65 V / 20 ns SET pulses, then -1.85 V / 20 ns RESET pulses")
show(ax.figure, "01_pulse_train.png")

# %% [markdown]
# The response is strongly nonlinear and asymmetric: potentiation is gradual and
# sigmoidal, depression is abrupt — the state-dependent update that device-aware learning
# rules must live with.
#
# ## 3. Device-to-device spread
#
# 1000 cells with lognormal spread of `g0` (5 %), `V0` (5 %) and `F_min` (3 %), each SET and
# RESET (+2.2 V then -2.5 V, 1 µs each) with the same pulses, then read at 0.1 V.

# %%
n_dev = 200 if FAST else 1000
pop = cell.sample(jax.random.key(0), (n_dev,), {"g0": 0.05, "v0": 0.05, "f_min": 0.03})
hrs0 = pop.init_state((n_dev,), gap=1.7e-9)
lrs = pop.apply_pulse(hrs0, 2.2, 1e-6)
hrs = pop.apply_pulse(lrs, -2.5, 1e-6)
r_lrs, r_hrs = np.asarray(pop.resistance(lrs)), np.asarray(pop.resistance(hrs))
axes = devices.plot.variability_spread([r_lrs, r_hrs], labels=["R_LRS", "R_HRS"])
show(axes[0].figure, "01_variability.png")
print(
    f"median R_LRS {np.median(r_lrs):.0f} Ohm, R_HRS {np.median(r_hrs):.0f} Ohm, "
    f"min window {np.min(r_hrs / r_lrs):.1f}"
)

# %% [markdown]
# Both states spread; the HRS spreads more (the current depends exponentially on the gap,
# and RESET depth depends on `F_min`), so the worst-case memory window is much smaller
# than the median one.
#
# ## 4. Cycle-to-cycle noise and read noise
#
# With a key, each pulse adds the model's stochastic gap term (a Wiener increment of
# `delta_gap0 tau_ref sqrt(dt / tau_ref)`), and each read adds 1/f read noise. The source's
# default `delta_gap0 = 0.02 m/s` is calibrated for nanosecond steps and makes a 1 µs pulse
# very noisy; here `delta_gap0 = 2e-3 m/s`.

# %%
n_c = 200 if FAST else 2000
noisy = devices.StanfordPKU(r_series=500.0, i_compliance=2e-3, delta_gap0=2e-3)
one = noisy.init_state((n_c,), gap=1.7e-9)
keys = jax.random.split(jax.random.key(1), 3)
s_set = noisy.apply_pulse(one, 2.2, 1e-6, keys[0])
g_true = np.asarray(noisy.conductance(s_set))
g_read = np.asarray(noisy.read_noise(s_set, keys[1]))
fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
ax[0].hist(g_true * 1e3, bins=30)
ax[0].set_xlabel("conductance after SET [mS] (C2C spread)")
ax[1].hist((g_read - g_true) / g_true * 100, bins=30)
ax[1].set_xlabel("read error [%] (1/f read noise)")
show(fig, "01_noise.png")
print(
    f"C2C spread {np.std(g_true) / np.mean(g_true):.1%}, read noise {np.std(g_read / g_true - 1):.2%}"
)

# %% [markdown]
# **What it shows.** The physics model reproduces the textbook RRAM behaviour — threshold
# switching near 1.4 V, compliance-controlled LRS, gradual RESET — and gives the spread and
# noise numbers that the array-level studies (crossbar, learning) inherit.
