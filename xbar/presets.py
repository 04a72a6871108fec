"""Named presets: a device model bundled with an array setup and a programming recipe that works on it.

Each preset is a :class:`Preset`: the device (its parameters), the start state of a fresh
array, the conductance window the weights are mapped to, the cell stack, the read
voltage, and the write-verify recipe (pulse amplitudes, steps, widths, pulse budget)
that reaches the tolerance on at least 99 % of the cells of a 64x64 array of it
(``tests/xbar/test_presets.py`` checks this for every preset).

    p = xbar.presets.stanford_pku_1t1r()
    xb = p.crossbar((64, 64), key=jax.random.key(0))
    xb, report = xbar.program(xb, w, p.write_verify, jax.random.key(1))

Recipes (amplitudes in each device's own polarity convention):

* :func:`stanford_pku_1t1r`: Stanford-PKU RRAM (Jiang et al., IEEE TED 63(5), 1884
  (2016)) behind a 2 kOhm access transistor in its on state (modelled by the device's
  series resistance, so that write pulses divide over it) and a cycle-to-cycle gap noise
  ``delta_gap0 = 5e-3 m/s`` (a quarter of the source's default 0.02, UNCONFIRMED as a fit;
  with the default, 98 % of a 16x16 array reaches a 2 % tolerance in
  200 pulses), window 5-100 uS at 0.1 V,
  10 ns pulses, SET from 1.5 V and RESET from -1.2 V in 50 mV steps up to 3.5 V (the
  range in which a 10 ns pulse moves the gap by a fraction of the window near the
  threshold field ``F_min`` of the source).
* :func:`pcm_statistical`: the statistical PCM of Joshi et al., Nat. Commun. 11, 2473
  (2020) with the SET-pulse update statistics of Nandakumar et al., Front. Neurosci. 14,
  406 (2020) (:class:`xbar.devices.PCMTrainingUpdate`): PCM is SET gradually and RESET
  abruptly, so the recipe is repeated single SET pulses (no amplitude ladder) with a
  RESET to restart after an overshoot; the window stops at 20 uS, below the update
  model's saturation near 25 uS.
* :func:`pcm`: the electro-thermal mushroom-cell PCM (``devices.PCM``), verified with
  noisy reads. Its read noise (Joshi et al., Nat. Commun. 11, 2473 (2020)) is at least
  ``0.0088 sqrt(ln(20 s / 500 ns)) = 3.7 %`` of the conductance per 250 ns read and
  saturates at ``0.2 x 4.2 = 84 %`` below about 3 uS, so one read cannot resolve a 2 %
  tolerance in any window; the recipe averages 128 reads per verify (``verify_reads``,
  ``sigma / sqrt(128)``, 32 us per verify), accepts a read within half the tolerance
  (``verify_tol`` 1 %, a guard band against noise excursions), and works in a 20-300 uS
  window (up to 0.9 of the fully crystalline 333 uS), where the relative noise is 4-23 %
  instead of the 50-84 % of a 1.5-6 uS window. A RESET pulse of 1.3 V, 5 ns melts a
  small dome and leaves the cell at about 11 uS from any state above the window; a SET
  pulse crystallises part of the dome, with a step that grows with the conductance. The
  recipe is a RESET after an overshoot and short (2 ns) SET pulses from 0.8 V up in
  20 mV steps to 1.1 V, with 500 pulses at most. The device draws every read
  independently; for a 1/f source averaging gains less (``WriteVerify.verify_reads``),
  so the 128 reads are an operating point of this model (UNCONFIRMED for hardware). The
  averaged reads dominate the cost: on 64x64 weights (64x128 devices) about 50x the
  verify energy and 250x the row-serial time of a noiseless verify.
* :func:`vteam`: VTEAM (Kvatinsky et al., IEEE TCAS-II 62(8), 786 (2015); SET at
  negative voltage) with its defaults, the ngspice memristor-extension parameter set
  (``devices.VTEAM``: thresholds -1.5 V / +0.3 V, 1-300 kOhm, a -2 V SET or +1 V RESET
  crosses the layer in about 1.1 ns); 10 ns pulses, SET from -1.55 V and RESET from
  0.35 V in 10 mV steps up to 2.0 V / 1.0 V (just past each threshold a 10 ns pulse moves
  the state by 0.003 nm / 0.0007 nm, below the tolerance at the top of the window; at
  -1.8 V / 0.8 V it crosses the layer), window 5-50 uS at 0.1 V (20-200 kOhm, the state
  at or above 0.19 nm), where the device's 100 sub-steps per pulse are enough: a ladder
  pulse that ends in the window gives the conductance of a 2000-sub-step integration
  within 0.4 % of the window (a fifth of the tolerance; tests), and with 1000 sub-steps
  the 64x64 arrays of the tests need 18.82 pulses per cell instead of 18.83.

No JART preset yet: in ``devices.JART`` a SET pulse is a runaway (a 1-10 ns pulse beyond a
state-dependent threshold between about -0.6 and -1.1 V takes the cell to the LRS, where
RESET pulses up to 1.5 V barely move it), so an amplitude ladder reaches the tolerance on
few cells; a recipe for it needs another scheme (e.g. a pulse-width ladder or a current
compliance), not just other numbers.

Amplitude ranges were chosen by sweeping single pulses on the nominal device (the step
of one pulse must be below the tolerance near the first amplitude and large enough to
cross the window within the budget at the last one); they are operating points of these
models, not published programming conditions (UNCONFIRMED for hardware).
"""

