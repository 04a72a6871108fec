"""Tests of xbar.solve / xbar.effective_matrix against independent references.

References: ngspice (full netlists), a scipy.sparse nodal solve assembled here, the
exact discrete ladder formula, Kirchhoff's current law and energy balance evaluated from
the returned node voltages, and central finite differences for gradients.
"""

import shutil

import jax

jax.config.update("jax_enable_x64", True)

import _spice  # noqa: E402  (tests/xbar is on the path under pytest's default import mode)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

import xbar  # noqa: E402

V0 = 0.25  # sinh voltage scale [V] of the nonlinear test cells


def sinh_cell(G, v):
    return G * V0 * jnp.sinh(v / V0)


def _arr(x, shape):
    return np.broadcast_to(np.asarray(x, float), shape)


# ---------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------


def scipy_nodal(G, v_in, r_wl, r_bl, r_src=0.0, r_sense=0.0):
    """Direct sparse solve of the 2MN-node conductance (nodal) matrix; needs r > 0.

    Returns (i_out, v_wl, v_bl) with the batch axis of v_in first.
    """
    G = np.asarray(G, float)
    M, N = G.shape
    r_wl = _arr(r_wl, (M, N)).copy()
    r_bl = _arr(r_bl, (M, N)).copy()
    r_wl[:, 0] += _arr(r_src, (M,))
    r_bl[M - 1, :] += _arr(r_sense, (N,))
    V = np.atleast_2d(np.asarray(v_in, float))
    w = lambda i, j: i * N + j  # noqa: E731
    b = lambda i, j: M * N + i * N + j  # noqa: E731
    rows, cols, vals = [], [], []

    def stamp(p, q, g):
        rows.extend([p, q, p, q])
        cols.extend([p, q, q, p])
        vals.extend([g, g, -g, -g])

    def ground(p, g):
        rows.append(p)
        cols.append(p)
        vals.append(g)

    rhs = np.zeros((2 * M * N, V.shape[0]))
    for i in range(M):
        g0 = 1.0 / r_wl[i, 0]
        ground(w(i, 0), g0)
        rhs[w(i, 0)] += g0 * V[:, i]
        for k in range(1, N):
            stamp(w(i, k - 1), w(i, k), 1.0 / r_wl[i, k])
    for j in range(N):
        for i in range(M - 1):
            stamp(b(i, j), b(i + 1, j), 1.0 / r_bl[i, j])
        ground(b(M - 1, j), 1.0 / r_bl[M - 1, j])
    for i in range(M):
        for j in range(N):
            stamp(w(i, j), b(i, j), G[i, j])
    Y = sp.csc_matrix((vals, (rows, cols)), shape=(2 * M * N,) * 2)
    x = spla.spsolve(Y, rhs).reshape(2 * M * N, -1).T
    v_wl = x[:, : M * N].reshape(-1, M, N)
    v_bl = x[:, M * N :].reshape(-1, M, N)
    i_out = v_bl[:, M - 1, :] / r_bl[M - 1, :]
    return i_out, v_wl, v_bl


def branch_currents(sol, v_in, r_wl, r_bl, r_src, r_sense, law):
    """Currents of every element, from the returned node voltages only (needs r > 0)."""
    v_wl, v_bl = np.asarray(sol.v_wl), np.asarray(sol.v_bl)
    M, N = v_wl.shape[-2:]
    r_wl = _arr(r_wl, (M, N))
    r_bl = _arr(r_bl, (M, N))
    r_src = _arr(r_src, (M,))
    r_sense = _arr(r_sense, (N,))
    v_in = np.asarray(v_in)
    # word-line segment k current (towards larger k); segment 0 includes r_src
    i_wl = np.empty_like(v_wl)
    i_wl[..., 0] = (v_in - v_wl[..., 0]) / (r_src + r_wl[:, 0])
    i_wl[..., 1:] = (v_wl[..., :-1] - v_wl[..., 1:]) / r_wl[:, 1:]
    # bit-line segment below row i (downwards); the last includes r_sense
    i_bl = np.empty_like(v_bl)
    i_bl[..., :-1, :] = (v_bl[..., :-1, :] - v_bl[..., 1:, :]) / r_bl[:-1, :]
    i_bl[..., -1, :] = v_bl[..., -1, :] / (r_bl[-1, :] + r_sense)
    i_cell = np.asarray(law(v_wl - v_bl))
    return i_wl, i_bl, i_cell


def check_kcl_and_power(sol, v_in, G, r_wl, r_bl, r_src, r_sense, law, rtol):
    M, N = np.shape(G)
    i_wl, i_bl, c = branch_currents(sol, v_in, r_wl, r_bl, r_src, r_sense, law)
    scale = np.max(np.abs(i_wl))
    assert scale > 0
    # word-line node (i, k): in from segment k, out to segment k+1 and into the cell
    nxt = np.concatenate([i_wl[..., 1:], np.zeros_like(i_wl[..., :1])], -1)
    np.testing.assert_allclose(i_wl - nxt - c, 0, atol=rtol * scale)
    # bit-line node (i, j): in from the segment above and the cell, out below
    above = np.concatenate([np.zeros_like(i_bl[..., :1, :]), i_bl[..., :-1, :]], -2)
    np.testing.assert_allclose(above + c - i_bl, 0, atol=rtol * scale)
    np.testing.assert_allclose(sol.i_out, i_bl[..., -1, :], atol=rtol * scale)
    # energy: source power = cell + wire dissipation (incl. r_src, r_sense)
    v_in = np.asarray(v_in)
    p_in = np.sum(v_in * i_wl[..., 0], -1)
    rw = _arr(r_wl, (M, N)).copy()
    rw[:, 0] += _arr(r_src, (M,))
    rb = _arr(r_bl, (M, N)).copy()
    rb[-1, :] += _arr(r_sense, (N,))
    v_wl, v_bl = np.asarray(sol.v_wl), np.asarray(sol.v_bl)
    p_cell = np.sum(c * (v_wl - v_bl), (-2, -1))
    p_wire = np.sum(i_wl**2 * rw, (-2, -1)) + np.sum(i_bl**2 * rb, (-2, -1))
    np.testing.assert_allclose(p_cell + p_wire, p_in, rtol=rtol)


# ---------------------------------------------------------------------------------------
# ngspice
# ---------------------------------------------------------------------------------------

SPICE_CASES = [
    # (M, N, nonlinear, r_wl, r_bl, r_src, r_sense)
    (8, 8, False, 1.0, 1.0, 0.0, 0.0),
    (8, 8, True, 10.0, 1.0, 5.0, 3.0),
    (32, 32, False, 10.0, 1.0, 2.0, 4.0),
    (32, 32, True, 1.0, 10.0, 0.0, 2.0),
    (64, 16, False, 1.0, 10.0, 3.0, 0.0),
    (64, 16, True, 10.0, 10.0, 1.0, 1.0),
    (16, 64, False, 10.0, 10.0, 0.0, 0.0),
    (16, 64, True, 1.0, 1.0, 5.0, 5.0),
    (16, 16, True, "random", "random", 2.0, 3.0),
]


