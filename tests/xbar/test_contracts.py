"""Contract tests of the array layer's extensible families: every member, the same properties.

Families: mappings (``AbstractMapping``), input DACs (``AbstractDAC``), output ADCs
(``AbstractADC``) and programming schemes (``AbstractScheme``). Adding a member means adding
one final class and one entry in the lists below.
"""

import dataclasses
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xbar
from xbar import devices

MAPPINGS = [
    xbar.DifferentialMapping(g_min=1e-6, g_max=25e-6, w_max=2.0),
    xbar.ReferenceMapping(g_min=1e-6, g_max=25e-6, w_max=2.0),
]
DACS = [xbar.DAC(bits=5), xbar.NoisyDAC(bits=5, noise_v=2e-3)]
ADCS = [xbar.ADC(bits=7, out_bound=4.0), xbar.NoisyADC(bits=7, out_bound=4.0, noise=0.05)]
SCHEMES = [
    xbar.WriteVerify(tol=0.02, max_pulses=60, v_set0=1.0, v_set_step=0.0, v_reset0=-1.0),
    xbar.OpenLoop(v_grid=jnp.array([1.0]), max_pulses=20, start={"g_prog": 0.0}),
]
BASES = {
    "mapping": xbar.AbstractMapping,
    "dac": xbar.AbstractDAC,
    "adc": xbar.AbstractADC,
    "scheme": xbar.AbstractScheme,
}
ALL = [("mapping", m) for m in MAPPINGS] + [("dac", d) for d in DACS]
ALL += [("adc", a) for a in ADCS] + [("scheme", s) for s in SCHEMES]


def _concrete_overrides(cls):
    """Names a class defines that an ancestor already defines concretely (not abstract)."""
    out = []
    for name, val in vars(cls).items():
        if (
            name.startswith("__")
            or not callable(getattr(cls, name, None))
            and not isinstance(val, property)
        ):
            continue
        for base in cls.__mro__[1:]:
            if name in vars(base):
                bval = vars(base)[name]
                target = bval.fget if isinstance(bval, property) else bval
                if not getattr(target, "__isabstractmethod__", False):
                    out.append(f"{base.__name__}.{name}")
                break
    return out


@pytest.mark.parametrize("family, member", ALL, ids=lambda v: type(v).__name__)
def test_members_are_final_and_complete(family, member):
    cls = type(member)
    base = BASES[family]
    assert isinstance(member, base) and cls is not base
    assert not inspect.isabstract(cls)
    assert _concrete_overrides(cls) == []
    # the abstract fields of the base are real fields of the member
    for name, val in vars(base).get("__annotations__", {}).items():
        if "AbstractVar" in str(val):
            assert hasattr(member, name)
    assert not [c for c in cls.__subclasses__()]  # final: nothing derives from a member


# ---- mappings ----------------------------------------------------------------------------------
W = jax.random.uniform(jax.random.PRNGKey(0), (5, 3), minval=-1.9, maxval=1.9)


@pytest.mark.parametrize("mp", MAPPINGS, ids=lambda v: type(v).__name__)
def test_mapping_contract(mp):
    g = mp.to_conductance(W)
    p = mp.n_physical(3)
    assert g.shape == (5, p) and mp.n_logical(p) == 3
    assert np.all(g >= mp.g_min - 1e-18) and np.all(g <= mp.g_max + 1e-18)
    np.testing.assert_allclose(mp.from_conductance(g), W, rtol=1e-12, atol=1e-15)
    # combine is linear, and combine_variance is exactly the variance of the combination
    c = mp.combine(jnp.eye(p))  # coefficient of each physical column in each logical one
    a, b = jax.random.normal(jax.random.PRNGKey(1), (2, 4, p))
    np.testing.assert_allclose(mp.combine(2 * a - 3 * b), 2 * mp.combine(a) - 3 * mp.combine(b))
    var = jax.random.uniform(jax.random.PRNGKey(2), (4, p))
    v_ind, v_sh = mp.combine_variance(var)
    total = v_ind + (0.0 if v_sh is None else v_sh)
    np.testing.assert_allclose(total, var @ (c * c), rtol=1e-12)
    # jit / vmap / grad (inside the window the round trip is the identity)
    np.testing.assert_allclose(jax.jit(mp.to_conductance)(W), g, rtol=1e-14)
    np.testing.assert_allclose(jax.vmap(mp.to_conductance)(W[None].repeat(2, 0))[1], g)
    wt = jax.random.normal(jax.random.PRNGKey(3), W.shape)
    grad = jax.grad(lambda w: jnp.sum(wt * mp.from_conductance(mp.to_conductance(w))))(W * 0.5)
    np.testing.assert_allclose(grad, wt, rtol=1e-12)
    # bad input
    cls = type(mp)
    for kw, name in (
        (dict(g_min=3e-5, g_max=1e-5), "g_min"),
        (dict(g_max=float("nan")), "g_max"),
        (dict(w_max=-1.0), "w_max"),
        (dict(g_min=float("inf")), "g_min"),
    ):
        with pytest.raises(ValueError, match=name):
            cls(**kw)
    with pytest.raises(ValueError, match="targets"):
        mp.check_weights("targets", jnp.array([mp.w_max * 1.5]))