from __future__ import annotations

import equinox as eqx

from xbar.devices import PCM, VTEAM, PCMStatistical, StanfordPKU

from .cells import AbstractCell, Passive
from .crossbar import Crossbar
from .mapping import AbstractMapping, DifferentialMapping
from .peripherals import DAC
from .write_verify import WriteVerify


class Preset(eqx.Module):
    """A device, the array around it, and a write-verify recipe that works on it.

    Fields:
        name: short name.
        device: the device model (parameters).
        mapping: the conductance window of the weights.
        cell: the cell stack of the array.
        dac: the input DAC (its ``v_read`` is the verify read voltage).
        write_verify: the programming recipe.
        start: state values of a fresh array (name -> value), e.g. ``{"gap": 1.7e-9}``.
    """

    name: str = eqx.field(static=True)
    device: object
    mapping: AbstractMapping
    cell: AbstractCell
    dac: DAC
    write_verify: WriteVerify
    start: dict = eqx.field(static=True, default_factory=dict)

    def crossbar(self, shape: tuple[int, int], *, key=None, variability=None, **kwargs) -> Crossbar:
        """``Crossbar.create`` of this preset (other components through ``kwargs``)."""
        return Crossbar.create(
            self.device,
            shape,
            key=key,
            variability=variability,
            mapping=self.mapping,
            cell=self.cell,
            dac=self.dac,
            **{**self.start, **kwargs},
        )


def stanford_pku_1t1r() -> Preset:
    """Stanford-PKU RRAM behind a 2 kOhm access transistor (module docstring)."""
    return Preset(
        name="stanford_pku_1t1r",
        device=StanfordPKU(r_series=2e3, delta_gap0=5e-3),
        mapping=DifferentialMapping(g_min=5e-6, g_max=100e-6),
        cell=Passive(),
        dac=DAC(v_read=0.1),
        write_verify=WriteVerify(
            tol=0.02,
            max_pulses=200,
            v_set0=1.5,
            v_set_step=0.05,
            v_set_max=3.5,
            v_reset0=-1.2,
            v_reset_step=-0.05,
            v_reset_max=3.5,
            width_set_s=10e-9,
            width_reset_s=10e-9,
        ),
        start={"gap": 1.7e-9},
    )


def pcm_statistical() -> Preset:
    """Statistical PCM with gradual SET pulses (module docstring)."""
    return Preset(
        name="pcm_statistical",
        device=PCMStatistical(),
        mapping=DifferentialMapping(g_min=0.0, g_max=20e-6),
        cell=Passive(),
        dac=DAC(v_read=0.2),
        write_verify=WriteVerify(
            tol=0.02,
            max_pulses=200,
            v_set0=1.0,
            v_set_step=0.0,
            v_reset0=-1.0,
            v_reset_step=0.0,
        ),
    )


def pcm() -> Preset:
    """Physics PCM, noisy verify averaged over 128 reads, 20-300 uS (module docstring)."""
    return Preset(
        name="pcm",
        device=PCM(),
        mapping=DifferentialMapping(g_min=20e-6, g_max=300e-6),
        cell=Passive(),
        dac=DAC(v_read=0.1),
        write_verify=WriteVerify(
            tol=0.02,
            max_pulses=500,
            v_set0=0.8,
            v_set_step=0.02,
            v_set_max=1.1,
            v_reset0=1.3,
            v_reset_step=0.0,
            v_reset_max=1.3,
            width_set_s=2e-9,
            width_reset_s=5e-9,
            verify_noise=True,
            verify_reads=128,
            verify_tol=0.01,
        ),
    )


def vteam() -> Preset:
    """VTEAM (its sourced defaults) with an amplitude ladder from just past each threshold
    (module docstring)."""
    dev = VTEAM()
    return Preset(
        name="vteam",
        device=dev,
        mapping=DifferentialMapping(g_min=5e-6, g_max=50e-6),
        cell=Passive(),
        dac=DAC(v_read=0.1),
        write_verify=WriteVerify(
            tol=0.02,
            max_pulses=200,
            v_set0=-1.55,
            v_set_step=-0.01,
            v_set_max=2.0,
            v_reset0=0.35,
            v_reset_step=0.01,
            v_reset_max=1.0,
            width_set_s=10e-9,
            width_reset_s=10e-9,
        ),
        start={"w": dev.w_off},
    )


def all_presets() -> tuple[Preset, ...]:
    """Every preset of this module."""
    return tuple(f() for f in _FACTORIES)


_FACTORIES = (stanford_pku_1t1r, pcm_statistical, pcm, vteam)

__all__ = ["Preset", "all_presets", "pcm", "pcm_statistical", "stanford_pku_1t1r", "vteam"]
