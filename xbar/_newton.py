"""The nodal solve of ``xbar.solve``: linear-cell solve, Newton step, implicit derivatives.

The cell voltages ``u`` solve ``F(u) = u + A f(u) - v = 0`` (``A``: ``xbar._wires``,
``f``: the cell law, ``v = v_in_i - v_col_j``).  Linear cells: one linear solve
``(I + A G) u = v`` with a solver object of ``xbar.solvers``, refined until the
Kirchhoff residual ``max|F(u)|`` (evaluated with the exact wire operator) is within
``tol`` of ``max|v|``.  Nonlinear cells: Newton's method on ``F`` from ``u = v``, each
step a linear solve with the slope ``D = f'(u)``, iterates projected onto the box that
the maximum principle guarantees for the root.

Derivatives use implicit differentiation, never back-propagation through iterations:
the linear solve is a ``jax.lax.custom_linear_solve`` whose ``matvec`` carries the
dependence on ``G`` and the wires (the planned march: a custom JVP whose tangent solves
the same system through ``custom_linear_solve``); the nonlinear solve runs Newton without
gradients and then takes one last Newton step ``u* - J^{-1} F(u*)`` with ``J`` held
constant, whose derivative is exactly the implicit-function derivative ``-J^{-1} dF``.
Adjoint (reverse mode) solves use the transposed system ``(I + D A)``, through the
solver's ``transpose``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _march, _wires
from ._wires import Operator
from .solvers import MAX_REFINE, AbstractSolver, March

REFINE_ROUNDS = 4
"""Extra linear solves at most that refine a linear-cell answer on its Kirchhoff residual."""

REFINE_TOL = 1e-2
"""Relative tolerance of each refining solve (of the correction, not of the answer)."""


def linear_cell(G, v):
    return G * v


def rel_res(F, v):
    """``max|F| / max|v|`` per input field (scale 1 V when ``v = 0``); NaN counts as inf."""
    num = _wires.max_abs(F, axis=(-2, -1))
    scale = jnp.max(jnp.abs(v), axis=(-2, -1))
    return jnp.where(scale > 0, num / jnp.where(scale > 0, scale, 1), num)


def outputs(law, theta, R_wl, R_bl, u, v_in, v_col, assemble=None):
    """Cell currents, node voltages and their checks, from the cell voltages ``u``.

    Returns ``(c, v_wl, v_bl, res, i_out, lo, hi, law_bad, u_bad)``: cell currents, line
    voltages, the largest Kirchhoff mismatch ``max|u - (v_wl - v_bl)|`` per input
    (computed afresh with the exact wire operator from the returned ``u``, independent of
    any iteration), column currents, the lowest / highest node voltage per input, and
    whether the cell law gave a non-finite current at a finite ``u`` / whether ``u`` is
    non-finite.  With ``assemble``, ``u`` holds batch-leading parts with
    ``A S z = assemble(*u)`` (``xbar._march.solve_lines``) and the cell voltages are
    formed chunk by chunk, never stored.  On CPU a batch is processed a few inputs at a
    time, so that its passes run in cache (``xbar._wires.map_chunks``).
    """
    v_col = jnp.broadcast_to(v_col, v_in.shape[:-1] + v_col.shape[-1:])
    reduced = assemble is not None
    xs = tuple(u) if reduced else (u,)

    def fields(*args):
        x, (v_in, v_col) = args[:-2], args[-2:]
        u = v_in[..., :, None] - v_col[..., None, :] - assemble(*x) if reduced else x[0]
        c = law(theta, u)
        drop_wl, v_bl = _wires.drops(R_wl, R_bl, c)
        v_wl = v_in[..., :, None] - drop_wl
        v_bl = v_bl + v_col[..., None, :]
        F = u - (v_wl - v_bl)
        ax = (-2, -1)
        u_fin = jnp.isfinite(u)
        checks = (
            _wires.max_abs(F, axis=ax),
            jnp.sum(c, axis=-2),
            jnp.minimum(jnp.min(v_wl, axis=ax), jnp.min(v_bl, axis=ax)),
            jnp.maximum(jnp.max(v_wl, axis=ax), jnp.max(v_bl, axis=ax)),
            jnp.any(~jnp.isfinite(c) & u_fin, axis=ax),
            jnp.any(~u_fin, axis=ax),
        )
        out = (v_wl, v_bl) + checks
        return (c,) + out if reduced else out

    leaves = jax.tree_util.tree_leaves((theta, R_wl, R_bl))
    out = _wires.map_chunks(fields, xs + (v_in, v_col), all(jnp.ndim(a) <= 2 for a in leaves))
    # Given u, the cell currents are formed outside the chunks (one fused pass; as a
    # third stacked output of the chunk loop they would cost XLA a zero fill and a copy).
    return out if reduced else (law(theta, u),) + out


def _solve_J(solver: AbstractSolver, state, S, R_wl, R_bl, rhs):
    """``(I + A D) x = rhs`` (``D = S^2``): ``x = rhs - A S z``, ``K z = S rhs``; no
    division by ``S`` (cells may have ``G = 0``).  Returns ``(x, steps, ok, broke)``."""
    z, ASz, k, ok, broke = solver.compute(state, S * rhs)
    if ASz is None:
        ASz = _wires.apply_A(R_wl, R_bl, S * z)
    return rhs - ASz, k, ok, broke


def _solve_JT(solver: AbstractSolver, state, S, R_wl, R_bl, rhs):
    """The transposed system ``(I + D A) y = rhs``: ``y = rhs - S w``,
    ``K w = S A rhs``."""
    w, _, k, ok, broke = solver.compute(
        solver.transpose(state), S * _wires.apply_A(R_wl, R_bl, rhs)
    )
    return rhs - S * w, k, ok, broke


def _callbacks(solver, S, R_wl, R_bl, tol, max_iter, refine_on=None, margin=None):
    """``solve`` / ``transpose_solve`` for ``lax.custom_linear_solve``; with
    ``refine_on = D`` the forward solve is refined on the residual of ``(I + A D)``.
    With ``margin`` (default: when refining) the first solve aims at
    ``solver.margin * tol``."""
    margin = refine_on is not None if margin is None else margin
    first_tol = solver.margin * tol if margin else tol
    state = solver.init(Operator(S, R_wl, R_bl), first_tol, max_iter)
    # a correction only has to remove the part of the residual above tol: a loose
    # relative tolerance suffices (each round gains ~1/REFINE_TOL)
    state_c = solver.init(Operator(S, R_wl, R_bl), max(tol, REFINE_TOL), max_iter)

    def solve(_, b):
        x, k, ok, broke = _solve_J(solver, state, S, R_wl, R_bl, b)
        if refine_on is None:
            return x, (k, jnp.all(ok), broke)

        def resid(x):
            return x + _wires.apply_A(R_wl, R_bl, refine_on * x) - b

        def cond(s):
            _, F, n, _, broke = s
            return (n < REFINE_ROUNDS) & jnp.any(rel_res(F, b) > tol) & ~broke

        def body(s):
            x, F, n, k, broke = s
            dx, kk, _, br = _solve_J(solver, state_c, S, R_wl, R_bl, -F)
            x = x + dx
            return x, resid(x), n + 1, k + kk, broke | br

        x, _, _, k, broke = lax.while_loop(cond, body, (x, resid(x), 0, k, broke))
        return x, (k, jnp.all(ok), broke)

    def tsolve(_, b):
        y, k, ok, broke = _solve_JT(solver, state, S, R_wl, R_bl, b)
        return y, (k, jnp.all(ok), broke)

    return solve, tsolve


def linear_solve(G, R_wl, R_bl, v, tol, max_iter, solver, refine=True):
    """Cell voltages ``u`` with ``(I + A G) u = v``; differentiable in all inputs.
    Returns ``(u, steps, breakdown)``. ``refine=False``: no refinement on the Kirchhoff
    residual here; the caller refines with :func:`refine_answer` (``xbar.solve`` does,
    from the residual that its output checks compute anyway)."""
    Gs = lax.stop_gradient(G)
    R_s = lax.stop_gradient(R_wl), lax.stop_gradient(R_bl)
    solve, tsolve = _callbacks(
        solver, jnp.sqrt(Gs), *R_s, tol, max_iter, refine_on=Gs if refine else None, margin=True
    )

    def matvec(x):
        return x + _wires.apply_A(R_wl, R_bl, G * x)

    u, (k, _, broke) = lax.custom_linear_solve(matvec, v, solve, tsolve, has_aux=True)
    return u, k, broke


def refine_answer(solver, G, R_wl, R_bl, v, u, rel, tol, max_iter):
    """Refinement of linear-cell voltages ``u`` on their Kirchhoff residual
    ``F = u + A G u - v``: while some input's relative residual ``rel`` (per input, as
    :func:`rel_res`; given, from the output checks) exceeds ``tol``, at most
    ``REFINE_ROUNDS`` rounds ``u <- u + J^{-1} (-F)``. Returns ``(u, rounds, steps,
    breakdown)``. The corrections carry no derivative: ``u`` already has the implicit one
    (of the exact solution), and the loop runs on values only."""
    Gs, Rw, Rb, b = lax.stop_gradient((G, R_wl, R_bl, v))
    S = jnp.sqrt(Gs)
    state_c = solver.init(Operator(S, Rw, Rb), max(tol, REFINE_TOL), max_iter)

    def resid(x):
        return x + _wires.apply_A(Rw, Rb, Gs * x) - b

    def cond(s):
        _, rel, n, _, broke = s
        return (n < REFINE_ROUNDS) & jnp.any(~(rel <= tol)) & ~broke

    def body(s):
        x, _, n, k, broke = s
        dx, kk, _, br = _solve_J(solver, state_c, S, Rw, Rb, -resid(x))
        x = x + dx
        return x, rel_res(resid(x), b), n + 1, k + kk, broke | br

    x0 = lax.stop_gradient(u)
    zero = jnp.array(0, jnp.int32)
    init = (x0, lax.stop_gradient(rel), zero, zero, jnp.array(False))
    x, _, n, k, broke = lax.while_loop(cond, body, init)
    return u + (x - x0), n, k, broke


def lines_solve(G, R_wl, R_bl, v_in, v_col, tol, max_iter, solver: March):
    """The whole linear-cell solve by the planned march, driven straight by the line
    voltages (``xbar._march.solve_lines``: the ``(B, M, N)`` drive field is never stored,
    nor the cell voltages: each batch chunk of :func:`outputs` forms them from the
    marched reductions ``A S z``).  Returns ``(outputs, steps, breakdown)``.

    Differentiable in all inputs by a custom JVP: the tangent of the cell voltages ``u``
    solves the same system, ``(I + A G) du = -dF`` with ``F = u + A G u - v`` (implicit
    function theorem), through ``lax.custom_linear_solve``, which reverse mode transposes
    (adjoint solve); the outputs follow from ``(u, du)`` by forward mode.
    """
    batch, (M, N) = v_in.shape[:-1], G.shape
    v_in = v_in.reshape(-1, M)
    v_col = jnp.broadcast_to(v_col, batch + (N,)).reshape(-1, N)
    K = solver.num_segments(M, N)

    def drive(v_in, v_col):
        return v_in[..., :, None] - v_col[..., None, :]

    def reduction(G, R_wl, R_bl, v_in, v_col):
        return _march.solve_lines(
            jnp.sqrt(G), R_wl, R_bl, v_in, v_col, tol, min(max_iter, MAX_REFINE), K
        )

    @jax.custom_jvp
    def run(G, R_wl, R_bl, v_in, v_col):
        parts, assemble, k, _ = reduction(G, R_wl, R_bl, v_in, v_col)
        out = outputs(linear_cell, G, R_wl, R_bl, parts, v_in, v_col, assemble)
        return out, k

    @run.defjvp
    def _(primals, tangents):
        G, R_wl, R_bl, v_in, v_col = primals
        parts, assemble, k, _ = reduction(*primals)
        u = drive(v_in, v_col) - assemble(*parts)

        def F(G, R_wl, R_bl, v_in, v_col):
            return u + _wires.apply_A(R_wl, R_bl, G * u) - drive(v_in, v_col)

        _, dF = jax.jvp(F, primals, tangents)
        solve, tsolve = _callbacks(solver, jnp.sqrt(G), R_wl, R_bl, tol, max_iter)

        def matvec(x):
            return x + _wires.apply_A(R_wl, R_bl, G * x)

        du, _ = lax.custom_linear_solve(matvec, -dF, solve, tsolve, has_aux=True)
        dG, dRw, dRb, dvi, dvc = tangents
        out, d_out = jax.jvp(
            lambda G, Rw, Rb, u, vi, vc: outputs(linear_cell, G, Rw, Rb, u, vi, vc),
            (G, R_wl, R_bl, u, v_in, v_col),
            (dG, dRw, dRb, du, dvi, dvc),
        )
        d_out = tuple(
            np.zeros(jnp.shape(o), jax.dtypes.float0)
            if not jnp.issubdtype(o.dtype, jnp.inexact)
            else d
            for o, d in zip(out, d_out, strict=True)
        )
        return (out, k), (d_out, np.zeros(jnp.shape(k), jax.dtypes.float0))

    out, k = run(G, R_wl, R_bl, v_in, v_col)
    out = tuple(x.reshape(batch + x.shape[1:]) for x in out)
    return out, k, jnp.array(False)


def newton_solve(law, theta, R_wl, R_bl, v, tol, max_iter, max_newton, solver):
    """Cell voltages for a nonlinear cell law ``law(theta, u)`` (Newton + implicit diff).

    Returns ``(u, newton_steps, linear_steps, law_bad, breakdown, S)``: ``law_bad`` is
    set when the law gave a non-finite current at a finite iterate; ``S`` is the square
    root of the slope at the returned point (for the conditioning bound).
    """
    theta_s, Rw, Rb, vs = jax.tree_util.tree_map(lax.stop_gradient, (theta, R_wl, R_bl, v))

    def F(u, theta, Rw, Rb, v):
        return u + _wires.apply_A(Rw, Rb, law(theta, u)) - v

    def slope_root(u):
        d = jax.jvp(lambda u: law(theta_s, u), (u,), (jnp.ones_like(u),))[1]
        # A passive cell law is nondecreasing; a negative numerical slope would break the
        # SPD structure, and dropping it only slows Newton (the residual test still decides).
        return jnp.sqrt(jnp.maximum(d, 0))

    # Maximum principle: every node of a passive network lies between the lowest and the
    # highest source voltage (rows, column holds), so every cell voltage lies in
    # [-span, span], and span <= max(max v, 0) - min(min v, 0) for v = v_in - v_col.
    # Newton iterates are projected onto that box, which holds the root: a step that a
    # steep law (exponential, strong sinh) would throw far outside cannot overflow it.
    span = jnp.maximum(jnp.max(vs, axis=(-2, -1), keepdims=True), 0) - jnp.minimum(
        jnp.min(vs, axis=(-2, -1), keepdims=True), 0
    )

    def step_J(S, rhs):
        state = solver.init(Operator(S, Rw, Rb), tol, max_iter)
        return _solve_J(solver, state, S, Rw, Rb, rhs)

    def cond(s):
        _, Fu, k, _, broke = s
        rel = rel_res(Fu, vs)
        return (k < max_newton) & jnp.any(rel > tol) & jnp.all(jnp.isfinite(rel)) & ~broke

    def body(s):
        u, Fu, k, kcg, broke = s
        du, kk, _, br = step_J(slope_root(u), -Fu)
        u = jnp.clip(u + du, -span, span)
        return u, F(u, theta_s, Rw, Rb, vs), k + 1, kcg + kk, broke | br

    u0 = vs
    state = (u0, F(u0, theta_s, Rw, Rb, vs), jnp.array(0), jnp.array(0), jnp.array(False))
    u, Fu, k, kcg, broke = lax.while_loop(cond, body, state)
    law_bad = jnp.any(~jnp.isfinite(Fu) & jnp.isfinite(u))

    # Final Newton step with a constant Jacobian: value ~ u (one more refinement), and
    # derivative -J^{-1} dF = the implicit-function derivative of the root.
    u = lax.stop_gradient(u)
    S = slope_root(u)
    solve, tsolve = _callbacks(solver, S, Rw, Rb, tol, max_iter)

    def matvec(x):
        return x + _wires.apply_A(Rw, Rb, S * S * x)

    rhs = -F(u, theta, R_wl, R_bl, v)
    du, (k_last, _, br) = lax.custom_linear_solve(matvec, rhs, solve, tsolve, has_aux=True)
    return u + du, k + 1, kcg + k_last, law_bad, broke | br, S
