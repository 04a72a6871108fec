"""Contract of the crossbar solvers: every solver through the same list of properties.

Adding a solver means one class in ``xbar/solvers.py`` and one entry in ``SOLVERS``.
References: a scipy.sparse nodal solve (assembled in ``test_solve.py``), ngspice,
Kirchhoff's laws from the returned node voltages, and central finite differences.
"""

import functools
import shutil

import jax

jax.config.update("jax_enable_x64", True)

import _spice  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_solve import _fd_check, check_kcl_and_power, scipy_nodal, sinh_cell  # noqa: E402

import xbar  # noqa: E402

# (id, factory(G, wires) -> solver (called eagerly, outside jit), solves nonlinear cells)
SOLVERS = [
    ("cg-jacobi", lambda G, kw: xbar.CG(xbar.Jacobi()), True),
    ("cg-line", lambda G, kw: xbar.CG(xbar.LinePreconditioner()), True),
    ("direct", lambda G, kw: xbar.Direct(), True),
    ("march-planned", lambda G, kw: xbar.March.plan(G, **kw), False),
    ("march", lambda G, kw: xbar.March(), False),
    ("march-segments", lambda G, kw: xbar.March(segments=3), False),
    ("auto", lambda G, kw: xbar.Auto(), True),
]
IDS = [s[0] for s in SOLVERS]


def _case(M, N, seed):
    rng = np.random.default_rng(seed)
    G = rng.uniform(1e-6, 1e-3, (M, N))
    kw = dict(
        r_wl=rng.uniform(0.5, 20, (M, N)),
        r_bl=rng.uniform(0.5, 20, (M, N)),
        r_src=rng.uniform(0, 5, M),
        r_sense=rng.uniform(0, 5, N),
    )
    return rng, G, kw


@pytest.mark.parametrize("entry", SOLVERS, ids=IDS)
def test_against_scipy(entry):
    _, make, _ = entry
    rng, G, kw = _case(18, 11, 1)
    v = rng.uniform(-0.5, 0.5, (20, 18))  # a batch of both signs
    i_ref, vw_ref, vb_ref = scipy_nodal(G, v, **kw)
    sol = xbar.solve(G, v, **kw, solver=make(G, kw))
    assert sol.result == xbar.RESULTS.successful and bool(sol.converged)
    assert float(sol.residual) <= 1e-10
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=1e-9 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=1e-9)
    W = xbar.effective_matrix(G, **kw, solver=make(G, kw))
    np.testing.assert_allclose(v @ np.asarray(W), i_ref, rtol=0, atol=1e-9 * np.max(np.abs(i_ref)))
    # a 1T1R stack: the linear series conductance in the same network
    cell = xbar.cells.OneTOneR(r_access=300.0)
    i1, *_ = scipy_nodal(G / (1 + 300.0 * G), v[:3], **kw)
    s1 = xbar.solve(G, v[:3], **kw, cell=cell, solver=make(G / (1 + 300.0 * G), kw))
    np.testing.assert_allclose(s1.i_out, i1, rtol=0, atol=1e-9 * np.max(np.abs(i1)))


@functools.cache
def _spice_ref(nonlinear):
    rng, G, kw = _case(8, 6, 2)
    v = rng.uniform(0.0, 0.4, 8)
    ref = _spice.run(
        G,
        v,
        kw["r_wl"],
        kw["r_bl"],
        kw["r_src"],
        kw["r_sense"],
        sinh_v0=0.25 if nonlinear else None,
    )
    return G, v, kw, ref


@pytest.mark.ngspice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")
@pytest.mark.parametrize("entry", SOLVERS, ids=IDS)
def test_against_ngspice(entry):
    _, make, nonlinear_ok = entry
    for nonlinear in (False, True) if nonlinear_ok else (False,):
        G, v, kw, (i_ref, vw_ref, vb_ref) = _spice_ref(nonlinear)
        sol = xbar.solve(G, v, **kw, iv=sinh_cell if nonlinear else None, solver=make(G, kw))
        assert bool(sol.converged)
        np.testing.assert_allclose(sol.i_out, i_ref, rtol=1e-8)
        np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=4e-9)
        np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=4e-9)


@pytest.mark.parametrize("entry", SOLVERS, ids=IDS)
def test_gradients_match_finite_differences(entry):
    _, make, nonlinear_ok = entry
    rng, G, kw = _case(6, 5, 3)
    kw = dict(r_bl=15.0, r_src=2.0)
    v = rng.uniform(0.1, 0.5, (2, 6))
    w = rng.normal(size=5)
    solver = make(G, dict(kw, r_wl=25.0))

    def out(G, v, r):
        s = xbar.solve(G, v, r_wl=r, **kw, solver=solver)
        return jnp.sum(s.i_out @ w) + 1e-4 * jnp.sum(s.v_bl)

    _fd_check(out, (G, v, 25.0), rng)
    if nonlinear_ok:

        def out_nl(G, v):
            s = xbar.solve(G, v, r_wl=25.0, **kw, iv=sinh_cell, solver=solver)
            return jnp.sum(s.i_out @ w)

        _fd_check(out_nl, (G, v), rng)


@pytest.mark.parametrize("entry", SOLVERS, ids=IDS)
def test_jit_vmap_and_kcl(entry):
    _, make, nonlinear_ok = entry
    rng, G, kw = _case(9, 7, 4)
    v = rng.uniform(-0.4, 0.4, (3, 9))
    solver = make(G, kw)
    eager = xbar.solve(G, v, **kw, solver=solver)
    jitted = jax.jit(lambda G, v: xbar.solve(G, v, **kw, solver=solver).i_out)(G, v)
    np.testing.assert_allclose(jitted, eager.i_out, rtol=1e-12, atol=1e-20)
    Gs = np.stack([G, 0.5 * G, 2 * G])
    out = jax.jit(jax.vmap(lambda g: xbar.solve(g, v, **kw, solver=solver).i_out))(Gs)
    for k in range(3):
        np.testing.assert_allclose(
            out[k], scipy_nodal(Gs[k], v, **kw)[0], rtol=1e-9, atol=1e-9 * np.max(np.abs(out[k]))
        )
    if nonlinear_ok:
        sol = xbar.solve(G, v, **kw, iv=sinh_cell, solver=solver)
        check_kcl_and_power(
            sol,
            v,
            G,
            kw["r_wl"],
            kw["r_bl"],
            kw["r_src"],
            kw["r_sense"],
            lambda u: sinh_cell(G, u),
            rtol=1e-9,
        )


@pytest.mark.parametrize("entry", SOLVERS, ids=IDS)
def test_float32(entry):
    _, make, _ = entry
    rng = np.random.default_rng(5)
    G = rng.uniform(1e-6, 1e-4, (40, 24))
    v = rng.uniform(0, 0.3, (16, 40))
    ref = scipy_nodal(G, v, 2.0, 2.0)[0]
    G32, v32 = G.astype(np.float32), v.astype(np.float32)
    sol = xbar.solve(G32, v32, r_wl=2.0, r_bl=2.0, solver=make(G32, dict(r_wl=2.0, r_bl=2.0)))
    assert sol.i_out.dtype == jnp.float32 and bool(sol.converged)
    assert float(sol.residual) <= 1e-5
    np.testing.assert_allclose(sol.i_out, ref, rtol=2e-4, atol=2e-4 * np.max(ref))