@pytest.mark.ngspice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")
@pytest.mark.parametrize("case", SPICE_CASES, ids=lambda c: "x".join(map(str, c)))
def test_against_ngspice(case):
    M, N, nonlinear, r_wl, r_bl, r_src, r_sense = case
    rng = np.random.default_rng(M * 1000 + N + nonlinear)
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(0.0, 0.4, M)
    if r_wl == "random":
        r_wl = rng.uniform(0.5, 20.0, (M, N))
        r_bl = rng.uniform(0.5, 20.0, (M, N))
    i_ref, vw_ref, vb_ref = _spice.run(
        G, v, r_wl, r_bl, r_src, r_sense, sinh_v0=V0 if nonlinear else None
    )
    sol = xbar.solve(
        G,
        v,
        r_wl=r_wl,
        r_bl=r_bl,
        r_src=r_src,
        r_sense=r_sense,
        iv=sinh_cell if nonlinear else None,
    )
    vmax = np.max(np.abs(v))
    kw = dict(r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense)
    direct = xbar.solve(G, v, **kw, iv=sinh_cell if nonlinear else None, solver=xbar.Direct())
    runs = [sol, direct]
    if not nonlinear:
        runs.append(xbar.solve(G, v, **kw, solver=xbar.March.plan(G, **kw)))
    for s in runs:
        assert bool(s.converged)
        np.testing.assert_allclose(s.i_out, i_ref, rtol=1e-8)
        np.testing.assert_allclose(s.v_wl, vw_ref, rtol=0, atol=1e-8 * vmax)
        np.testing.assert_allclose(s.v_bl, vb_ref, rtol=0, atol=1e-8 * vmax)
    if not nonlinear:
        # the effective matrix (direct elimination sweep when N <= M) reproduces SPICE
        W = xbar.effective_matrix(G, **kw)
        np.testing.assert_allclose(v @ np.asarray(W), i_ref, rtol=1e-8)


@pytest.mark.ngspice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")
@pytest.mark.parametrize("nonlinear", [False, True])
def test_column_hold_voltages_against_ngspice(nonlinear):
    """A V/2 write pattern (selected row at V, selected column at 0, all other lines at
    V/2): columns held at nonzero voltages behind r_sense, against ngspice."""
    M, N, vw = 16, 12, 0.6
    rng = np.random.default_rng(7 + nonlinear)
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = np.full(M, vw / 2)
    v[5] = vw
    vc = np.full(N, vw / 2)
    vc[3] = 0.0
    kw = dict(r_wl=rng.uniform(0.5, 10.0, (M, N)), r_bl=3.0, r_src=4.0, r_sense=2.0)
    i_ref, vw_ref, vb_ref = _spice.run(
        G,
        v,
        kw["r_wl"],
        kw["r_bl"],
        kw["r_src"],
        kw["r_sense"],
        sinh_v0=V0 if nonlinear else None,
        v_col=vc,
    )
    iv = sinh_cell if nonlinear else None
    for pc in (xbar.CG(), xbar.Direct()):
        s = xbar.solve(G, v, **kw, iv=iv, v_col=vc, solver=pc)
        assert bool(s.converged)
        np.testing.assert_allclose(s.i_out, i_ref, rtol=1e-8, atol=1e-8 * np.max(np.abs(i_ref)))
        np.testing.assert_allclose(s.v_wl, vw_ref, rtol=0, atol=1e-8 * vw)
        np.testing.assert_allclose(s.v_bl, vb_ref, rtol=0, atol=1e-8 * vw)
    # batched hold voltages: each row of the batch is its own circuit
    vb = np.stack([v, v[::-1]])
    cb = np.stack([vc, np.zeros(N)])
    sb = xbar.solve(G, vb, **kw, iv=iv, v_col=cb)
    s1 = xbar.solve(G, v[::-1], **kw, iv=iv)
    np.testing.assert_allclose(sb.i_out[0], i_ref, rtol=1e-8, atol=1e-8 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sb.i_out[1], s1.i_out, rtol=1e-9)


def test_column_hold_voltage_shift_invariance():
    """Raising every line by the same voltage changes no current (linear and sinh cells),
    and with ideal wires each cell sees exactly v_in[i] - v_col[j]."""
    rng = np.random.default_rng(3)
    G = rng.uniform(1e-6, 1e-4, (9, 7))
    v = rng.uniform(0, 0.5, 9)
    vc = rng.uniform(0, 0.5, 7)
    kw = dict(r_wl=2.0, r_bl=5.0, r_src=1.0, r_sense=1.0)
    for iv in (None, sinh_cell):
        a = xbar.solve(G, v, **kw, iv=iv, v_col=vc)
        b = xbar.solve(G, v + 0.7, **kw, iv=iv, v_col=vc + 0.7)
        np.testing.assert_allclose(b.i_out, a.i_out, rtol=1e-9, atol=1e-18)
        np.testing.assert_allclose(b.v_wl - b.v_bl, a.v_wl - a.v_bl, atol=1e-12)
        np.testing.assert_allclose(b.v_bl, a.v_bl + 0.7, atol=1e-12)
    ideal = xbar.solve(G, v, r_wl=0.0, r_bl=0.0, iv=sinh_cell, v_col=vc)
    np.testing.assert_allclose(ideal.v_wl - ideal.v_bl, v[:, None] - vc[None, :], atol=1e-15)
    with pytest.raises(ValueError, match="v_col"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, v_col=np.zeros(3))
    with pytest.raises(ValueError, match="v_col"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, v_col=np.full(7, np.nan))


# ---------------------------------------------------------------------------------------
# Analytic limits and conservation laws
# ---------------------------------------------------------------------------------------


def test_zero_wire_resistance_is_exact_matmul():
    rng = np.random.default_rng(0)
    G = rng.uniform(0, 1e-4, (7, 5))
    G[0, 0] = 0.0  # a cell that is fully off is allowed
    v = rng.normal(size=(3, 7))
    sol = xbar.solve(G, v, r_wl=0.0, r_bl=0.0)
    # exact up to the rounding of an M-term sum (summation order may differ from matmul)
    bound = 2 * G.shape[0] * np.finfo(float).eps * (np.abs(v) @ G)
    assert np.all(np.abs(np.asarray(sol.i_out) - v @ G) <= bound)
    np.testing.assert_array_equal(sol.v_wl, np.broadcast_to(v[:, :, None], (3, 7, 5)))
    np.testing.assert_array_equal(sol.v_bl, 0.0)
    W = xbar.effective_matrix(G, r_wl=0.0, r_bl=0.0)
    np.testing.assert_array_equal(W, G)
    # nonlinear cell law, ideal wires: each cell sees exactly v_in
    sol = xbar.solve(G, v, r_wl=0.0, r_bl=0.0, iv=sinh_cell)
    ref = np.sum(G * V0 * np.sinh(v[:, :, None] / V0), axis=1)
    np.testing.assert_allclose(sol.i_out, ref, rtol=1e-14)


