"""The SRM0 neuron of Masquelier, Guyonneau & Thorpe (2008) against its kernels written
out in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning.srm import SRMNeuron

TM, TS = 10e-3, 2.5e-3


def _eps(s):
    # tau_m / tau_s = 4: the peak is at s* = tau_m ln(4) / 3, where exp(-s*/tau_m) =
    # 4^(-1/3) and exp(-s*/tau_s) = 4^(-4/3)
    k = 1.0 / (4.0 ** (-1 / 3) - 4.0 ** (-4 / 3))
    return np.where(s >= 0, k * (np.exp(-s / TM) - np.exp(-s / TS)), 0.0)


def _eta(s, t=500.0):
    return t * (2.0 * np.exp(-s / TM) - 4.0 * (np.exp(-s / TM) - np.exp(-s / TS)))


def _run(neuron, x, dt):
    st = neuron.init_state((1,), jnp.float64)

    def step(st, xi):
        st, z, u = neuron.step(st, jnp.array([xi]), dt)
        return st, (z[0], u[0])

    _, (z, u) = jax.lax.scan(step, st, jnp.asarray(x, jnp.float64))
    return np.asarray(z), np.asarray(u)


def test_epsp_kernel_peaks_at_one():
    n = SRMNeuron()
    np.testing.assert_allclose(float(n.t_peak), TM * np.log(4) / 3, rtol=1e-12)
    np.testing.assert_allclose(float(n.epsp(n.t_peak)), 1.0, rtol=1e-12)
    s = np.linspace(0, 0.1, 2001)
    np.testing.assert_allclose(np.asarray(n.epsp(s)), _eps(s), rtol=1e-12, atol=1e-15)
    assert float(jnp.max(n.epsp(s))) <= 1.0 + 1e-12


@pytest.mark.parametrize("dt", [1e-3, 1e-4])
def test_subthreshold_potential_is_the_sum_of_epsps(dt):
    n = SRMNeuron()
    steps = round(0.06 / dt)
    x = np.zeros(steps)
    i1, i2 = round(5e-3 / dt), round(12e-3 / dt)
    x[i1], x[i2] = 100.0, 250.0  # peaks of 100 and 250 < threshold 500
    z, u = _run(n, x, dt)
    t = np.arange(steps) * dt
    expect = 100 * _eps(t - i1 * dt) + 250 * _eps(t - i2 * dt)
    np.testing.assert_allclose(u, expect, rtol=1e-9, atol=1e-9)
    assert z.sum() == 0


def test_spike_resets_epsps_and_starts_the_after_potential():
    dt = 1e-4
    n = SRMNeuron()
    steps = round(0.08 / dt)
    x = np.zeros(steps)
    x[10] = 800.0  # one input whose EPSP crosses 500
    z, u = _run(n, x, dt)
    assert z.sum() == 1  # the positive pulse (eta > T right after) does not fire again
    k = int(np.argmax(z))
    t = np.arange(steps) * dt
    # crossing: first step where 800 eps >= 500
    assert k == int(np.argmax(800 * _eps(t - 10 * dt) >= 500))
    # after it the input's EPSP is ignored: u = eta(t - t_spike)
    after = t[k + 1 :] - t[k]
    np.testing.assert_allclose(u[k + 1 :], _eta(after), rtol=1e-9, atol=1e-9)
    assert u[k + 1 :].min() < -0.3 * 500  # the negative after-potential


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="tau_s"):
        SRMNeuron(tau_m=2e-3, tau_s=3e-3)
    with pytest.raises(ValueError, match="threshold"):
        SRMNeuron(threshold=-1.0)
