"""Result codes and honest convergence of xbar.solve (no silent wrong answers).

Every cause of ``xbar.RESULTS`` is triggered; extreme and ill-conditioned random cases
are checked against an independent scipy.sparse nodal solve: whenever the solve reports
success, the returned cell voltages agree with the scipy solution within what the residual
tolerance and the reported conditioning bound allow; otherwise the result code says why.
"""

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_solve import scipy_nodal  # noqa: E402

import xbar  # noqa: E402
from xbar import RESULTS  # noqa: E402


def forward_error_ok(sol, G, v, r_wl, r_bl, tol):
    """The returned cell voltages against a scipy.sparse nodal solve (float64): within
    what the residual and the reported conditioning bound allow,
    ``max|u - u*| <= 10 sqrt(MN) condition max(tol, eps) max|v|``."""
    M, N = np.shape(G)
    _, vw, vb = scipy_nodal(np.asarray(G, float), np.asarray(v, float), r_wl, r_bl)
    u = np.asarray(sol.v_wl, float) - np.asarray(sol.v_bl, float)
    err = np.max(np.abs(u - (vw[0] - vb[0])))
    eps = np.finfo(np.asarray(sol.v_wl).dtype).eps
    bound = 10 * np.sqrt(M * N) * float(sol.condition) * max(tol, eps) * np.max(np.abs(v))
    return err <= bound, (err, bound)


def test_each_cause_is_reported():
    rng = np.random.default_rng(8)
    G = rng.uniform(1e-4, 1e-3, (16, 16))
    v = rng.uniform(0.1, 0.3, 16)
    # not converged within the iteration budget
    sol = xbar.solve(G, v, r_wl=50.0, r_bl=50.0, max_iter=2, throw=False, solver=xbar.CG())
    assert sol.result == RESULTS.max_iterations
    with pytest.raises(Exception, match="iteration budget"):
        xbar.solve(G, v, r_wl=50.0, r_bl=50.0, max_iter=2, solver=xbar.CG())

    # a cell law that returns NaN: reported as such, not as "raise max_iter"
    def broken(G, u):
        return jnp.where(jnp.abs(u) > 0.05, jnp.nan, G * u)

    sol = xbar.solve(G, v, r_wl=1.0, r_bl=1.0, iv=broken, throw=False)
    assert sol.result == RESULTS.nonfinite
    with pytest.raises(Exception, match="cell law returned NaN"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, iv=broken)
    # breakdown: one march segment over an enormous amplification overflows
    Gm = np.random.default_rng(31).uniform(5e-3, 0.1, (96, 40))
    sol = xbar.solve(
        Gm, np.full(96, 0.2), r_wl=10.0, r_bl=10.0, solver=xbar.March(segments=1), throw=False
    )
    assert sol.result == RESULTS.breakdown

    # maximum principle: a cell law with an internal source (i(0) != 0, not passive)
    # drives the bit lines below 0 V
    def active(G, u):
        return G * (u - 0.5)

    sol = xbar.solve(G, v, r_wl=1.0, r_bl=1.0, iv=active, throw=False)
    assert float(sol.residual) <= 1e-10  # Kirchhoff holds: the answer is "exact" ...
    assert sol.result == RESULTS.max_principle  # ... but not one of a passive network
    assert float(np.min(sol.v_bl)) < 0
    # untrustworthy in this precision (the issue's float32 case): suggest float64
    Gx = 10.0 ** rng.uniform(-12, 3, (64, 64))
    sol = xbar.solve(
        Gx.astype(np.float32), np.full(64, 0.3, np.float32), r_wl=1.0, r_bl=1.0, throw=False
    )
    assert sol.result == RESULTS.ill_conditioned
    with pytest.raises(Exception, match="float64"):
        xbar.solve(Gx.astype(np.float32), np.full(64, 0.3, np.float32), r_wl=1.0, r_bl=1.0)
    # success
    assert xbar.solve(G, v, r_wl=1.0, r_bl=1.0).result == RESULTS.successful