@pytest.mark.parametrize("nonlinear", [False, True])
def test_kcl_and_power_balance(nonlinear):
    rng = np.random.default_rng(3)
    M, N = 12, 9
    G = rng.uniform(1e-6, 3e-4, (M, N))
    r_wl = rng.uniform(0.5, 30.0, (M, N))
    r_bl = rng.uniform(0.5, 30.0, (M, N))
    r_src = rng.uniform(0, 20, M)
    r_sense = rng.uniform(0, 20, N)
    v = rng.uniform(-0.5, 0.5, (2, M))
    law = (lambda u: sinh_cell(G, u)) if nonlinear else (lambda u: G * u)
    sol = xbar.solve(
        G,
        v,
        r_wl=r_wl,
        r_bl=r_bl,
        r_src=r_src,
        r_sense=r_sense,
        iv=sinh_cell if nonlinear else None,
    )
    check_kcl_and_power(sol, v, G, r_wl, r_bl, r_src, r_sense, law, rtol=1e-9)


def test_uniform_ladder_closed_form():
    """One row, ideal bit lines: the exact discrete ladder and its continuum limit.

    Interior nodes obey V_{k-1} - (2 + rG) V_k + V_{k+1} = 0 and the open end
    V_{N-2} = (1 + rG) V_{N-1}, so V_k = C cosh((N - 1/2 - k) theta) with
    cosh(theta) = 1 + rG/2, and the driver V_{-1} = v_in gives
    V_k = v_in cosh((N - 1/2 - k) theta) / cosh((N + 1/2) theta).
    """
    N, r, g, v = 200, 1.0, 1e-4, 0.3
    sol = xbar.solve(np.full((1, N), g), np.array([v]), r_wl=r, r_bl=0.0)
    theta = np.arccosh(1 + r * g / 2)
    k = np.arange(N)
    V = v * np.cosh((N - 0.5 - k) * theta) / np.cosh((N + 0.5) * theta)
    np.testing.assert_allclose(sol.v_wl[0], V, rtol=1e-10)
    np.testing.assert_allclose(sol.i_out, g * V, rtol=1e-10)
    # continuum: V_far / V_in = 1 / cosh(N sqrt(rG)), first-order accurate in sqrt(rG)
    far = float(sol.v_wl[0, -1]) / v
    cont = 1 / np.cosh(N * np.sqrt(r * g))
    assert abs(far / cont - 1) < 2 * np.sqrt(r * g)
    assert abs(far / cont - 1) > 0  # the discrete ladder is not the continuum


def test_against_scipy_sparse_nodal_solve():
    rng = np.random.default_rng(7)
    M, N = 20, 13
    G = rng.uniform(0, 5e-4, (M, N))
    r_wl = rng.uniform(0.1, 50, (M, N))
    r_bl = rng.uniform(0.1, 50, (M, N))
    r_src = rng.uniform(0, 10, M)
    r_sense = 7.0
    v = rng.uniform(-1, 1, (4, M))
    i_ref, vw_ref, vb_ref = scipy_nodal(G, v, r_wl, r_bl, r_src, r_sense)
    sol = xbar.solve(G, v, r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense)
    # mixed-sign inputs make some outputs cancel: tolerance relative to the largest output
    i_tol = 1e-9 * np.max(np.abs(i_ref))
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=i_tol)
    np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=1e-9)
    W = xbar.effective_matrix(G, r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense)
    np.testing.assert_allclose(v @ np.asarray(W), i_ref, rtol=0, atol=i_tol)


@pytest.mark.parametrize("method", [xbar.CG(), xbar.Direct()], ids=["cg", "direct"])
def test_batch_processed_in_chunks(monkeypatch, method):
    """On CPU the wire operator runs over a batch a few fields at a time; force chunks
    of 2 fields (3 chunks) and check linear cells against the scipy nodal solve, sinh
    cells against KCL / power balance, and gradients against finite differences."""
    from xbar import _wires

    M, N = 11, 7  # a shape no other test compiles (the chunk size is read when tracing)
    monkeypatch.setattr(_wires, "_CHUNK_ELEMS", 2 * M * N)
    rng = np.random.default_rng(13)
    G = rng.uniform(1e-5, 2e-3, (M, N))
    v = rng.uniform(-0.5, 0.5, (6, M))
    kw = dict(r_wl=3.0, r_bl=5.0, r_src=1.0, r_sense=2.0, solver=method)
    i_ref, vw_ref, vb_ref = scipy_nodal(G, v, 3.0, 5.0, 1.0, 2.0)
    sol = xbar.solve(G, v, **kw)
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=1e-9 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=1e-9)
    sol = xbar.solve(G, v, **kw, iv=sinh_cell)
    check_kcl_and_power(sol, v, G, 3.0, 5.0, 1.0, 2.0, lambda u: sinh_cell(G, u), 1e-8)
    w = rng.normal(size=N)
    _fd_check(lambda G_, v_: jnp.sum(xbar.solve(G_, v_, **kw, iv=sinh_cell).i_out @ w), (G, v), rng)


def test_1t1r_series_resistance():
    rng = np.random.default_rng(11)
    M, N = 6, 5
    G = rng.uniform(1e-6, 1e-3, (M, N))
    r_acc = rng.uniform(100, 5e3, (M, N))
    v = rng.uniform(0, 0.3, M)
    # series combination is again a resistor: reference with G_eff in the scipy network
    i_ref, *_ = scipy_nodal(G / (1 + r_acc * G), v, 3.0, 2.0, 1.0, 1.0)
    for iv in (None, lambda G, u: G * u):  # linear path and the nested-Newton path
        sol = xbar.solve(
            G,
            v,
            r_wl=3.0,
            r_bl=2.0,
            r_src=1.0,
            r_sense=1.0,
            cell=xbar.cells.OneTOneR(r_access=r_acc),
            iv=iv,
        )
        np.testing.assert_allclose(sol.i_out, i_ref[0], rtol=1e-9)


def test_1s1r_selector_ideal_wires():
    """Selector in series with a sinh cell, ideal wires: each stack sees v_in (brentq ref)."""
    G = np.array([[1e-4, 3e-5], [2e-6, 5e-4]])
    v = np.array([0.8, -0.6])
    i_s, v_s = 1e-6, 0.1

    def selector(u):
        return i_s * jnp.sinh(u / v_s)

    sol = xbar.solve(
        G, v, r_wl=0.0, r_bl=0.0, iv=sinh_cell, cell=xbar.cells.Series(selector, r_series=200.0)
    )
    ref = np.zeros(2)
    for i in range(2):
        for j in range(2):

            def h(x, i=i, j=j):
                ic = G[i, j] * V0 * np.sinh(x / V0)
                return ic - i_s * np.sinh((v[i] - x - 200.0 * ic) / v_s)

            x = brentq(h, min(0, v[i]), max(0, v[i]), xtol=1e-15, rtol=1e-15)
            ref[j] += G[i, j] * V0 * np.sinh(x / V0)
    np.testing.assert_allclose(sol.i_out, ref, rtol=1e-10)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.sampled_from([(1, 4), (3, 1), (4, 5)]),
    seed=st.integers(0, 2**31 - 1),
    log_r=st.floats(-1, 2),
    nonlinear=st.booleans(),
)
def test_property_kcl_power(shape, seed, log_r, nonlinear):
    rng = np.random.default_rng(seed)
    M, N = shape
    G = rng.uniform(0, 1e-3, (M, N))
    r_wl = 10**log_r * rng.uniform(0.1, 1, (M, N))
    r_bl = 10**log_r * rng.uniform(0.1, 1, (M, N))
    r_src, r_sense = rng.uniform(0, 10), rng.uniform(0, 10)
    v = rng.uniform(-0.5, 0.5, M) + 0.1
    law = (lambda u: sinh_cell(G, u)) if nonlinear else (lambda u: G * u)
    sol = xbar.solve(
        G,
        v,
        r_wl=r_wl,
        r_bl=r_bl,
        r_src=r_src,
        r_sense=r_sense,
        iv=sinh_cell if nonlinear else None,
    )
    check_kcl_and_power(sol, v, G, r_wl, r_bl, r_src, r_sense, law, rtol=1e-8)


