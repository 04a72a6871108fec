"""Circuit solve of a passive memristive crossbar: IR drop, sneak paths, nonlinear cells.

Circuit (the convention of ``DESIGN.md``): ``M`` word lines (rows) x ``N`` bit lines
(columns).  Cell ``(i, j)`` joins word-line node ``(i, j)`` to bit-line node ``(i, j)``.
Row ``i`` is driven at its column-0 end by ``v_in[i]`` through ``r_src``, then one
word-line segment ``r_wl`` before cell ``(i, 0)`` and one between neighbouring cells; the
far end is open.  Column ``j`` is sensed at its row-``(M-1)`` end by an amplifier that
holds 0 V behind ``r_sense``; one bit-line segment ``r_bl`` lies between neighbouring
cells and one below cell ``(M-1, j)``; the top end is open.  ``i_out[j]`` is the current
into sense node ``j`` (A), positive from the cells into the amplifier.

Method (exact nodal analysis, written in cell currents).  Because every line is a chain
driven from one end with the other end open, the current in each wire segment is a
partial sum of cell currents ``c`` and the node voltages follow from resistances alone:

    v_wl[i, k] = v_in[i] - sum_{l<=k} R_wl[i, l] * sum_{m>=l} c[i, m]
    v_bl[i, j] =           sum_{l>=i} R_bl[l, j] * sum_{m<=l} c[m, j]

(``R_wl[:, 0]`` includes ``r_src``, ``R_bl[M-1, :]`` includes ``r_sense``).  Writing this
``v_wl - v_bl = v_in - A c`` with ``A`` symmetric positive semidefinite, the cell voltages
``u`` solve

    F(u) = u + A f(u) - v_in = 0,          f(u) = cell current law (G * u if linear).

This is exactly Kirchhoff's laws of the full 2MN-node network (every sneak path
included), with no conductance ``1/r`` anywhere, so zero-resistance wires are exact:
``A = 0`` gives ``u = v_in`` and ``i_out = v_in @ G``.  Each linear(ised) system
``(I + A D) x = b`` (``D = f'(u) >= 0``) is symmetrised with ``S = sqrt(D)``,
``z = S x``: ``(I + S A S) z = S b``, ``x = b - A S z``; that operator is SPD with
eigenvalues in ``[1, 1 + max(D) ||A||]``, ``||A|| ~ 4 r N^2 / pi^2`` per line, i.e. its
condition number is ``1 + O((N sqrt(r G))^2)``, the IR-drop parameter of the array.  It is
solved by Jacobi-preconditioned conjugate gradients (``A`` costs four prefix sums, O(MN)),
or, with ``preconditioner="line"``, by CG preconditioned with the exact inverses of the
word-line and bit-line families (each ``A_line = L R L^T`` has a tridiagonal inverse, so
by Woodbury ``(I + S A_line S)^{-1} = I - S (A_line^{-1} + S^2)^{-1} S`` is one batched
Thomas solve per line), combined as ``P_w^{-1} (K_w + P_b^{-1}) P_w^{-1}``: 2.5-3x fewer
iterations, each 3-5x dearer on a CPU (see ``benchmarks/RESULTS.md``), or, with
``preconditioner="direct"``, without CG: Woodbury's identity on one line family turns
``K`` into a block-tridiagonal system (blocks along the shorter side of the array),
factorised once by block elimination and applied to a whole batch as dense block
products, with iterative refinement against the exact operator (``xbar._direct``;
``"auto"`` uses it for :func:`effective_matrix`, where a single elimination sweep carries
all unit inputs to the sense row), or, with ``preconditioner="march"``, by marching
(``xbar._march``): the bit-line potentials and currents are carried row by row from the
open end of the bit lines towards the sense row, each row's word line solved exactly by
two first-order recurrences in resistance form, and the unknown potentials at the open
end follow from the ground condition at the sense end through a ``min(M,N)``-square
shooting matrix.  Marching amplifies rounding like ``exp(sum sqrt(r_bl G))``; the march
is cut into segments of bounded amplification joined by a Riccati (admittance) sweep
(multiple shooting), and the exact residual follows from the states at the segment ends.
``O(M N min(M,N))`` once, then ``O(M N)`` per input with no dense block products: the
default ``"auto"`` uses it for linear cells with 16 or more inputs.  With planned
segments the march reads each row's drive straight from ``v_in`` and ``v_col`` and
writes its result in the final layout, so a batch is never transposed or stored as a
drive field; a batch of 256 inputs on 256x256 costs about 10 passes over its fields.
Nonlinear cells use Newton's method on ``F`` from ``u = v_in`` (for convex cell laws such
as ``sinh`` the iterates approach the root from above).  Iterates are projected onto the
box that the maximum principle of passive networks guarantees for the root (every node
between the lowest and the highest source voltage), so one wild step of a steep law
cannot overflow it; a law that still produces NaN or inf is reported as not converged.

Convergence: CG (and the refinement of the direct and marching solvers) stops when
``||r||_2 <= tol ||b||_2`` (per input vector), Newton when
``max|F(u)| <= tol * max|v_in|`` (per input vector); ``tol`` defaults to ``1e-10``
(float64) / ``1e-5`` (float32).  ``Solution.converged`` reports it; with ``throw=True``
(default) a failure raises at run time through ``eqx.error_if`` (also under ``jit``).
The CG test is on the symmetrised system, so the reported ``Solution.residual`` (the
largest Kirchhoff mismatch of the returned node voltages, relative to ``max|v_in|``) can
exceed ``tol`` by the conditioning: e.g. 4e-8 for Jacobi CG on 256x256 cells up to 1e-3 S
with 10 ohm wires (far cells at 0.2 % of their drive), where ``i_out`` still agrees with
the direct solver within 7e-9 relative.  The direct solver's residual stays ~1e-10.

On CPU, the wire operator ``A`` runs over a batch of inputs a few fields at a time
(``_nodal._CHUNK_ELEMS`` elements), which keeps its prefix sums in cache (2x faster at
256 inputs on 256x256).

Derivatives use implicit differentiation, never back-propagation through iterations:
the linear-cell solve is a ``jax.lax.custom_linear_solve`` whose ``matvec`` carries the
dependence on ``G`` and the wires (the planned march: a custom JVP whose tangent solves
the same system through ``custom_linear_solve``); the nonlinear solve runs Newton
without gradients and then takes one last Newton step ``u* - J^{-1} F(u*)`` with ``J``
held constant, whose derivative is exactly the implicit-function derivative
``-J^{-1} dF``.  Adjoint (reverse mode) solves use the transposed system ``(I + D A)``,
solved the same way.

Source: standard modified nodal analysis of resistive crossbars (e.g. Chen, "Design of
resistive synaptic array for implementing on-chip sparse learning", 2016; the
line-ladder scaling of ``device-physics.md`` 5.6).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from . import _direct, _march, _nodal

__all__ = ["Solution", "effective_matrix", "solve"]

CellLaw = Callable[[Array, Array], Array]


class Solution(eqx.Module):
    """Operating point of a crossbar.

    Attributes (``...`` = batch axes of ``v_in``):
        i_out: current into each sense amplifier, ``(..., N)`` [A], positive into it.
        v_wl: word-line node voltages ``(..., M, N)`` [V].
        v_bl: bit-line node voltages ``(..., M, N)`` [V].
        i_cell: current through each cell (stack) from word line to bit line,
            ``(..., M, N)`` [A].
        iterations: Newton iterations (1 for linear cells).
        cg_iterations: conjugate-gradient iterations summed over all linear solves.
        residual: largest KCL/KVL residual ``max|F(u)| / max|v_in - v_col|`` [V/V].
        converged: whether the requested tolerance was met.
    """

    i_out: Float[Array, "*batch N"]
    v_wl: Float[Array, "*batch M N"]
    v_bl: Float[Array, "*batch M N"]
    i_cell: Float[Array, "*batch M N"]
    iterations: Int[Array, ""]
    cg_iterations: Int[Array, ""]
    residual: Float[Array, ""]
    converged: Bool[Array, ""]


# ---------------------------------------------------------------------------------------
# Cell laws
# ---------------------------------------------------------------------------------------


def _linear_cell(G, v):
    return G * v


def _series_law(cell: CellLaw, selector: Callable | None) -> Callable:
    """Current of the stack cell + series resistor ``r`` (+ selector) at stack voltage ``u``.

    The internal cell voltage ``x`` solves ``h(x) = 0`` with
    ``h = x + r f(x) - u`` (no selector) or ``h = f(x) - s(u - x - r f(x))`` (selector law
    ``s``).  ``h`` increases with ``x`` for passive monotone laws through the origin, and
    the root lies between 0 and ``u``; it is found by Newton's method safeguarded by
    bisection (elementwise).  The derivative is supplied by the implicit function theorem:
    the solve runs without gradients and one final Newton step ``x* - h(x*)/h'(x*)`` with
    ``h'`` held constant carries ``dx = -(dh) / h'``.
    """

    def h(x, G, r, u):
        fx = cell(G, x)
        if selector is None:
            return x + r * fx - u
        return fx - selector(u - x - r * fx)

    def h_and_slope(x, G, r, u):
        return jax.jvp(lambda x: h(x, G, r, u), (x,), (jnp.ones_like(x),))

    def law(theta, u):
        G, r = theta
        G, r, u = jnp.broadcast_arrays(G, r, u)
        Gs, rs, us = (lax.stop_gradient(a) for a in (G, r, u))
        lo, hi = jnp.minimum(us, 0), jnp.maximum(us, 0)
        eps = 8 * jnp.finfo(us.dtype).eps * jnp.maximum(jnp.abs(us), jnp.finfo(us.dtype).tiny)

        def cond(s):
            _, _, _, dx, k = s
            return (k < 200) & jnp.any(jnp.abs(dx) > eps)

        def body(s):
            x, lo, hi, _, k = s
            hv, hp = h_and_slope(x, Gs, rs, us)
            lo = jnp.where(hv < 0, x, lo)
            hi = jnp.where(hv > 0, x, hi)
            xn = x - hv / jnp.where(hp > 0, hp, 1)
            ok = (hp > 0) & (xn > lo) & (xn < hi)
            xn = jnp.where(hv == 0, x, jnp.where(ok, xn, 0.5 * (lo + hi)))
            # bisection fallback: stop once the bracket is below rounding
            dx = jnp.where(ok | (hv == 0), xn - x, hi - lo)
            return xn, lo, hi, dx, k + 1

        x0 = 0.5 * (lo + hi)
        x, *_ = lax.while_loop(cond, body, (x0, lo, hi, hi - lo, jnp.array(0)))
        x = lax.stop_gradient(x)
        hv, hp = h_and_slope(x, G, r, u)
        hp = lax.stop_gradient(hp)
        x = x - jnp.where(hp > 0, hv / jnp.where(hp > 0, hp, 1), 0)
        return cell(G, x)

    return law


# ---------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------


def _outputs(law, theta, R_wl, R_bl, u, v_in, v_col, assemble=None):
    """``(c, v_wl, v_bl, max|F|, i_out)``: cell currents, line voltages, the largest
    KCL/KVL residual ``F = u + A law(u) - v`` per input (computed with the exact wire
    operator) and column currents, from the cell voltages ``u`` or, with ``assemble``,
    from ``A S z = v - u = assemble(*u)`` (``u``: batch-leading parts, see
    ``xbar._march.solve_lines``; the cell voltages are then formed chunk by chunk, never
    stored).  On CPU a batch is processed a few inputs at a time, so that its passes run
    in cache (``_nodal.map_chunks``)."""
    v_col = jnp.broadcast_to(v_col, v_in.shape[:-1] + v_col.shape[-1:])
    reduced = assemble is not None
    xs = tuple(u) if reduced else (u,)

    def fields(*args):
        x, (v_in, v_col) = args[:-2], args[-2:]
        u = v_in[..., :, None] - v_col[..., None, :] - assemble(*x) if reduced else x[0]
        c = law(theta, u)
        drop_wl, v_bl = _nodal._wire_drops(R_wl, R_bl, c)
        v_wl = v_in[..., :, None] - drop_wl
        v_bl = v_bl + v_col[..., None, :]
        F = u - (v_wl - v_bl)
        out = v_wl, v_bl, _nodal.max_abs(F, axis=(-2, -1)), jnp.sum(c, axis=-2)
        return (c,) + out if reduced else out

    leaves = jax.tree_util.tree_leaves((theta, R_wl, R_bl))
    out = _nodal.map_chunks(fields, xs + (v_in, v_col), all(jnp.ndim(a) <= 2 for a in leaves))
    # Given u, the cell currents are formed outside the chunks (one fused pass; as a
    # third stacked output of the chunk loop they would cost XLA a zero fill and a copy).
    return out if reduced else (law(theta, u),) + out


def _rel_res(F, v):
    """max|F| / max|v_in| per input vector (scale 1 V when v_in = 0)."""
    num = _nodal.max_abs(F, axis=(-2, -1))  # NaN -> inf: never "converged"
    scale = jnp.max(jnp.abs(v), axis=(-2, -1))  # finite (validated)
    return jnp.where(scale > 0, num / jnp.where(scale > 0, scale, 1), num)


def _solvers(S, R_wl, R_bl, tol, max_iter, pc):
    """``solve`` / ``transpose_solve`` callbacks for ``lax.custom_linear_solve``."""

    def solve(_, b):
        x, k, ok = _nodal.solve_J(S, R_wl, R_bl, b, tol, max_iter, pc)
        return x, (k, jnp.all(ok))

    def tsolve(_, b):
        x, k, ok = _nodal.solve_JT(S, R_wl, R_bl, b, tol, max_iter, pc)
        return x, (k, jnp.all(ok))

    return solve, tsolve


def _linear_solve(G, R_wl, R_bl, v, tol, max_iter, pc):
    """Cell voltages ``u`` with ``(I + A G) u = v``; differentiable in all inputs."""
    S = jnp.sqrt(lax.stop_gradient(G))
    R_s = lax.stop_gradient(R_wl), lax.stop_gradient(R_bl)
    solve, tsolve = _solvers(S, *R_s, tol, max_iter, pc)

    def matvec(x):
        return x + _nodal.apply_A(R_wl, R_bl, G * x)

    u, (k, ok) = lax.custom_linear_solve(matvec, v, solve, tsolve, has_aux=True)
    return u, jnp.array(1), k, ok


def _lines_solve(G, R_wl, R_bl, v_in, v_col, tol, max_iter, pc):
    """The whole linear-cell solve by the marching solver, driven straight by the line
    voltages (``xbar._march.solve_lines``: the ``(B, M, N)`` drive field is never stored,
    nor the cell voltages: each batch chunk of :func:`_outputs` forms them from the
    marched reductions ``A S z``).  Returns ``(outputs, k, ok)`` (see :func:`_outputs`).

    Differentiable in all inputs by a custom JVP: the tangent of the cell voltages ``u``
    solves the same system, ``(I + A G) du = -dF`` with ``F = u + A G u - v`` (implicit
    function theorem), through ``lax.custom_linear_solve``, which reverse mode transposes
    (adjoint solve); the outputs follow from ``(u, du)`` by forward mode.
    """
    batch, (M, N) = v_in.shape[:-1], G.shape
    v_in = v_in.reshape(-1, M)
    v_col = jnp.broadcast_to(v_col, batch + (N,)).reshape(-1, N)

    def drive(v_in, v_col):
        return v_in[..., :, None] - v_col[..., None, :]

    def reduction(G, R_wl, R_bl, v_in, v_col):
        return _march.solve_lines(jnp.sqrt(G), R_wl, R_bl, v_in, v_col, tol,
                                  min(max_iter, _nodal.MAX_REFINE), pc[1])

    @jax.custom_jvp
    def run(G, R_wl, R_bl, v_in, v_col):
        parts, assemble, k, ok = reduction(G, R_wl, R_bl, v_in, v_col)
        out = _outputs(_linear_cell, G, R_wl, R_bl, parts, v_in, v_col, assemble)
        return out, k, jnp.all(ok)

    @run.defjvp
    def _(primals, tangents):
        G, R_wl, R_bl, v_in, v_col = primals
        parts, assemble, k, ok = reduction(*primals)
        u = drive(v_in, v_col) - assemble(*parts)

        def F(G, R_wl, R_bl, v_in, v_col):
            return u + _nodal.apply_A(R_wl, R_bl, G * u) - drive(v_in, v_col)

        _, dF = jax.jvp(F, primals, tangents)
        solve, tsolve = _solvers(jnp.sqrt(G), R_wl, R_bl, tol, max_iter, pc)

        def matvec(x):
            return x + _nodal.apply_A(R_wl, R_bl, G * x)

        du, _ = lax.custom_linear_solve(matvec, -dF, solve, tsolve, has_aux=True)
        dG, dRw, dRb, dvi, dvc = tangents
        out, d_out = jax.jvp(
            lambda G, Rw, Rb, u, vi, vc: _outputs(_linear_cell, G, Rw, Rb, u, vi, vc),
            (G, R_wl, R_bl, u, v_in, v_col), (dG, dRw, dRb, du, dvi, dvc),
        )
        ok = jnp.all(ok)
        none = tuple(np.zeros(jnp.shape(x), jax.dtypes.float0) for x in (k, ok))
        return (out, k, ok), (d_out, *none)

    out, k, ok = run(G, R_wl, R_bl, v_in, v_col)
    out = tuple(x.reshape(batch + x.shape[1:]) for x in out)
    return out, k, ok


def _newton_solve(law, theta, R_wl, R_bl, v, tol, max_iter, max_newton, pc):
    """Cell voltages for a nonlinear cell law ``law(theta, u)`` (Newton + implicit diff)."""
    theta_s, Rw, Rb, vs = jax.tree_util.tree_map(lax.stop_gradient, (theta, R_wl, R_bl, v))

    def F(u, theta, Rw, Rb, v):
        return u + _nodal.apply_A(Rw, Rb, law(theta, u)) - v

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
    span = (jnp.maximum(jnp.max(vs, axis=(-2, -1), keepdims=True), 0)
            - jnp.minimum(jnp.min(vs, axis=(-2, -1), keepdims=True), 0))

    def cond(s):
        _, Fu, k, _ = s
        rel = _rel_res(Fu, vs)
        return (k < max_newton) & jnp.any(rel > tol) & jnp.all(jnp.isfinite(rel))

    def body(s):
        u, Fu, k, kcg = s
        du, kk, _ = _nodal.solve_J(slope_root(u), Rw, Rb, -Fu, tol, max_iter, pc)
        u = jnp.clip(u + du, -span, span)
        return u, F(u, theta_s, Rw, Rb, vs), k + 1, kcg + kk

    u0 = vs
    state = (u0, F(u0, theta_s, Rw, Rb, vs), jnp.array(0), jnp.array(0))
    u, Fu, k, kcg = lax.while_loop(cond, body, state)
    ok = jnp.all(_rel_res(Fu, vs) <= tol)

    # Final Newton step with a constant Jacobian: value ~ u (one more refinement), and
    # derivative -J^{-1} dF = the implicit-function derivative of the root.
    u = lax.stop_gradient(u)
    S = slope_root(u)
    solve, tsolve = _solvers(S, Rw, Rb, tol, max_iter, pc)

    def matvec(x):
        return x + _nodal.apply_A(Rw, Rb, S * S * x)

    rhs = -F(u, theta, R_wl, R_bl, v)
    du, (k_last, _) = lax.custom_linear_solve(matvec, rhs, solve, tsolve, has_aux=True)
    return u + du, k + 1, kcg + k_last, ok


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def _prepare(G, r_wl, r_bl, r_src, r_sense, r_cell_series, dtype_of=()):
    """Validate inputs and fold ``r_src``/``r_sense`` into the end segments."""
    if np.ndim(G) != 2 or 0 in np.shape(G):
        raise ValueError(f"G must be a non-empty (M, N) array of conductances [S]; got shape {np.shape(G)}")
    M, N = np.shape(G)
    G = _nodal.check_array("G (cell conductance, S)", G, ((M, N),))
    seg = " (scalar or per-segment (M, N) array, ohm)"
    r_wl = _nodal.check_array("r_wl", r_wl, ((), (M, N)), what=seg)
    r_bl = _nodal.check_array("r_bl", r_bl, ((), (M, N)), what=seg)
    r_src = _nodal.check_array("r_src", r_src, ((), (M,)), what=" (scalar or per-row, ohm)")
    r_sense = _nodal.check_array("r_sense", r_sense, ((), (N,)), what=" (scalar or per-column, ohm)")
    r_cs = _nodal.check_array(
        "r_cell_series", r_cell_series, ((), (M, N)), what=" (scalar or per-cell, ohm)"
    )
    dtype = jnp.promote_types(jnp.result_type(G, *dtype_of), jnp.float32)
    G = G.astype(dtype)
    R_wl = jnp.broadcast_to(r_wl.astype(dtype), (M, N))
    R_bl = jnp.broadcast_to(r_bl.astype(dtype), (M, N))
    R_wl = R_wl.at[:, 0].add(jnp.broadcast_to(r_src.astype(dtype), (M,)))
    R_bl = R_bl.at[M - 1, :].add(jnp.broadcast_to(r_sense.astype(dtype), (N,)))
    return G, R_wl, R_bl, r_cs.astype(dtype), dtype


def _default_tol(dtype, tol, max_iter):
    if tol is None:
        tol = 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-5
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol}")
    if max_iter is None:
        max_iter = 10_000
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    return float(tol), int(max_iter)


_METHODS = ("auto", "jacobi", "line", "direct", "march")
DIRECT_MAX_BYTES = 2 * 1024**3
"""Largest factorisation (bytes) that ``preconditioner="auto"`` lets the direct solver hold."""

MARCH_TRACED_ROWS = 32
"""Blocks per marching segment when ``preconditioner="march"`` is asked for with traced
conductances or wires (the growth bound of ``xbar._march.plan`` needs concrete values)."""


def _choose_preconditioner(
    preconditioner: str, M: int, N: int, n_rhs: int = 1, linear: bool = True, dtype=jnp.float64,
    arrays=None,
):
    """Validate the ``preconditioner`` option and resolve ``"auto"`` (see :func:`solve`).

    ``arrays = (G, R_wl, R_bl)`` (folded wires) lets ``"march"`` size its segments.
    ``"auto"`` picks, for linear cells with enough right-hand sides to pay for a
    factorisation (``n_rhs >= 16``), the marching solver when the conductances and wires
    are concrete and it needs at most ``xbar._march.MAX_SEGMENTS`` segments; else, with
    ``n_rhs >= max(8, min(M, N) / 2)`` (measured break-even 50-150 inputs at 256x256 with
    1 ohm wires on a 2-core CPU, ``benchmarks/RESULTS.md``), the block-tridiagonal direct
    solver if its factors fit in ``DIRECT_MAX_BYTES``; otherwise Jacobi-preconditioned CG.
    Returns a method name, or ``("march", K, planned)`` with the number of segments.
    """
    if _nodal.is_march(preconditioner):
        return preconditioner
    if preconditioner not in _METHODS:
        raise ValueError(f"preconditioner must be one of {_METHODS}; got {preconditioner!r}")
    itemsize = jnp.dtype(dtype).itemsize
    concrete = arrays is not None and all(_nodal.is_concrete(a) for a in arrays)
    # The plan reads G and the wires on the host: only where the march may be chosen.
    wants = preconditioner == "march" or (preconditioner == "auto" and linear and n_rhs >= 16)
    K = _march.plan(*arrays, itemsize) if concrete and wants else None
    if preconditioner == "march":
        if not linear:
            raise ValueError(
                "preconditioner='march' needs linear cells (iv=None, selector=None); use "
                "'jacobi', 'line' or 'direct' for nonlinear cells"
            )
        if concrete and K is None:
            raise ValueError(
                "preconditioner='march': the IR-drop parameter of this array is too large "
                f"for at most {_march.MAX_SEGMENTS} marching segments; use 'direct' or "
                "'jacobi'"
            )
        if concrete:
            return ("march", K, True)
        return ("march", -(-max(M, N) // MARCH_TRACED_ROWS), False)
    if preconditioner != "auto":
        return preconditioner
    if linear and n_rhs >= 16 and K is not None:
        return ("march", K, True)
    fits = _direct.factor_bytes(M, N, itemsize) <= DIRECT_MAX_BYTES
    if linear and fits and n_rhs >= max(8, min(M, N) / 2):
        return "direct"
    return "jacobi"


def solve(
    G: Float[ArrayLike, "M N"],
    v_in: Float[ArrayLike, "*batch M"],
    *,
    r_wl: float | Float[ArrayLike, "M N"],
    r_bl: float | Float[ArrayLike, "M N"],
    r_src: float | Float[ArrayLike, " M"] = 0.0,
    r_sense: float | Float[ArrayLike, " N"] = 0.0,
    iv: CellLaw | None = None,
    r_cell_series: float | Float[ArrayLike, "M N"] = 0.0,
    selector: Callable[[Array], Array] | None = None,
    v_col: float | Float[ArrayLike, "*batch N"] = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    max_newton: int = 50,
    throw: bool = True,
    preconditioner: str = "auto",
) -> Solution:
    """Solve the full nodal equations of a passive crossbar read.

    Arguments:
        G: cell conductances ``(M, N)`` [S], finite and ``>= 0``.  For a nonlinear law it
            is passed through to ``iv`` (it need not be a conductance then).
        v_in: row drive voltages ``(M,)`` or batched ``(B, M)`` [V].
        r_wl: word-line segment resistance [ohm], scalar or ``(M, N)``; ``r_wl[i, k]`` feeds
            cell ``(i, k)`` (``k = 0``: from the driver).
        r_bl: bit-line segment resistance [ohm], scalar or ``(M, N)``; ``r_bl[i, j]`` lies
            below cell ``(i, j)`` (``i = M-1``: to the sense node).
        r_src: driver output resistance [ohm], scalar or per row ``(M,)``.
        r_sense: sense-amplifier input resistance [ohm], scalar or per column ``(N,)``.
        iv: ``None`` for linear cells ``i = G v``; else an elementwise, nondecreasing cell
            law ``iv(G, v) -> i`` [A] with ``iv(G, 0) = 0`` (a sinh nonlinearity, a device
            model's ``current``, ...).  Values it closes over are differentiated too.
        r_cell_series: resistance in series with every cell [ohm] (the access transistor
            of a 1T1R cell in its on state), scalar or ``(M, N)``.
        selector: law ``i = s(v)`` [A] of a two-terminal selector in series with each cell
            (1S1R), elementwise, nondecreasing, ``s(0) = 0``.  Solved with the cell's
            internal node by a nested scalar Newton/bisection inside the cell law.
        v_col: voltage [V] at which each column's sense end is held, behind ``r_sense``:
            0 (default) is the virtual ground of a read; write-biasing schemes (V/2, V/3)
            drive columns to other voltages.  Scalar, ``(N,)`` or ``(*batch, N)``.  Only
            the differences ``v_in[i] - v_col[j]`` drive currents: the bit line of column
            ``j`` is the read-convention bit line shifted by ``v_col[j]``, so the cell
            voltages solve the same equations with ``v_in[i] - v_col[j]`` as the drive
            (exact, also for nonlinear cells).
        tol: relative tolerance (see module docstring); default ``1e-10`` in float64,
            ``1e-5`` in float32.
        max_iter: conjugate-gradient iterations per linear solve (default 10 000).
        max_newton: Newton iterations for nonlinear cells.
        throw: raise (``eqx.error_if``, works under ``jit``) when the tolerance is not met;
            with ``False`` check ``Solution.converged`` yourself.
        preconditioner: the linear-solve method.  ``"jacobi"``: diagonal-preconditioned
            CG.  ``"line"``: CG preconditioned with the exact inverse of each line family
            (word lines, bit lines) by Woodbury + batched tridiagonal solves, combined
            symmetrically (``_nodal.line_preconditioner``); 2.5-3x fewer iterations
            (e.g. 15 -> 6 at 256x256, 42 -> 19 at 1024x1024, 1 ohm wires), each 3-5x
            dearer on a CPU.  ``"direct"``: no CG; a block-tridiagonal factorisation
            (``xbar._direct``, ``O(max(M,N) min(M,N)^3)`` once, then four dense block
            products per input, storing ``2 max(M,N) min(M,N)^2`` numbers) applied with
            iterative refinement against the true operator until the CG criterion
            holds (``cg_iterations`` then counts refinement steps, normally 1 per solve).
            It pays off for batches of inputs.  ``"march"`` (linear cells only): no CG;
            marching with multiple shooting (``xbar._march``; ``O(M N min(M,N))`` once,
            then ``O(M N)`` per input), segments sized from the concrete ``G`` and wires
            so that rounding stays bounded (under ``jit`` with traced arrays: segments
            of ``MARCH_TRACED_ROWS`` rows, every residual test with the exact operator);
            arrays that would need more than ``xbar._march.MAX_SEGMENTS`` segments are
            refused.  Exact for zero-resistance segments (no ``1/r`` anywhere).
            ``"auto"`` (default): ``"march"`` for linear cells with at least 16 inputs
            when ``G`` and the wires are concrete and the march needs at most
            ``MAX_SEGMENTS`` segments; else ``"direct"`` for linear cells with at least
            ``max(8, min(M, N)/2)`` inputs whose factors fit in ``DIRECT_MAX_BYTES``;
            else ``"jacobi"``.  Zero-resistance segments are floored inside the line
            preconditioner / direct factorisation only (the residual test uses the exact
            operator, so the solution stays exact).

    Returns:
        A :class:`Solution`; ``i_out = sum_i i_cell[i, :]``; with all wire resistances zero
        and linear cells, exactly ``v_in @ G``.

    Linear cells in series with ``r_cell_series`` use the exact series conductance
    ``G / (1 + r G)``; nonlinear stacks are solved as described in ``_series_law``.
    Differentiable (implicit differentiation) w.r.t. ``G``, ``v_in``, all resistances and
    the parameters closed over by ``iv``/``selector``; works under ``jit``/``vmap`` and in
    float32/float64.
    """
    if np.ndim(v_in) not in (1, 2):
        raise ValueError(f"v_in must have shape (M,) or (B, M); got shape {np.shape(v_in)}")
    G, R_wl, R_bl, r_cs, dtype = _prepare(
        G, r_wl, r_bl, r_src, r_sense, r_cell_series, dtype_of=(v_in,)
    )
    M, N = G.shape
    if np.shape(v_in)[-1] != M:
        raise ValueError(
            f"v_in must have shape (M,) or (B, M) with M = {M} rows of G; got {np.shape(v_in)}"
        )
    v_in = _nodal.check_finite("v_in", v_in).astype(dtype)
    col_shapes = ((), (N,), tuple(np.shape(v_in)[:-1]) + (N,))
    if tuple(np.shape(v_col)) not in col_shapes:
        raise ValueError(
            f"v_col must be a scalar or have shape (N,) = ({N},) or (*batch, N) = "
            f"{col_shapes[-1]} (column hold voltages, V); got shape {np.shape(v_col)}"
        )
    v_col = _nodal.check_finite("v_col", v_col).astype(dtype)
    if v_col.ndim == 0:
        v_col = jnp.broadcast_to(v_col, (N,))
    tol, max_iter = _default_tol(dtype, tol, max_iter)
    series = selector is not None or not (
        isinstance(r_cell_series, (int, float)) and r_cell_series == 0
    )
    n_rhs = int(np.prod(np.shape(v_in)[:-1], dtype=int))
    linear = iv is None and selector is None
    pc = _choose_preconditioner(preconditioner, M, N, n_rhs, linear, dtype, (G, R_wl, R_bl))
    return _solve_impl(
        G, v_in, v_col, R_wl, R_bl, r_cs, iv, selector, series, tol, max_iter, max_newton,
        throw, pc,
    )


@eqx.filter_jit
def _solve_impl(
    G, v_in, v_col, R_wl, R_bl, r_cs, iv, selector, series, tol, max_iter, max_newton, throw,
    pc,
):
    # Compiled as one program (eager dispatch of the many small ops is slow); arrays are
    # traced, the callables and options are static.
    N = G.shape[1]
    v_row = jnp.broadcast_to(v_in[..., :, None], v_in.shape + (N,))
    # Cell-voltage drive: the bit lines are shifted by v_col (see `solve`).
    v = v_row - v_col[..., None, :]

    if iv is None and selector is None:
        # Linear cell + series resistor = linear cell of conductance G / (1 + r G), exactly.
        G_eff = G / (1 + r_cs * G)
        law, theta = _linear_cell, G_eff
        if _nodal.is_march(pc) and _march.trusted(len(pc) > 2 and pc[2], tol, G.dtype):
            out, n_cg, ok = _lines_solve(G_eff, R_wl, R_bl, v_in, v_col, tol, max_iter, pc)
            n_newton = 1
        else:
            u, n_newton, n_cg, ok = _linear_solve(G_eff, R_wl, R_bl, v, tol, max_iter, pc)
            out = None
    else:
        cell = _linear_cell if iv is None else iv
        if not series:
            law, theta = (lambda th, u: cell(th[0], u)), (G, r_cs)
        else:
            law, theta = _series_law(cell, selector), (G, r_cs)
        u, n_newton, n_cg, ok = _newton_solve(
            law, theta, R_wl, R_bl, v, tol, max_iter, max_newton, pc
        )
        out = None

    if out is None:
        out = _outputs(law, theta, R_wl, R_bl, u, v_in, v_col)
    c, v_wl, v_bl, res_max, i_out = out
    # max|v| per input, from the drives alone (max_ij |a_i - b_j|).
    lo, hi = jnp.min(v_col, axis=-1), jnp.max(v_col, axis=-1)
    scale = jnp.maximum(jnp.max(v_in, axis=-1) - lo, hi - jnp.min(v_in, axis=-1))
    residual = jnp.max(jnp.where(scale > 0, res_max / jnp.where(scale > 0, scale, 1), res_max))
    if throw:
        i_out = eqx.error_if(
            i_out,
            ~ok,
            "xbar.solve did not converge: raise max_iter / max_newton or tol, or pass "
            "throw=False and inspect Solution.converged / residual",
        )
    return Solution(
        i_out=i_out,
        v_wl=v_wl,
        v_bl=v_bl,
        i_cell=c,
        iterations=jnp.asarray(n_newton, jnp.int32),
        cg_iterations=jnp.asarray(n_cg, jnp.int32),
        residual=residual,
        converged=ok,
    )


def effective_matrix(
    G: Float[ArrayLike, "M N"],
    *,
    r_wl: float | Float[ArrayLike, "M N"],
    r_bl: float | Float[ArrayLike, "M N"],
    r_src: float | Float[ArrayLike, " M"] = 0.0,
    r_sense: float | Float[ArrayLike, " N"] = 0.0,
    r_cell_series: float | Float[ArrayLike, "M N"] = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    throw: bool = True,
    preconditioner: str = "auto",
) -> Float[Array, "M N"]:
    """Effective conductance matrix ``W_eff`` [S] of a linear crossbar with wire resistance.

    For linear cells the outputs are linear in the inputs, ``i_out = v_in @ W_eff``;
    row ``i`` of ``W_eff`` is the response to ``v_in = e_i`` (1 V on row ``i``, others at
    0 V).  Without wire resistance ``W_eff = G``.  Arguments as in :func:`solve`.

    Method: with ``preconditioner="direct"`` (what ``"auto"`` picks when the factors fit
    in ``DIRECT_MAX_BYTES``), one block-tridiagonal factorisation and a single
    elimination sweep that carries all ``M`` unit inputs, as currents, to the sense row
    (``xbar._direct.effective_matrix_rows``; for ``N > M`` on the reciprocal network,
    ``W = W_recip^T``), differentiated directly (no iterations to back-propagate
    through).  Accuracy: ~1e-12 relative in float64; in float32 the sequential
    elimination accumulates rounding, measured 1e-5 / 8e-5 / 1.8e-4 relative at
    128 / 256 / 512 square (``tests``, ``benchmarks/RESULTS.md``).  It is validated by a full solve of one probe input with the
    same factors and iterative refinement against the exact operator: the relative
    mismatch must be ``<= 100 tol`` or the result is flagged (``throw``).  Otherwise
    (``N > M``, or an iterative method) ``M`` solves batched into one (:func:`solve`).
    """
    M = np.shape(G)[0] if np.ndim(G) == 2 else 0
    dtype = jnp.promote_types(jnp.result_type(G), jnp.float32)
    kw = dict(r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense, r_cell_series=r_cell_series)
    if np.ndim(G) == 2 and M > 0:
        N = np.shape(G)[1]
        # Without the arrays "auto" never picks the marching solver here: the direct sweep
        # carries the unit inputs as currents and never forms their (M, M, N) fields.
        pc = _choose_preconditioner(preconditioner, M, N, n_rhs=max(M, 8 * min(M, N)), dtype=dtype)
        if _nodal.is_march(pc):
            pc = "march"  # solve() sizes the segments from the concrete arrays
        G_, R_wl, R_bl, r_cs, dtype = _prepare(G, r_wl, r_bl, r_src, r_sense, r_cell_series)
        # For N > M the sweep runs on the reciprocal network (see _effective_direct).  It
        # reads the output off the voltages of the family that ends at the outputs (bit
        # lines, or word lines when transposed): every segment of it must be > 0, or none
        # (known here unless the resistances are traced).
        R_out = np.asarray(R_bl if N <= M else R_wl) if _nodal.is_concrete(R_bl) else None
        mixed = R_out is not None and 0 < np.count_nonzero(R_out) < M * N
        if pc == "direct" and not mixed:
            tol_, max_iter_ = _default_tol(dtype, tol, max_iter)
            max_iter_ = min(max_iter_, _nodal.MAX_REFINE)
            return _effective_direct(G_, R_wl, R_bl, r_cs, tol_, max_iter_, throw)
    else:
        pc = preconditioner
    sol = solve(G, jnp.eye(M, dtype=dtype), **kw, tol=tol, max_iter=max_iter, throw=throw,
                preconditioner=pc)
    return sol.i_out


@eqx.filter_jit
def _effective_direct(G, R_wl, R_bl, r_cs, tol, max_iter, throw):
    M, N = G.shape
    G_eff = G / (1 + r_cs * G)
    if N > M:
        # Reciprocity: the short-circuit transfer conductances of a resistive network are
        # symmetric, W[i, j] = (current into row driver i when column j is driven).  The
        # reciprocal network is again a crossbar in the DESIGN convention: its word lines
        # are our bit lines driven from the sense end, its bit lines our word lines sensed
        # at the driver end, i.e. every array rotated by 180 degrees and transposed; the
        # folded r_sense / r_src land exactly on its driver / sense segments.
        def rot(a):
            return a[::-1, ::-1].T

        return rot(_effective_direct(rot(G_eff), rot(R_bl), rot(R_wl), 0.0, tol, max_iter,
                                     throw))
    # A fixed, input-independent probe with no special structure (entries in [0.5, 1.5]).
    v_probe = 1.0 + 0.5 * jnp.sin(1.0 + 2.399963 * jnp.arange(M, dtype=G.dtype))
    W, err, ok = _direct.effective_matrix_rows(G_eff, R_wl, R_bl, v_probe, tol, max_iter)
    good = ok & (err <= 100 * tol)
    if throw:
        W = eqx.error_if(
            W,
            ~good,
            "xbar.effective_matrix: the direct factorisation failed its probe check (e.g. "
            "zero-resistance bit-line segments); use preconditioner='jacobi'",
        )
    return W
