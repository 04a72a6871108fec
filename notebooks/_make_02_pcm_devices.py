"""Build notebooks/02_pcm_devices.ipynb (no outputs saved). Run: python notebooks/_make_02_pcm_devices.py"""

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# PCM devices: programming curves, multilevel RESET, drift and read noise\n\n"
        "**Question.** How does a phase-change cell respond to RESET and SET pulses, how can "
        "the falling edge of a pulse program intermediate levels, and how do drift and 1/f "
        "noise degrade a programmed conductance over time?\n\n"
        "We use the physics model `devices.PCM` (electro-thermal mushroom cell: Joule heating, "
        "melt-quench, Gaussian crystal-growth velocity, threshold switching, drift) and the "
        "statistical model `devices.PCMStatistical` (Joshi et al., Nat. Commun. 2020)."
    ),
    new_code_cell(
        "import os\n"
        "import pathlib\n\n"
        "import jax\n"
        "import jax.numpy as jnp\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n\n"
        "from xbar import devices\n\n"
        "FAST = os.environ.get('XBAR_FAST') == '1'\n"
        "OUT = os.environ.get('XBAR_NOTEBOOK_OUT')\n\n\n"
        "def show(fig, name):\n"
        "    if OUT:\n"
        "        fig.savefig(pathlib.Path(OUT) / f'{name}.png', dpi=100)\n"
        "        plt.close(fig)\n"
        "    else:\n"
        "        plt.show()\n\n\n"
        "pcm = devices.PCM()\n"
        "s_set = pcm.init_state(())\n"
        "s_reset = pcm.apply_pulse(s_set, 1.6, 40e-9)\n"
        "print('read resistance SET / RESET [Ohm]:', float(pcm.read_resistance(s_set)),\n"
        "      float(pcm.read_resistance(s_reset)))"
    ),
    new_markdown_cell(
        "## RESET and SET programming curves\n\n"
        "RESET: 40 ns pulses of increasing amplitude on a crystalline cell. Nothing happens "
        "until the interface reaches the melting temperature; above it the molten (then "
        "quenched) region grows with the pulse power. SET: 150 ns pulses on a RESET cell; "
        "the cell must first threshold-switch, then crystal growth is fastest when the "
        "interface sits near the peak of the growth window, and too large pulses re-melt."
    ),
    new_code_cell(
        "n = 25 if FAST else 81\n"
        "v_reset = jnp.linspace(1.0, 1.8, n)\n"
        "r_reset = pcm.read_resistance(pcm.apply_pulse(s_set, v_reset, 40e-9))\n"
        "t_peak = pcm.peak_temperature(s_set, v_reset, 40e-9)\n"
        "v_set = jnp.linspace(0.9, 1.4, n)\n"
        "r_set = pcm.read_resistance(pcm.apply_pulse(s_reset, v_set, 150e-9))\n\n"
        "fig, ax = plt.subplots(1, 2, figsize=(10, 4))\n"
        "ax[0].semilogy(v_reset, r_reset, 'o-', label='read R')\n"
        "ax[0].set_xlabel('RESET amplitude [V] (40 ns)')\n"
        "ax[0].set_ylabel('read resistance [Ohm]')\n"
        "ax2 = ax[0].twinx()\n"
        "ax2.plot(v_reset, t_peak, 'r--', label='peak T')\n"
        "ax2.axhline(pcm.t_melt_k, color='r', lw=0.5)\n"
        "ax2.set_ylabel('peak interface temperature [K]')\n"
        "ax[1].semilogy(v_set, r_set, 's-')\n"
        "ax[1].set_xlabel('SET amplitude [V] (150 ns, from RESET)')\n"
        "ax[1].set_ylabel('read resistance [Ohm]')\n"
        "fig.tight_layout()\n"
        "show(fig, 'programming_curves')"
    ),
    new_markdown_cell(
        "## The threshold-switching I-V\n\n"
        "Below threshold the amorphous cap conducts by Poole-Frenkel hopping (nonlinear); "
        "above `V_th = V_th0 + E_th u_a` the cell snaps to the ON branch, where the cell "
        "voltage plateaus near 0.8 V (reference target V9)."
    ),
    new_code_cell(
        "v = jnp.linspace(0.0, 2.0, 201)\n"
        "fig, ax = plt.subplots(figsize=(5, 4))\n"
        "for u in (10e-9, 30e-9, 50e-9):\n"
        "    s = pcm.init_state((), u_a=u)\n"
        "    ax.semilogy(pcm.cell_voltage(s, v), pcm.current(s, v) + 1e-12, label=f'u_a={u*1e9:.0f} nm')\n"
        "ax.set_xlabel('cell voltage [V]')\n"
        "ax.set_ylabel('current [A]')\n"
        "ax.legend()\n"
        "show(fig, 'iv')"
    ),
    new_markdown_cell(
        "## Multilevel programming by the falling edge\n\n"
        "The same RESET amplitude, but the trailing edge is made slower: while the "
        "temperature falls through the growth window, part of the melt re-crystallises, "
        "so the final conductance rises with the fall time. Repeated partial-SET pulses "
        "raise the conductance step by step until the cell is crystalline."
    ),
    new_code_cell(
        "falls = jnp.logspace(-9, np.log10(400e-9), 8 if FAST else 24)\n"
        "g_fall = pcm.conductance(pcm.apply_pulse(s_set, 1.6, 40e-9, fall_s=falls))\n"
        "_, g_train = pcm.pulse_train(s_reset, jnp.full((20,), 1.1), 10e-9)\n"
        "fig, ax = plt.subplots(1, 2, figsize=(10, 4))\n"
        "ax[0].semilogx(falls * 1e9, g_fall * 1e6, 'o-')\n"
        "ax[0].set_xlabel('fall time [ns]')\n"
        "ax[0].set_ylabel('conductance at 0.1 V [uS]')\n"
        "ax[1].semilogy(np.arange(1, 21), g_train * 1e6, 'o-')\n"
        "ax[1].set_xlabel('number of partial-SET pulses (1.1 V, 10 ns)')\n"
        "ax[1].set_ylabel('conductance [uS]')\n"
        "fig.tight_layout()\n"
        "show(fig, 'multilevel')"
    ),
    new_markdown_cell(
        "## Drift fan-out over eight decades\n\n"
        "Cells programmed to different levels (physics model, with a 20 % device-to-device "
        "spread of the amorphous drift exponent): the amorphous share of the resistance "
        "drifts with `nu ~ 0.1`, the crystalline path barely, so low-conductance states "
        "fan out."
    ),
    new_code_cell(
        "n_dev = 16 if FAST else 64\n"
        "t = jnp.logspace(0, 8, 33)\n"
        "pcm_var = pcm.sample(jax.random.key(0), (n_dev,), {'nu_a': devices.Spread(0.2)})\n"
        "fig, ax = plt.subplots(figsize=(6, 4))\n"
        "for u, c in ((5e-9, 'C0'), (20e-9, 'C1'), (50e-9, 'C2')):\n"
        "    s0 = pcm_var.init_state((n_dev,), u_a=u)\n"
        "    g = jax.vmap(lambda tt: pcm_var.conductance(pcm_var.drift(s0, tt)))(t)\n"
        "    ax.loglog(t, g * 1e6, color=c, alpha=0.4, lw=0.8)\n"
        "ax.set_xlabel('time since programming [s]')\n"
        "ax.set_ylabel('conductance [uS]')\n"
        "show(fig, 'drift')"
    ),
    new_markdown_cell(
        "## Read noise growth and drift compensation (statistical model)\n\n"
        "The statistical model gives the relative 1/f read noise "
        "`Q_s sqrt(ln((t + t_read) / (2 t_read)))`, growing with log time; global drift "
        "compensation rescales the summed output by `readout(t0) / readout(t)`."
    ),
    new_code_cell(
        "stat = devices.PCMStatistical()\n"
        "n_s = 20_000 if FAST else 200_000\n"
        "key = jax.random.key(1)\n"
        "g_t = jax.random.uniform(key, (n_s,)) * stat.g_max\n"
        "st = stat.program(jax.random.key(2), g_t)\n"
        "times = jnp.logspace(0, 7.5, 12)\n"
        "rel = [float(jnp.std(stat.read(st, jax.random.key(3), t_s=tt) / stat.conductance(stat.drift(st, tt)) - 1))\n"
        "       for tt in times]\n"
        "g_map = g_t.reshape(-1, 100)\n"
        "g0 = stat.read(stat.program(jax.random.key(4), g_map), jax.random.key(5), t_s=0.0)\n"
        "means = []\n"
        "for tt in times:\n"
        "    gt = stat.read(stat.program(jax.random.key(4), g_map), jax.random.key(6), t_s=tt)\n"
        "    alpha = devices.drift_compensation(g0, gt)\n"
        "    means.append((float(gt.sum() / g0.sum()), float(alpha * gt.sum() / g0.sum())))\n"
        "means = np.array(means)\n"
        "fig, ax = plt.subplots(1, 2, figsize=(10, 4))\n"
        "ax[0].semilogx(times, np.array(rel) * 100, 'o-')\n"
        "ax[0].set_xlabel('time after programming [s]')\n"
        "ax[0].set_ylabel('relative read noise [%] (all levels)')\n"
        "ax[1].semilogx(times, means[:, 0], 'o-', label='raw')\n"
        "ax[1].semilogx(times, means[:, 1], 's-', label='drift compensated')\n"
        "ax[1].set_xlabel('time after programming [s]')\n"
        "ax[1].set_ylabel('summed output / value at t0')\n"
        "ax[1].legend()\n"
        "fig.tight_layout()\n"
        "show(fig, 'noise_gdc')"
    ),
    new_markdown_cell(
        "**What it shows.** RESET needs melting (a sharp threshold in amplitude), and the "
        "read resistance then grows with the RESET power; SET has a window in amplitude. "
        "The falling edge is a second knob for multilevel programming. Drift fans out the "
        "low-conductance levels over eight decades, read noise grows only as sqrt(log t), "
        "and a single global scale restores the mean output after drift."
    ),
]

nb = new_notebook(
    cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
)
path = pathlib.Path(__file__).with_name("02_pcm_devices.ipynb")
nbformat.write(nb, path)
print(f"wrote {path}")