# ---------------------------------------------------------------------------------------
# Gradients (implicit differentiation) against central finite differences
# ---------------------------------------------------------------------------------------


def _fd_check(f, args, rng, rel_step=1e-5, rtol=1e-6):
    """For each argument of scalar f: directional derivative (random direction) from one
    jitted reverse-mode gradient vs a central finite difference."""
    args = [np.asarray(a, float) for a in args]
    grads = jax.jit(jax.grad(f, argnums=tuple(range(len(args)))))(*args)
    fj = jax.jit(f)
    for k, (x, g) in enumerate(zip(args, grads, strict=True)):
        d = rng.normal(size=x.shape) * (np.abs(x) + (x == 0))
        plus = [a + rel_step * d if i == k else a for i, a in enumerate(args)]
        minus = [a - rel_step * d if i == k else a for i, a in enumerate(args)]
        fd = (float(fj(*plus)) - float(fj(*minus))) / (2 * rel_step)
        np.testing.assert_allclose(np.sum(np.asarray(g) * d), fd, rtol=rtol, err_msg=f"arg {k}")


@pytest.mark.parametrize("nonlinear", [False, True])
def test_gradients_match_finite_differences(nonlinear):
    rng = np.random.default_rng(5)
    M, N = 5, 4
    G = rng.uniform(1e-5, 1e-3, (M, N))
    v = rng.uniform(0.1, 0.5, M)
    r_wl = rng.uniform(5, 50, (M, N))
    w = rng.normal(size=N)
    iv = sinh_cell if nonlinear else None

    def out(G, v, r_wl, r_bl):
        s = xbar.solve(G, v, r_wl=r_wl, r_bl=r_bl, r_src=3.0, iv=iv)
        # outputs and node voltages are both differentiable
        return jnp.dot(s.i_out, w) + 1e-4 * jnp.sum(s.v_bl * w)

    _fd_check(out, (G, v, r_wl, 20.0), rng)


def test_gradient_effective_matrix_and_1s1r():
    rng = np.random.default_rng(9)
    M, N = 4, 6
    G = rng.uniform(1e-5, 1e-3, (M, N))
    P = rng.normal(size=(M, N))
    _fd_check(
        lambda G_, r: jnp.sum(P * xbar.effective_matrix(G_, r_wl=r, r_bl=30.0)), (G, 10.0), rng
    )
    v = rng.uniform(0.3, 0.9, M)

    def sel(u):
        return 1e-5 * jnp.sinh(u / 0.1)

    def out(G_, v_):
        s = xbar.solve(
            G_, v_, r_wl=10.0, r_bl=5.0, iv=sinh_cell, cell=xbar.cells.Series(sel, r_series=300.0)
        )
        return jnp.sum(s.i_out * P[0])

    _fd_check(out, (G, v), rng)


# ---------------------------------------------------------------------------------------
# jit / vmap / float32 / convergence / validation
# ---------------------------------------------------------------------------------------


def test_jit_and_vmap_over_arrays():
    rng = np.random.default_rng(2)
    K, M, N = 3, 6, 7
    Gs = rng.uniform(1e-6, 1e-4, (K, M, N))
    vs = rng.uniform(0, 0.3, (K, 2, M))
    rws = rng.uniform(1, 20, K)

    @jax.jit
    def f(G, v, r):
        return xbar.solve(G, v, r_wl=r, r_bl=5.0, r_sense=2.0).i_out

    out = jax.vmap(f)(Gs, vs, rws)
    assert out.shape == (K, 2, N)
    for k in range(K):
        ref, *_ = scipy_nodal(Gs[k], vs[k], rws[k], 5.0, 0.0, 2.0)
        np.testing.assert_allclose(out[k], ref, rtol=1e-9)
    # nonlinear under jit + vmap, compared with eager single solves
    g = jax.jit(jax.vmap(lambda G, v: xbar.solve(G, v, r_wl=5.0, r_bl=5.0, iv=sinh_cell).i_out))
    out = g(Gs, vs[:, 0])
    for k in range(K):
        ref = xbar.solve(Gs[k], vs[k, 0], r_wl=5.0, r_bl=5.0, iv=sinh_cell).i_out
        np.testing.assert_allclose(out[k], ref, rtol=1e-9)
    # effective matrix under jit and vmap
    W = jax.jit(jax.vmap(lambda G: xbar.effective_matrix(G, r_wl=5.0, r_bl=5.0)))(Gs)
    for k in range(K):
        ref, *_ = scipy_nodal(Gs[k], np.eye(M), 5.0, 5.0)
        np.testing.assert_allclose(W[k], ref, rtol=1e-9)


@pytest.mark.parametrize("nonlinear", [False, True])
def test_float32_path(nonlinear):
    rng = np.random.default_rng(4)
    M, N = 32, 24
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(0, 0.3, M)
    iv = sinh_cell if nonlinear else None
    sol32 = xbar.solve(G.astype(np.float32), v.astype(np.float32), r_wl=2.0, r_bl=2.0, iv=iv)
    assert sol32.i_out.dtype == jnp.float32 and sol32.v_wl.dtype == jnp.float32
    assert bool(sol32.converged)
    if nonlinear:
        ref = xbar.solve(G, v, r_wl=2.0, r_bl=2.0, iv=iv).i_out
    else:
        ref = scipy_nodal(G, v, 2.0, 2.0)[0][0]
    np.testing.assert_allclose(sol32.i_out, ref, rtol=2e-4)


def test_non_convergence_is_reported():
    rng = np.random.default_rng(8)
    G = rng.uniform(1e-4, 1e-3, (16, 16))
    v = rng.uniform(0.1, 0.3, 16)
    sol = xbar.solve(G, v, r_wl=50.0, r_bl=50.0, max_iter=2, throw=False)
    assert not bool(sol.converged)
    with pytest.raises(Exception, match="did not converge"):
        xbar.solve(G, v, r_wl=50.0, r_bl=50.0, max_iter=2)
    with pytest.raises(Exception, match="did not converge"):
        jax.jit(lambda G: xbar.solve(G, v, r_wl=50.0, r_bl=50.0, max_iter=2).i_out)(G)
    sol = xbar.solve(G, v, r_wl=50.0, r_bl=50.0, iv=sinh_cell, max_newton=1, throw=False)
    assert not bool(sol.converged)


