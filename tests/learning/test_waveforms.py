"""Emergent STDP windows from overlapping spike waveforms on the physical device models."""

import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import waveforms as wf

from xbar import devices

LAGS = jnp.array([-40e-9, -20e-9, -10e-9, 10e-9, 20e-9, 40e-9])
W = wf.SpikeWaveform(a_peak=1.0, a_tail=0.5, tau_tail=40e-9, t_tail=150e-9)


@pytest.fixture(scope="module")
def pku():
    dev = devices.StanfordPKU(n_substeps=8)
    return dev, dev.init_state((), gap=1.4e-9)


def test_stanford_pku_window_has_the_stdp_shape(pku):
    dev, st = pku
    dg = np.asarray(wf.learning_window(dev, st, LAGS, pre=W, dt_s=1e-9))
    pos, neg = dg[LAGS > 0], dg[LAGS < 0]  # lags +10, +20, +40 and -40, -20, -10 ns
    assert np.all(pos[:2] > 0) and np.all(neg[1:] < 0)  # pre-before-post potentiates
    assert pos[0] > pos[1] > abs(pos[2])  # decaying with |dt|
    assert -neg[2] > -neg[1] > abs(neg[0])


def test_no_change_when_no_overlap_crosses_threshold(pku):
    dev, st = pku
    # each spike alone (1.0 V peak, 0.5 V tail) is below the ~1.05 V field threshold
    alone = wf.learning_window(dev, st, jnp.array([1e-6]), pre=W, dt_s=1e-9)
    np.testing.assert_allclose(alone, 0.0, atol=1e-15)
    weak = wf.SpikeWaveform(a_peak=0.6, a_tail=0.3, tau_tail=40e-9, t_tail=150e-9)
    dg = wf.learning_window(dev, st, LAGS, pre=weak, dt_s=1e-9)
    np.testing.assert_allclose(dg, 0.0, atol=1e-15)
    pcm = devices.PCM()
    sp = pcm.init_state((), u_a=25e-9)  # threshold switching at 0.75 V
    sub = wf.SpikeWaveform(a_peak=0.35, t_peak=20e-9, a_tail=0.3, tau_tail=60e-9, t_tail=200e-9)
    dg = wf.learning_window(pcm, sp, jnp.array([-20e-9, 20e-9]), pre=sub, dt_s=4e-9)
    assert float(jnp.max(jnp.abs(dg))) < 1e-6 * float(pcm.conductance(sp))


def test_inverted_waveforms_give_anti_stdp_and_lead_tails_a_symmetric_window(pku):
    dev, st = pku
    anti = wf.SpikeWaveform(a_peak=-1.0, a_tail=-0.5, tau_tail=40e-9, t_tail=150e-9)
    dg = np.asarray(wf.learning_window(dev, st, LAGS, pre=anti, dt_s=1e-9))
    near = np.abs(np.asarray(LAGS)) < 30e-9
    assert np.all(dg[near & (LAGS > 0)] < 0) and np.all(dg[near & (LAGS < 0)] > 0)
    lead = wf.SpikeWaveform(
        a_peak=1.0, a_tail=0.5, tau_tail=40e-9, t_tail=150e-9, a_lead=0.5, t_lead=150e-9
    )
    peak_only = wf.SpikeWaveform(a_peak=1.0, a_tail=0.0, tau_tail=40e-9, t_tail=150e-9)
    dg = np.asarray(wf.learning_window(dev, st, LAGS, pre=lead, post=peak_only, dt_s=1e-9))
    assert np.all(dg[near] > 0)  # potentiation on both sides


def test_waveform_values_and_bad_input():
    v = W(jnp.array([-1e-9, 1e-9, 5e-9, 45e-9, 200e-9]))
    np.testing.assert_allclose(v, [0.0, 1.0, -0.5, -0.5 * np.exp(-1.0), 0.0], rtol=1e-12)
    with pytest.raises(ValueError, match="tau_tail"):
        wf.SpikeWaveform(tau_tail=0.0)
    with pytest.raises(ValueError, match="dt_s"):
        wf.learning_window(devices.StanfordPKU(), None, LAGS, dt_s=0.0)


# Two-PCM synapse (Bichler et al. 2012, Suri et al. 2011): G+ and G- only crystallised.
T_PK = 10e-9
PCM_PRE = wf.SpikeWaveform(a_peak=0.55, t_peak=T_PK, a_tail=0.45, tau_tail=200e-9, t_tail=400e-9)
PCM_POST = wf.SpikeWaveform(a_peak=0.55, t_peak=T_PK, a_tail=0.0, tau_tail=200e-9, t_tail=T_PK)


@pytest.fixture(scope="module")
def pcm35():
    dev = devices.PCM()
    st = dev.init_state((), u_a=35e-9)  # threshold switching at 0.85 V
    assert abs(float(dev.threshold_voltage(jnp.asarray(35e-9))) - 0.85) < 1e-9
    return dev, st


def test_two_pcm_window_has_the_stdp_shape(pcm35):
    dev, st = pcm35
    lags = jnp.array([-60e-9, -40e-9, -20e-9, 20e-9, 40e-9, 60e-9])
    dp, dm = (
        np.asarray(x)
        for x in wf.pair_learning_window(dev, st, lags, pre=PCM_PRE, post=PCM_POST, dt_s=T_PK)
    )
    g0 = float(dev.conductance(st))
    assert np.all(dp >= 0) and np.all(dm >= 0)  # SET-only: both devices only crystallise
    w = (dp - dm) / g0
    pos, neg = w[3:], w[:3][::-1]  # lags +20, +40, +60 and -20, -40, -60 ns
    assert np.all(pos > 0.01) and np.all(neg < -0.01)  # pre before post potentiates
    assert pos[0] > pos[1] > pos[2] and -neg[0] > -neg[1] > -neg[2]  # decaying with |dt|
    np.testing.assert_allclose(dm[3:], 0.0, atol=1e-6 * g0)  # the other device is untouched
    np.testing.assert_allclose(dp[:3], 0.0, atol=1e-6 * g0)
    # the mirrored waveform carries the tail ahead of the peak
    mir = PCM_PRE.mirrored()
    np.testing.assert_allclose(
        mir(jnp.array([-1e-9, 5e-9])), [-0.45 * np.exp(-1e-9 / 200e-9), 0.55]
    )


def test_two_pcm_window_is_zero_when_no_overlap_crosses_threshold(pcm35):
    dev, st = pcm35
    g0 = float(dev.conductance(st))
    # every spike alone (0.55 V peak, 0.45 V tail) is below the 0.85 V threshold
    far = wf.pair_learning_window(
        dev, st, jnp.array([-2e-6, 2e-6]), pre=PCM_PRE, post=PCM_POST, dt_s=T_PK
    )
    np.testing.assert_allclose(np.asarray(far), 0.0, atol=1e-6 * g0)
    weak = wf.SpikeWaveform(a_peak=0.55, t_peak=T_PK, a_tail=0.25, tau_tail=200e-9, t_tail=400e-9)
    near = wf.pair_learning_window(
        dev, st, jnp.array([-20e-9, 20e-9]), pre=weak, post=PCM_POST, dt_s=T_PK
    )
    np.testing.assert_allclose(np.asarray(near), 0.0, atol=1e-6 * g0)  # 0.8 V < 0.85 V