# ---- DACs --------------------------------------------------------------------------------------
X = jax.random.uniform(jax.random.PRNGKey(4), (6, 9), minval=-1.2, maxval=1.2)


@pytest.mark.parametrize("dac", DACS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize(
    "encoding",
    [xbar.AmplitudeEncoding(), xbar.PulseWidthEncoding(), xbar.BitSerialEncoding()],
    ids=lambda e: type(e).__name__,
)
def test_dac_contract(dac, encoding):
    d = dataclasses.replace(dac, encoding=encoding)
    u, w = d.phases(X)
    assert u.shape == (d.n_phases,) + X.shape and w.shape == (d.n_phases,)
    np.testing.assert_allclose(jnp.tensordot(w, u, axes=1), d.quantize(X), atol=1e-12)
    # jit / vmap equal the eager call; STE gradient of the recombined input is 1 in range
    uj, _ = jax.jit(d.phases)(X)
    np.testing.assert_allclose(uj, u)
    uv, _ = jax.vmap(d.phases)(X)
    np.testing.assert_allclose(jnp.moveaxis(uv, 0, 1), u)
    gr = jax.grad(lambda x: jnp.sum(jnp.tensordot(w, d.phases(x)[0], axes=1)))(X * 0.5)
    np.testing.assert_allclose(gr, 1.0)
    # key determinism; a noiseless DAC ignores the key, a noisy one draws from it
    k1, k2 = jax.random.PRNGKey(5), jax.random.key(6)
    a1, a2, b = d.phases(X, k1)[0], d.phases(X, k1)[0], d.phases(X, k2)[0]
    np.testing.assert_array_equal(a1, a2)
    if isinstance(d, xbar.NoisyDAC):
        assert np.all(a1 != b) and np.all(a1 != u)
    else:
        np.testing.assert_array_equal(a1, u)
        np.testing.assert_array_equal(b, u)


def test_noisy_dac_statistics_and_crossbar_read():
    d = xbar.NoisyDAC(bits=None, noise_v=2e-3, v_read=0.2)
    x = jnp.zeros((20000,))
    u, _ = d.phases(x, jax.random.PRNGKey(0))
    assert float(jnp.std(u * d.v_read)) == pytest.approx(2e-3, rel=0.03)
    # in a crossbar: each read's output gets sum_i dV_i G_ij, variance (noise_v/v_read)^2 sum_i w^2
    pcm = devices.PCMStatistical()
    mp = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
    w = jax.random.uniform(jax.random.PRNGKey(1), (8, 3), minval=-1, maxval=1)
    xb = xbar.Crossbar.create(
        pcm,
        (8, 3),
        mapping=mp,
        wiring=xbar.Wiring.ideal(),
        dac=d,
        adc=xbar.ideal_adc(),
        state=pcm.program(None, mp.to_conductance(w)),
    )
    xs = jnp.zeros((8000, 8))
    # read noise of the devices is zero at zero input, so only the DAC noise remains
    y = xb.mvm(xs, jax.random.PRNGKey(2))
    g = mp.to_conductance(w)
    sd = (2e-3 / 0.2) * np.sqrt(np.asarray(mp.combine_variance(g * g)[0]).sum(0)) / mp.scale
    np.testing.assert_allclose(np.std(np.asarray(y), 0), sd, rtol=0.05)


def test_bad_dacs_raise():
    for cls in (xbar.DAC, xbar.NoisyDAC):
        for kw, name in (
            (dict(bits=1), "bits"),
            (dict(v_read=-0.1), "v_read"),
            (dict(encoding="thermometer"), "encoding"),
            (dict(t_read_s=0.0), "t_read_s"),
            (dict(v_read=float("nan")), "v_read"),
        ):
            with pytest.raises(ValueError, match=name):
                cls(**kw)
    with pytest.raises(ValueError, match="noise_v"):
        xbar.NoisyDAC(noise_v=-1e-3)


# ---- ADCs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("adc", ADCS, ids=lambda v: type(v).__name__)
def test_adc_contract(adc):
    y = jnp.linspace(-3.9, 3.9, 301)
    out = adc(y)
    assert out.shape == y.shape
    assert np.max(np.abs(out - y)) <= adc.lsb / 2 + 1e-12  # noiseless without a key
    np.testing.assert_allclose(jax.jit(adc)(y), out)
    np.testing.assert_allclose(jax.vmap(adc)(y[:, None])[:, 0], out)
    g = jax.vmap(jax.grad(lambda v: adc(v)))(jnp.array([-5.0, -1.0, 0.3, 5.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, 1.0, 0.0])
    k = jax.random.key(3)
    np.testing.assert_array_equal(adc(y, k), adc(y, k))
    if isinstance(adc, xbar.NoisyADC):
        assert np.any(adc(y, k) != out)
        ideal = dataclasses.replace(adc, bits=None, clip=False)
        z = ideal(jnp.zeros(20000), jax.random.PRNGKey(4))
        assert float(jnp.std(z)) == pytest.approx(adc.noise, rel=0.03)
    else:
        np.testing.assert_array_equal(adc(y, k), out)
    # calibration is applied after conversion
    cal = eqx.tree_at(lambda a: (a.col_gain, a.col_offset), adc, (2.0, 0.5))
    np.testing.assert_allclose(cal(y), (out - 0.5) * 2.0)


@pytest.mark.parametrize("cls", [xbar.ADC, xbar.NoisyADC])
def test_bad_adcs_raise(cls):
    for kw, name in (
        (dict(out_bound=0.0), "out_bound"),
        (dict(cols_per_adc=0), "cols_per_adc"),
        (dict(col_gain=float("nan")), "col_gain"),
        (dict(col_gain=jnp.array([1.0, -1.0])), "col_gain"),
        (dict(col_offset=float("inf")), "col_offset"),
        (dict(col_offset=jnp.array([0.0, jnp.nan])), "col_offset"),
        (dict(bits=30), "bits"),
        (dict(rate_hz=-1.0), "rate_hz"),
    ):
        with pytest.raises(ValueError, match=name):
            cls(**kw)


def test_noisy_adc_plugs_into_the_crossbar():
    # a new ADC member needs no change to the crossbar: the read hands it a key
    pcm = devices.PCMStatistical()
    mp = xbar.DifferentialMapping(g_min=0.0, g_max=25e-6)
    w = jax.random.uniform(jax.random.PRNGKey(1), (8, 3), minval=-1, maxval=1)
    adc = xbar.NoisyADC(bits=None, clip=False, noise=0.1)
    xb = xbar.Crossbar.create(
        pcm,
        (8, 3),
        mapping=mp,
        wiring=xbar.Wiring.ideal(),
        dac=xbar.ideal_dac(),
        adc=adc,
        state=pcm.program(None, mp.to_conductance(w)),
    )
    x = jnp.zeros((8000, 8))
    y = np.asarray(xb.mvm(x, jax.random.PRNGKey(0)))
    np.testing.assert_allclose(np.std(y, 0), 0.1, rtol=0.05)
    np.testing.assert_array_equal(xb.mvm(x[:3]), 0.0)


# ---- programming schemes -----------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda v: type(v).__name__)
def test_scheme_contract(scheme):
    pcm = devices.PCMStatistical()
    mp = xbar.DifferentialMapping(g_min=0.0, g_max=20e-6)
    xb = xbar.Crossbar.create(pcm, (3, 2), mapping=mp)
    w = jnp.array([[0.5, -0.25], [0.0, 0.8], [-0.6, 0.1]])
    prog = eqx.filter_jit(xbar.program)
    new, rep = prog(xb, w, scheme, jax.random.PRNGKey(0))
    assert rep.pulses.shape == rep.error.shape == rep.success.shape == (3, 4)
    assert new.physical_shape == (3, 4) and new.g_eff is None
    # the report is what the returned array reads
    g_t = mp.to_conductance(w)
    np.testing.assert_allclose(rep.error, new.conductances() - g_t, rtol=1e-12, atol=1e-18)
    np.testing.assert_array_equal(rep.success, np.abs(rep.rel_error) <= scheme.tol)
    expect = (
        xbar.ProgramResult.successful
        if bool(jnp.all(rep.success))
        else (xbar.ProgramResult.out_of_tolerance)
    )
    assert bool(rep.result == expect)
    # determinism: same key (either kind) -> same bits; jit equals eager
    _, rep2 = prog(xb, w, scheme, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(rep.error, rep2.error)
    _, rep_eager = xbar.program(xb, w, scheme, jax.random.PRNGKey(0))
    np.testing.assert_allclose(rep_eager.error, rep.error, rtol=1e-9, atol=1e-20)
    _, rep3 = xbar.program(xb, w, scheme, jax.random.key(0))
    assert rep3.error.shape == (3, 4)
    # vmap over keys
    reps = jax.vmap(lambda k: prog(xb, w, scheme, k)[1].error)(
        jax.random.split(jax.random.PRNGKey(1), 2)
    )
    assert reps.shape == (2, 3, 4) and np.all(np.isfinite(reps))
    with pytest.raises(ValueError, match="tol"):
        dataclasses.replace(scheme, tol=0.0)