def test_nan_from_the_cell_law_is_never_converged():
    """A cell law that returns NaN must not pass the convergence test.  64 x 64 fields:
    at that size XLA's vectorised CPU max reduction drops NaNs (all-NaN -> -inf)."""

    def broken(G, v):
        return jnp.where(jnp.abs(v) > 0.05, jnp.nan, G * v)

    G = np.full((64, 64), 1e-5)
    v = np.full(64, 0.2)
    sol = xbar.solve(G, v, r_wl=1.0, r_bl=1.0, iv=broken, throw=False)
    assert not bool(sol.converged)
    assert not float(sol.residual) <= 1e-10  # inf (or NaN), never small
    with pytest.raises(Exception, match="did not converge"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, iv=broken)


def test_exponential_cells_maximum_principle_and_kcl():
    """Diode-like cells (I = G V_T (exp(V/V_T) - 1), V_T = 30 mV, up to 0.8 V drive): the
    solve converges, Kirchhoff's laws hold, and every node voltage lies between the lowest
    and the highest source (rows and column holds), as in any passive network."""
    vt = 0.03

    def diode(G, u):
        return G * vt * jnp.expm1(u / vt)

    rng = np.random.default_rng(17)
    M, N = 24, 20
    G = rng.uniform(1e-7, 1e-5, (M, N))
    v = rng.uniform(0.0, 0.8, (2, M))
    kw = dict(r_wl=10.0, r_bl=10.0, r_src=5.0, r_sense=5.0, iv=diode)
    for v_col in (np.zeros(N), rng.uniform(0.0, 0.2, N)):
        sol = xbar.solve(G, v, **kw, v_col=v_col)
        assert bool(sol.converged)
        lo = np.minimum(v.min(-1), v_col.min())[:, None, None]
        hi = np.maximum(v.max(-1), v_col.max())[:, None, None]
        for node in (np.asarray(sol.v_wl), np.asarray(sol.v_bl)):
            assert np.all(node >= lo - 1e-12) and np.all(node <= hi + 1e-12)
        # far from ideal: the hottest cells are limited by the wires, not by the drive
        assert float(np.max(sol.v_wl - sol.v_bl)) < 0.8 - 0.1
    # Kirchhoff's current law and power balance at every node (read convention)
    sol = xbar.solve(G, v, **kw)
    check_kcl_and_power(sol, v, G, 10.0, 10.0, 5.0, 5.0, lambda u_: diode(G, u_), 1e-8)


def test_bad_input_raises_value_error():
    G = np.full((3, 4), 1e-5)
    v = np.ones(3)
    with pytest.raises(ValueError, match="G"):
        xbar.solve(-G, v, r_wl=1.0, r_bl=1.0)
    with pytest.raises(ValueError, match="G"):
        xbar.solve(np.where(G > 0, np.nan, 0), v, r_wl=1.0, r_bl=1.0)
    with pytest.raises(ValueError, match="r_wl"):
        xbar.solve(G, v, r_wl=-1.0, r_bl=1.0)
    with pytest.raises(ValueError, match="r_bl"):
        xbar.solve(G, v, r_wl=1.0, r_bl=np.nan)
    with pytest.raises(ValueError, match="r_wl"):
        xbar.solve(G, v, r_wl=np.ones((4, 3)), r_bl=1.0)
    with pytest.raises(ValueError, match="r_src"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, r_src=-2.0)
    with pytest.raises(ValueError, match="r_sense"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, r_sense=np.ones(3))
    with pytest.raises(ValueError, match="v_in"):
        xbar.solve(G, np.ones(4), r_wl=1.0, r_bl=1.0)
    with pytest.raises(ValueError, match="v_in"):
        xbar.solve(G, np.array([1.0, np.nan, 0.0]), r_wl=1.0, r_bl=1.0)
    with pytest.raises(ValueError, match="G"):
        xbar.solve(np.ones(3), v, r_wl=1.0, r_bl=1.0)
    with pytest.raises(ValueError, match="r_access"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, cell=xbar.cells.OneTOneR(r_access=-5.0))
    # traced values are checked at run time
    with pytest.raises(Exception, match="G"):
        jax.jit(lambda G: xbar.solve(G, v, r_wl=1.0, r_bl=1.0).i_out)(-G)
    with pytest.raises(Exception, match="r_wl"):
        jax.jit(lambda r: xbar.solve(G, v, r_wl=r, r_bl=1.0).i_out)(-1.0)


# ---------------------------------------------------------------------------------------
# Line (Woodbury + tridiagonal) preconditioner
# ---------------------------------------------------------------------------------------


def test_line_preconditioner_against_scipy_and_fewer_iterations():
    rng = np.random.default_rng(21)
    M, N = 24, 40
    G = rng.uniform(1e-6, 1e-3, (M, N))
    r_wl = rng.uniform(0.5, 20, (M, N))
    r_bl = rng.uniform(0.5, 20, (M, N))
    r_src, r_sense = rng.uniform(0, 5, M), 3.0
    v = rng.uniform(-0.5, 0.5, (3, M))
    i_ref, vw_ref, vb_ref = scipy_nodal(G, v, r_wl, r_bl, r_src, r_sense)
    kw = dict(r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense)
    sol = xbar.solve(G, v, **kw, solver=xbar.CG(xbar.LinePreconditioner()))
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=1e-9 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=1e-9)
    jac = xbar.solve(G, v, **kw, solver=xbar.CG())
    assert int(sol.cg_iterations) < int(jac.cg_iterations) / 2
    W = xbar.effective_matrix(G, **kw, solver=xbar.CG(xbar.LinePreconditioner()))
    np.testing.assert_allclose(v @ np.asarray(W), i_ref, rtol=0, atol=1e-9 * np.max(np.abs(i_ref)))
    # nonlinear cells: Kirchhoff and energy balance from the returned node voltages
    sol = xbar.solve(G, v, **kw, iv=sinh_cell, solver=xbar.CG(xbar.LinePreconditioner()))
    check_kcl_and_power(sol, v, G, r_wl, r_bl, r_src, r_sense, lambda u: sinh_cell(G, u), rtol=1e-9)


def test_line_preconditioner_exact_limits():
    # ideal bit lines: the word-line factor is the exact inverse, CG needs one step
    N, r, g, v = 200, 1.0, 1e-4, 0.3
    sol = xbar.solve(
        np.full((1, N), g),
        np.array([v]),
        r_wl=r,
        r_bl=0.0,
        solver=xbar.CG(xbar.LinePreconditioner()),
    )
    theta = np.arccosh(1 + r * g / 2)
    V = v * np.cosh((N - 0.5 - np.arange(N)) * theta) / np.cosh((N + 0.5) * theta)
    np.testing.assert_allclose(sol.v_wl[0], V, rtol=1e-10)
    assert int(sol.cg_iterations) <= 2
    # ideal wires: both factors are the identity, exact matmul
    rng = np.random.default_rng(0)
    G = rng.uniform(0, 1e-4, (7, 5))
    vv = rng.normal(size=(3, 7))
    sol = xbar.solve(G, vv, r_wl=0.0, r_bl=0.0, solver=xbar.CG(xbar.LinePreconditioner()))
    bound = 2 * G.shape[0] * np.finfo(float).eps * (np.abs(vv) @ G)
    assert np.all(np.abs(np.asarray(sol.i_out) - vv @ G) <= bound)


