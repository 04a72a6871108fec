"""The sweep studies of the ``xbar`` command (module-level, so Dask workers import them).

* :class:`CrossbarReadStudy`: the study of ``xbar sweep CONFIG.toml``: one device instance
  per seed, an ``M x N`` crossbar programmed by write-verify to a fixed random weight
  matrix, read ``n_inputs`` times ``t_s`` after programming through an ADC; the metric is
  the relative RMS error of the read against the exact ``x @ W``.
* :func:`pcm_inference_error`: the study of ``xbar demo``: a statistical PCM array
  (Joshi et al., Nat. Commun. 11, 2473 (2020)) programmed once, drifted to ``t_s`` and read
  with 1/f noise; the relative RMS error of a differential-pair MVM.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from . import devices
from .crossbar import Crossbar
from .peripherals import ADC
from .programming import program

# the fixed problem (weights and inputs) every device instance is asked to compute
_PROBLEM_KEY = 20240611


def _problem(rows: int, cols: int, n_inputs: int):
    k_w, k_x = jax.random.split(jax.random.key(_PROBLEM_KEY))
    w = jax.random.uniform(k_w, (rows, cols), minval=-1.0, maxval=1.0)
    x = jax.random.uniform(k_x, (n_inputs, rows))
    return w, x


def relative_rms(y, ref):
    """``sqrt(mean((y - ref)^2) / mean(ref^2))`` (dimensionless)."""
    return jnp.sqrt(jnp.mean((y - ref) ** 2) / jnp.mean(ref**2))


class CrossbarReadStudy(eqx.Module):
    """Relative read error of a write-verified crossbar (see the module docstring).

    Grid names it understands: ``t_s`` (read time after programming [s], traced),
    ``adc_bits`` (static), ``variability.<field>`` (relative device-to-device spread of a
    device field, static)."""

    device: Any
    scheme: Any
    preset: Any
    rows: int = eqx.field(static=True)
    cols: int = eqx.field(static=True)
    n_inputs: int = eqx.field(static=True)

    def __call__(self, p, key):
        k_var, k_prog, k_read = jax.random.split(key, 3)
        spreads = {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith("variability.")}
        bits = p.get("adc_bits")
        kw = {} if bits is None else {"adc": ADC(bits=int(bits))}
        shape = (self.rows, self.cols)
        if self.preset is not None:
            xb = self.preset.crossbar(shape, key=k_var, variability=spreads or None, **kw)
        else:
            xb = Crossbar.create(self.device, shape, key=k_var, variability=spreads or None, **kw)
        w, x = _problem(self.rows, self.cols, self.n_inputs)
        xb, _ = program(xb, w, self.scheme, k_prog)
        y = xb.mvm(x, k_read, t_s=p.get("t_s", 1.0))
        return {"error": relative_rms(y, x @ w)}


N_PCM = 64  # rows and columns of the demo's PCM array


def pcm_inference_error(p, key):
    """Relative MVM error of a 64x64 differential PCM array at read time ``p["t_s"]`` [s]
    with programming noise scaled by ``p["prog_noise_scale"]`` (Joshi 2020 statistics)."""
    dev = devices.PCMStatistical(prog_noise_scale=p["prog_noise_scale"])
    w, x = _problem(N_PCM, N_PCM, 32)
    g_pos = jnp.clip(w, 0.0, None) * dev.g_max
    g_neg = jnp.clip(-w, 0.0, None) * dev.g_max
    k_prog, k_read = jax.random.split(key)
    state = dev.program(k_prog, jnp.stack([g_pos, g_neg]))
    state = dev.drift(state, p["t_s"])
    reads = jax.random.split(k_read, x.shape[0])

    def read(xi, k):
        g = dev.read_noise(state, k)
        return xi @ (g[0] - g[1]) / dev.g_max

    y = jax.vmap(read)(x, reads)
    return {"error": relative_rms(y, x @ w)}
