"""Cases of the float32 / float64 comparison (run in a subprocess with x64 off, and
in the test process with x64 on). Each case returns a dict of named arrays."""

import jax.numpy as jnp

from xbar import devices

NM = 1e-9


def _pku():
    m = devices.StanfordPKU()
    gaps = jnp.linspace(0.2, 1.7, 6) * NM
    s = m.init_state((6,), gap=gaps)
    out = {
        "g": m.conductance(s),
        "i": m.current(s, jnp.linspace(-1.5, 1.5, 6)),
        "reset": m.apply_pulse(m.init_state((3,), gap=0.2 * NM), -1.3, 100e-9).gap,
        "set": m.apply_pulse(m.init_state((3,), gap=1.7 * NM), 1.8, 3e-9).gap,
        "drift": m.drift(s, 1e9, 500.0).gap,
    }
    m2 = devices.StanfordPKU(r_series=2e3, i_compliance=1e-3)
    out["i_1t1r"] = m2.current(s, jnp.linspace(-2.0, 2.0, 6))
    return out


def _jart():
    m = devices.JART(n_substeps=40)
    s = m.init_state((4,), n=jnp.array([0.008, 0.1, 1.0, 20.0]))
    return {
        "g": m.conductance(s),
        "i": m.current(s, jnp.array([-1.0, -0.3, 0.3, 1.0])),
        "set": m.apply_pulse(m.init_state((2,)), -1.5, 1e-7).n,
        "reset": m.apply_pulse(m.init_state((2,), n=20.0), 1.5, 3e-7).n,
    }


def _vteam():
    m = devices.VTEAM()
    s = m.init_state((4,), w=jnp.linspace(0.0, 3e-9, 4))
    return {
        "g": m.conductance(s),
        "off": m.apply_pulse(s, 0.5, 20e-9).w,  # 0.36 nm in the middle
        "on": m.apply_pulse(s, -1.7, 5e-9).w,  # 0.34 nm in the middle
    }


def _pcm():
    m = devices.PCM()
    s = m.init_state((4,), u_a=jnp.array([0.0, 5e-9, 20e-9, 50e-9]), t_s=10.0)
    return {
        "g": m.conductance(s),
        "rel_noise": m.relative_noise(s),
        "reset": m.apply_pulse(m.init_state((2,)), 1.6, 30e-9).u_a,
        "set": m.apply_pulse(m.init_state((2,), u_a=40e-9), 1.0, 150e-9).u_a,
        "drift": m.conductance(m.drift(s, 1e6)),
    }


def _pcm_stat():
    m = devices.PCMStatistical()
    st = m.program(None, jnp.linspace(1e-6, 25e-6, 5))
    return {
        "g": m.conductance(m.drift(st, 86400.0)),
        "sigma": m.read_noise_moments(m.drift(st, 86400.0))[1] ** 0.5,
        "set": m.conductance(m.apply_pulse(st, 1.0, 1e-7)),
    }


CASES = {
    "StanfordPKU": _pku,
    "JART": _jart,
    "VTEAM": _vteam,
    "PCM": _pcm,
    "PCMStatistical": _pcm_stat,
}