def test_line_preconditioner_zero_segments():
    """Some zero-resistance segments (floored only inside the preconditioner).

    Reference: the same network with the zero segments replaced by exact node merges is
    what the Jacobi path solves (its operator has no 1/r); the residual of the returned
    node voltages is checked with Kirchhoff's laws on the nonzero segments.
    """
    rng = np.random.default_rng(13)
    M, N = 16, 20
    G = rng.uniform(1e-6, 1e-3, (M, N))
    r_wl = rng.uniform(0.5, 20, (M, N)) * (rng.uniform(size=(M, N)) > 0.3)
    r_bl = rng.uniform(0.5, 20, (M, N)) * (rng.uniform(size=(M, N)) > 0.3)
    r_wl[3] = 0.0  # a whole word line without resistance
    v = rng.uniform(0, 0.4, M)
    sol = xbar.solve(
        G, v, r_wl=r_wl, r_bl=r_bl, r_src=1.0, solver=xbar.CG(xbar.LinePreconditioner())
    )
    assert bool(sol.converged) and float(sol.residual) < 1e-9
    # nodes joined by a zero segment are at the same voltage
    vw, vb = np.asarray(sol.v_wl), np.asarray(sol.v_bl)
    np.testing.assert_array_equal((vw[:, :-1] - vw[:, 1:])[r_wl[:, 1:] == 0], 0.0)
    np.testing.assert_array_equal((vb[:-1] - vb[1:])[r_bl[:-1] == 0], 0.0)
    # KCL at every bit-line node from the cell currents and nonzero-segment currents
    ref = xbar.solve(G, v, r_wl=r_wl, r_bl=r_bl, r_src=1.0, solver=xbar.CG())
    np.testing.assert_allclose(sol.i_out, ref.i_out, rtol=1e-9)


def test_line_preconditioner_gradients_and_float32():
    rng = np.random.default_rng(17)
    M, N = 5, 6
    G = rng.uniform(1e-5, 1e-3, (M, N))
    v = rng.uniform(0.1, 0.5, M)
    w = rng.normal(size=N)

    def out(G, v, r):
        s = xbar.solve(
            G, v, r_wl=r, r_bl=15.0, iv=sinh_cell, solver=xbar.CG(xbar.LinePreconditioner())
        )
        return jnp.dot(s.i_out, w)

    _fd_check(out, (G, v, 25.0), rng)
    M, N = 32, 24
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(0, 0.3, M)
    sol32 = xbar.solve(
        G.astype(np.float32),
        v.astype(np.float32),
        r_wl=2.0,
        r_bl=2.0,
        solver=xbar.CG(xbar.LinePreconditioner()),
    )
    assert sol32.i_out.dtype == jnp.float32 and bool(sol32.converged)
    np.testing.assert_allclose(sol32.i_out, scipy_nodal(G, v, 2.0, 2.0)[0][0], rtol=2e-4)
    with pytest.raises(ValueError, match="solver"):
        xbar.solve(G, v, r_wl=1.0, r_bl=1.0, solver="ilu")


# ---------------------------------------------------------------------------------------
# Direct (Woodbury + block-tridiagonal) solver
# ---------------------------------------------------------------------------------------


def _batched_1t1r_case(shape, seed, n_inputs, per_column_sense):
    """Random 1T1R array with per-segment wires, per-row r_src, a batch of inputs of both
    signs, and its scipy nodal solution: ``(G, v, kw, (i_ref, vw_ref, vb_ref))``."""
    M, N = shape
    rng = np.random.default_rng(seed)
    G = rng.uniform(1e-6, 1e-3, (M, N))
    r_wl = rng.uniform(0.5, 20, (M, N))
    r_bl = rng.uniform(0.5, 20, (M, N))
    r_src, r_cs = rng.uniform(0, 5, M), 200.0
    r_sense = rng.uniform(0, 5, N) if per_column_sense else 3.0
    v = rng.uniform(-0.5, 0.5, (n_inputs, M))
    g_cell = G / (1 + r_cs * G)  # linear cell + access resistor = series conductance
    refs = scipy_nodal(g_cell, v, r_wl, r_bl, r_src, r_sense)
    kw = dict(
        r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense, cell=xbar.cells.OneTOneR(r_access=r_cs)
    )
    return G, v, kw, refs


@pytest.mark.parametrize("shape", [(24, 40), (40, 24), (1, 9), (9, 1)])
def test_direct_against_scipy_batched_1t1r(shape):
    M, N = shape
    G, v, kw, (i_ref, vw_ref, vb_ref) = _batched_1t1r_case(shape, M * 100 + N, 30, False)
    sol = xbar.solve(G, v, **kw, solver=xbar.Direct())
    assert bool(sol.converged) and int(sol.cg_iterations) == 1  # exact factorisation
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=1e-10 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=1e-10)
    W = xbar.effective_matrix(G, **kw, solver=xbar.Direct())
    np.testing.assert_allclose(v @ np.asarray(W), i_ref, rtol=0, atol=1e-10 * np.max(np.abs(i_ref)))
    # "auto" (Direct for a batch this size, from the shapes) gives the same answer
    auto = xbar.solve(G, v, **kw)
    np.testing.assert_allclose(auto.i_out, sol.i_out, rtol=1e-9)


def test_direct_exact_limits_and_zero_segments():
    rng = np.random.default_rng(5)
    M, N = 12, 9
    G = rng.uniform(0, 1e-3, (M, N))
    G[0, 0] = 0.0
    v = rng.normal(size=(4, M))
    # no wires at all: exactly v @ G
    sol = xbar.solve(G, v, r_wl=0.0, r_bl=0.0, solver=xbar.Direct())
    bound = 2 * M * np.finfo(float).eps * (np.abs(v) @ G)
    assert np.all(np.abs(np.asarray(sol.i_out) - v @ G) <= bound)
    np.testing.assert_array_equal(xbar.effective_matrix(G, r_wl=0.0, r_bl=0.0), G)
    # one family without resistance (that family's factor is exact, not floored)
    for rw, rb in ((2.0, 0.0), (0.0, 2.0)):
        # reference: CG on the exact operator (it has no 1/r, zero wires are exact)
        ref = xbar.solve(G, v, r_wl=rw, r_bl=rb, solver=xbar.CG(), tol=1e-13).i_out
        sol = xbar.solve(G, v, r_wl=rw, r_bl=rb, solver=xbar.Direct())
        assert int(sol.cg_iterations) == 1
        np.testing.assert_allclose(sol.i_out, ref, rtol=1e-9, atol=1e-15)
        W = xbar.effective_matrix(G, r_wl=rw, r_bl=rb)
        np.testing.assert_allclose(v @ np.asarray(W), ref, rtol=1e-9, atol=1e-15)
    # scattered zero segments: floored in the factorisation, refinement restores the
    # exact answer (compared with CG on the exact operator, which has no 1/r)
    r_wl = rng.uniform(0.5, 20, (M, N)) * (rng.uniform(size=(M, N)) > 0.3)
    r_bl = rng.uniform(0.5, 20, (M, N)) * (rng.uniform(size=(M, N)) > 0.3)
    sol = xbar.solve(G, v, r_wl=r_wl, r_bl=r_bl, solver=xbar.Direct())
    ref = xbar.solve(G, v, r_wl=r_wl, r_bl=r_bl, solver=xbar.CG(), tol=1e-13)
    assert bool(sol.converged)
    np.testing.assert_allclose(sol.i_out, ref.i_out, rtol=1e-9)
    W = xbar.effective_matrix(G, r_wl=r_wl, r_bl=r_bl)
    np.testing.assert_allclose(v @ np.asarray(W), ref.i_out, rtol=1e-9)