def test_issue_cases_never_converge_on_nonsense():
    rng = np.random.default_rng(0)
    # G spread 1e-12 .. 1e3 S, 64x64, 1 ohm wires, float32
    G = 10.0 ** rng.uniform(-12, 3, (64, 64))
    v = rng.uniform(0, 0.3, 64)
    for solver in (xbar.Auto(), xbar.CG(), xbar.Direct()):
        s = xbar.solve(
            G.astype(np.float32),
            v.astype(np.float32),
            r_wl=1.0,
            r_bl=1.0,
            throw=False,
            solver=solver,
        )
        assert s.result != RESULTS.successful
    # the same in float64: success only with a small backward error
    s = xbar.solve(G, v, r_wl=1.0, r_bl=1.0, throw=False)
    if s.result == RESULTS.successful:
        ok, info = forward_error_ok(s, G, v, 1.0, 1.0, 1e-10)
        assert ok, info
    # G = 1e3 S with 1e6 ohm wires, float64: every solver either reports a cause or
    # agrees with scipy
    G = np.full((16, 16), 1e3)
    v = rng.uniform(0, 0.3, 16)
    for solver in (xbar.CG(), xbar.Direct(), xbar.March(), xbar.CG(xbar.LinePreconditioner())):
        s = xbar.solve(G, v, r_wl=1e6, r_bl=1e6, throw=False, solver=solver)
        lo, hi = float(np.min(v)), float(np.max(v))
        if s.result == RESULTS.successful:
            ok, info = forward_error_ok(s, G, v, 1e6, 1e6, 1e-10)
            assert ok, info
            assert np.all(np.asarray(s.v_wl) >= min(lo, 0) - 1e-6)
            assert np.all(np.asarray(s.v_wl) <= hi + 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_random_extreme_cases_against_scipy(dtype, seed):
    """Conductance spreads up to 15 decades, wires 1e-3 .. 1e6 ohm: success implies a
    backward error within the tolerance (scipy nodal matrix); else a cause is given."""
    rng = np.random.default_rng(100 + seed)
    M, N = 12, 10  # one shape: one compilation per solver and dtype
    lo = rng.uniform(-12, -3)
    G = 10.0 ** rng.uniform(lo, min(lo + 15, 3), (M, N))
    r_wl, r_bl = 10.0 ** rng.uniform(-3, 6, 2)
    v = rng.uniform(-0.5, 0.5, M)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for solver in (xbar.Auto(), xbar.CG(xbar.LinePreconditioner()), xbar.Direct(), xbar.March()):
        s = xbar.solve(
            G.astype(dtype), v.astype(dtype), r_wl=r_wl, r_bl=r_bl, throw=False, solver=solver
        )
        if s.result == RESULTS.successful:
            assert float(s.residual) <= tol
            ok, info = forward_error_ok(s, G.astype(dtype), v.astype(dtype), r_wl, r_bl, tol)
            assert ok, info
        else:
            assert s.result in (
                RESULTS.max_iterations,
                RESULTS.breakdown,
                RESULTS.ill_conditioned,
                RESULTS.max_principle,
            )


def test_lists_and_readable_errors_under_jit():
    G = [[1e-5, 2e-5], [3e-5, 4e-5]]
    sol = xbar.solve(G, [0.1, 0.2], r_wl=0.0, r_bl=0.0)
    np.testing.assert_allclose(sol.i_out, np.array([0.1, 0.2]) @ np.asarray(G), rtol=1e-8)
    sol = xbar.solve(np.asarray(G), [1, 2], r_wl=0.0, r_bl=0.0)  # integer drive
    np.testing.assert_allclose(sol.i_out, np.array([1.0, 2.0]) @ np.asarray(G), rtol=1e-14)
    Gn = np.full((16, 16), 1e-3)

    @eqx.filter_jit
    def f(G):
        return xbar.solve(
            G, jnp.full(16, 0.2), r_wl=50.0, r_bl=50.0, max_iter=1, solver=xbar.CG()
        ).i_out

    with pytest.raises(Exception, match="did not converge within the iteration budget"):
        f(Gn).block_until_ready()
    with pytest.raises(ValueError, match="solver"):
        xbar.solve(Gn, np.ones(16), r_wl=1.0, r_bl=1.0, solver="jacobi")
    with pytest.raises(ValueError, match="cell"):
        xbar.solve(Gn, np.ones(16), r_wl=1.0, r_bl=1.0, cell="1T1R")
    with pytest.raises(ValueError, match="tol"):
        xbar.solve(Gn, np.ones(16), r_wl=1.0, r_bl=1.0, tol=float("nan"))