def test_direct_newton_gradients_vmap_float32():
    rng = np.random.default_rng(23)
    M, N = 6, 5
    G = rng.uniform(1e-5, 1e-3, (M, N))
    v = rng.uniform(0.1, 0.5, (2, M))
    w = rng.normal(size=N)
    P = rng.normal(size=(M, N))

    def out(G, v, r):
        s = xbar.solve(G, v, r_wl=r, r_bl=15.0, iv=sinh_cell, solver=xbar.Direct())
        return jnp.sum(s.i_out @ w)

    _fd_check(out, (G, v, 25.0), rng)
    # effective matrix through the elimination sweep (differentiated directly)
    _fd_check(
        lambda G_, r: jnp.sum(
            P * xbar.effective_matrix(G_, r_wl=r, r_bl=30.0, solver=xbar.Direct())
        ),
        (G, 10.0),
        rng,
    )
    # a cell that is fully off: derivatives stay finite (no 1/sqrt(G) anywhere)
    G0 = G.copy()
    G0[1, 2] = 0.0

    def loss(G_):
        return jnp.sum(P * xbar.effective_matrix(G_, r_wl=10.0, r_bl=30.0, solver=xbar.Direct()))

    g = jax.grad(loss)(G0)
    assert np.all(np.isfinite(g))
    h = 1e-8  # one-sided difference (G >= 0), second-order error ~h * curvature
    E = np.zeros_like(G0)
    E[1, 2] = h
    np.testing.assert_allclose(g[1, 2], (loss(G0 + E) - loss(G0)) / h, rtol=1e-5)
    # Newton with the direct linear solver agrees with Jacobi-CG Newton
    ref = xbar.solve(G, v, r_wl=8.0, r_bl=4.0, iv=sinh_cell, tol=1e-12)
    sol = xbar.solve(G, v, r_wl=8.0, r_bl=4.0, iv=sinh_cell, solver=xbar.Direct())
    np.testing.assert_allclose(sol.i_out, ref.i_out, rtol=1e-9)
    # vmap over arrays
    Gs = rng.uniform(1e-6, 1e-4, (3, 10, 7))
    Ws = jax.jit(
        jax.vmap(lambda g: xbar.effective_matrix(g, r_wl=5.0, r_bl=5.0, solver=xbar.Direct()))
    )(Gs)
    for k in range(3):
        np.testing.assert_allclose(Ws[k], scipy_nodal(Gs[k], np.eye(10), 5.0, 5.0)[0], rtol=1e-9)
    # float32
    M, N = 48, 32
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(0, 0.3, (16, M))
    ref = scipy_nodal(G, v, 2.0, 2.0)[0]
    s32 = xbar.solve(
        G.astype(np.float32), v.astype(np.float32), r_wl=2.0, r_bl=2.0, solver=xbar.Direct()
    )
    assert s32.i_out.dtype == jnp.float32 and bool(s32.converged)
    np.testing.assert_allclose(s32.i_out, ref, rtol=1e-4, atol=1e-4 * np.max(ref))
    W32 = xbar.effective_matrix(G.astype(np.float32), r_wl=2.0, r_bl=2.0)
    np.testing.assert_allclose(
        v @ np.asarray(W32, np.float64), ref, rtol=1e-4, atol=1e-4 * np.max(ref)
    )


# ---------------------------------------------------------------------------------------
# Marching (multiple-shooting) solver
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(24, 40), (40, 24), (1, 9), (9, 1), (5, 37)])
def test_march_against_scipy_batched_1t1r(shape):
    """Per-segment wires, per-row r_src, r_sense, access resistors, a batch of inputs of
    both signs; node voltages and currents against the scipy nodal solve."""
    M, N = shape
    G, v, kw, (i_ref, vw_ref, vb_ref) = _batched_1t1r_case(shape, M * 100 + N + 1, 20, True)
    sol = xbar.solve(G, v, **kw, solver=xbar.March.plan(G, **kw))
    assert bool(sol.converged) and int(sol.cg_iterations) == 1
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=1e-10 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sol.v_wl, vw_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=1e-10)
    assert float(sol.residual) < 1e-10


def test_march_segments_strong_ir_drop():
    """Wires and cells where a single march would amplify rounding by ~1e40: the planner
    cuts it into segments joined by the Riccati sweep, and the answer stays exact."""
    from xbar import _march

    M, N = 96, 40
    rng = np.random.default_rng(31)
    G = rng.uniform(1e-3, 2e-2, (M, N))  # 50-1000 ohm cells
    v = rng.uniform(-0.5, 0.5, (17, M))
    K = _march.plan(G, np.full((M, N), 10.0), np.full((M, N), 10.0), 8)
    lam = 2 * np.arcsinh(np.sqrt(10.0 * 2e-2) / 2)  # growth bound per block
    assert K == -(-M // int(_march.LOG_GROWTH[8] // lam)) and K > 3
    i_ref, vw_ref, vb_ref = scipy_nodal(G, v, 10.0, 10.0, 1.0, 1.0)
    # the planned march; a tighter tol than the default, as the system is badly
    # conditioned here
    plan = xbar.March.plan(G, r_wl=10.0, r_bl=10.0, r_src=1.0, r_sense=1.0)
    sol = xbar.solve(G, v, r_wl=10.0, r_bl=10.0, r_src=1.0, r_sense=1.0, tol=1e-12, solver=plan)
    assert bool(sol.converged) and int(sol.cg_iterations) <= 3
    np.testing.assert_allclose(sol.i_out, i_ref, rtol=0, atol=1e-10 * np.max(np.abs(i_ref)))
    np.testing.assert_allclose(sol.v_bl, vb_ref, rtol=0, atol=2e-10 * 0.5)
    # Too few segments (not planned): every residual test uses the exact operator.  Two
    # segments here: refined to convergence; one segment with 5x the conductance
    # (amplification ~1e60): refinement cannot rescue it, and the failure is reported,
    # never returned as an answer.
    two = xbar.solve(
        G,
        v,
        r_wl=10.0,
        r_bl=10.0,
        r_src=1.0,
        r_sense=1.0,
        solver=xbar.March(segments=2),
        throw=False,
    )
    assert bool(two.converged)
    np.testing.assert_allclose(two.i_out, i_ref, rtol=0, atol=1e-9 * np.max(np.abs(i_ref)))
    bad = xbar.solve(5 * G, v, r_wl=10.0, r_bl=10.0, solver=xbar.March(segments=1), throw=False)
    assert not bool(bad.converged)
    with pytest.raises(Exception, match="did not converge"):
        xbar.solve(
            5 * G, v, r_wl=10.0, r_bl=10.0, solver=xbar.March(segments=1)
        ).i_out.block_until_ready()
    # arrays beyond MAX_SEGMENTS: the plan is refused
    assert _march.plan(G * 1e4, np.full((M, N), 10.0), np.full((M, N), 10.0), 8) is None
    with pytest.raises(ValueError, match="March"):
        xbar.March.plan(G * 1e4, r_wl=10.0, r_bl=10.0)


def test_march_exact_limits_and_zero_segments():
    """No division by a resistance anywhere: zero-resistance families and scattered zero
    segments are exact; no wires at all gives v @ G to rounding."""
    rng = np.random.default_rng(6)
    M, N = 20, 17
    G = rng.uniform(0, 1e-3, (M, N))
    G[0, 0] = 0.0
    v = rng.normal(size=(4, M))
    sol = xbar.solve(G, v, r_wl=0.0, r_bl=0.0, solver=xbar.March.plan(G, r_wl=0.0, r_bl=0.0))
    bound = 2 * M * np.finfo(float).eps * (np.abs(v) @ G)
    assert np.all(np.abs(np.asarray(sol.i_out) - v @ G) <= bound)
    r_wl = rng.uniform(0.5, 20, (M, N)) * (rng.uniform(size=(M, N)) > 0.3)
    r_bl = rng.uniform(0.5, 20, (M, N)) * (rng.uniform(size=(M, N)) > 0.3)
    for rw, rb in ((2.0, 0.0), (0.0, 2.0), (r_wl, r_bl)):
        i_ref = xbar.solve(G, v, r_wl=rw, r_bl=rb, solver=xbar.CG(), tol=1e-13).i_out
        sol = xbar.solve(G, v, r_wl=rw, r_bl=rb, solver=xbar.March.plan(G, r_wl=rw, r_bl=rb))
        assert bool(sol.converged) and int(sol.cg_iterations) == 1
        np.testing.assert_allclose(sol.i_out, i_ref, rtol=1e-9, atol=1e-15)
        assert float(sol.residual) < 1e-12


def test_march_gradients_jit_vmap_float32():
    rng = np.random.default_rng(41)
    M, N = 7, 6
    G = rng.uniform(1e-5, 1e-3, (M, N))
    v = rng.uniform(-0.3, 0.5, (3, M))
    w = rng.normal(size=N)

    def out(G, v, r):  # unplanned: the segments come from MARCH_ROWS (shape alone)
        s = xbar.solve(G, v, r_wl=r, r_bl=15.0, r_src=2.0, solver=xbar.March())
        return jnp.sum(s.i_out @ w)

    _fd_check(out, (G, v, 25.0), rng)

    # Planned segments (the trusted path, driven straight by the line voltages, with a
    # custom JVP): reverse-mode gradients of outputs and node voltages in G, v_in, r_wl
    # and v_col, and forward mode, against finite differences.
    def planned(G, v, r, vc):
        s = xbar.solve(
            G,
            v,
            r_wl=r,
            r_bl=15.0,
            r_src=2.0,
            cell=xbar.cells.OneTOneR(50.0),
            v_col=vc,
            solver=xbar.March(segments=1, planned=True),
        )
        return jnp.sum(s.i_out @ w) + 1e-4 * jnp.sum(s.v_wl) + 1e-4 * jnp.sum(s.v_bl)

    vc = rng.uniform(0, 0.1, (3, N))
    _fd_check(planned, (G, v, 25.0, vc), rng)
    dG = rng.normal(size=G.shape) * G
    _, jv = jax.jvp(lambda g: planned(g, v, 25.0, vc), (G,), (dG,))
    fd = (planned(G + 1e-5 * dG, v, 25.0, vc) - planned(G - 1e-5 * dG, v, 25.0, vc)) / 2e-5
    np.testing.assert_allclose(float(jv), float(fd), rtol=1e-6)
    # eager, concrete G: the planned march for a batch of 16; gradient in v only
    v16 = rng.uniform(-0.3, 0.5, (16, M))
    plan = xbar.March.plan(G, r_wl=25.0, r_bl=15.0)
    gv = jax.grad(lambda v: jnp.sum(xbar.solve(G, v, r_wl=25.0, r_bl=15.0, solver=plan).i_out @ w))(
        v16
    )
    W = xbar.effective_matrix(G, r_wl=25.0, r_bl=15.0)  # d(i_out @ w)/dv = W w per row
    np.testing.assert_allclose(gv, np.broadcast_to(np.asarray(W) @ w, v16.shape), rtol=1e-9)
    # vmap over arrays under jit
    Gs = rng.uniform(1e-6, 1e-4, (3, 10, 7))
    vs = rng.uniform(0, 0.3, (4, 10))
    I = jax.jit(
        jax.vmap(lambda g: xbar.solve(g, vs, r_wl=5.0, r_bl=5.0, solver=xbar.March()).i_out)
    )(Gs)
    for k in range(3):
        np.testing.assert_allclose(I[k], scipy_nodal(Gs[k], vs, 5.0, 5.0)[0], rtol=1e-9)
    # float32: planned with the float32 growth limit, refined to the float32 tolerance
    M, N = 80, 48
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(0, 0.3, (16, M))
    ref = scipy_nodal(G, v, 2.0, 2.0)[0]
    s32 = xbar.solve(
        G.astype(np.float32),
        v.astype(np.float32),
        r_wl=2.0,
        r_bl=2.0,
        solver=xbar.March.plan(G.astype(np.float32), r_wl=2.0, r_bl=2.0),
    )
    assert s32.i_out.dtype == jnp.float32 and bool(s32.converged)
    np.testing.assert_allclose(s32.i_out, ref, rtol=1e-4, atol=1e-4 * np.max(ref))


def test_auto_select_and_march_plan():
    """Auto picks from the shapes alone; the march's plan is an explicit call."""
    G = np.full((32, 32), 1e-4)
    assert xbar.March.plan(G, r_wl=1.0, r_bl=1.0) == xbar.March(segments=1, planned=True)
    auto = xbar.Auto()
    assert auto.select(32, 32, 16, True, jnp.float64) == xbar.Direct()
    assert auto.select(32, 32, 15, True, jnp.float64) == xbar.CG(xbar.Jacobi())
    assert auto.select(32, 32, 64, False, jnp.float64) == xbar.CG()  # nonlinear
    assert auto.select(1024, 1024, 64, True, jnp.float64) == xbar.CG()  # factors too big
    with pytest.raises(ValueError, match="linear cells"):
        xbar.solve(G, np.ones(32), r_wl=1.0, r_bl=1.0, iv=sinh_cell, solver=xbar.March())
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda g: xbar.March.plan(g, r_wl=1.0, r_bl=1.0).segments)(G)
