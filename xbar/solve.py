"""Circuit solve of a memristive crossbar: IR drop, sneak paths, nonlinear cell stacks.

Circuit (the convention of ``DESIGN.md``): ``M`` word lines (rows) x ``N`` bit lines
(columns).  Cell ``(i, j)`` joins word-line node ``(i, j)`` to bit-line node ``(i, j)``.
Row ``i`` is driven at its column-0 end by ``v_in[i]`` through ``r_src``, then one
word-line segment ``r_wl`` before cell ``(i, 0)`` and one between neighbouring cells; the
far end is open.  Column ``j`` is sensed at its row-``(M-1)`` end by an amplifier that
holds ``v_col[j]`` (0 V for a read) behind ``r_sense``; one bit-line segment ``r_bl``
lies between neighbouring cells and one below cell ``(M-1, j)``; the top end is open.
``i_out[j]`` is the current into sense node ``j`` (A), positive from the cells into the
amplifier.

Method (exact nodal analysis written in cell currents, ``docs/solver.md``).  The wire
operator ``A`` (``xbar._wires``) maps cell currents ``c`` to the loss of cell voltage
they cause, ``v_wl - v_bl = v - A c`` with ``v = v_in_i - v_col_j``, using resistances
only; the cell voltages ``u`` solve

    F(u) = u + A f(u) - v = 0,          f(u) = cell-stack law (G * u if linear).

This is exactly Kirchhoff's laws of the full 2MN-node network (every sneak path
included); zero-resistance wires are exact: ``A = 0`` gives ``u = v`` and
``i_out = v_in @ G``.  Each linear(ised) system ``(I + A D) x = b`` (``D = f'(u) >= 0``)
is symmetrised, ``K z = S b`` with ``K = I + S A S``, ``S = sqrt(D)``, and solved by a
solver object of ``xbar.solvers`` (``solver=``): :class:`xbar.CG` with
:class:`xbar.Jacobi` or :class:`xbar.LinePreconditioner`, :class:`xbar.Direct`,
:class:`xbar.March` (linear cells; its segment plan ``xbar.March.plan(...)`` is an
explicit call outside ``jit``), or :class:`xbar.Auto` (default), which picks from the
shapes alone.  Nonlinear cells use Newton's method on ``F`` (``xbar._newton``), iterates
projected onto the box that the maximum principle guarantees for the root.  Cell stacks
(passive, 1T1R, 1S1R, a device with any series element) are objects of ``xbar.cells``.

Convergence is judged on the answer, never on the iteration: the Kirchhoff residual
``max|u - (v_wl - v_bl)|`` of the returned node voltages is recomputed with the exact
wire operator, relative to the largest drive ``max|v_in_i - v_col_j|`` per input
(``Solution.residual``), and must be ``<= tol`` (default ``1e-10`` in float64, ``1e-5``
in float32).  A linear-cell answer is refined (at most ``REFINE_ROUNDS`` more solves)
until it is.  ``Solution.result`` (:class:`xbar.RESULTS`) also reports a non-finite cell
law, a solver breakdown, node voltages outside the range of the drives (the maximum
principle of passive networks, checked with a slack of ``max(10 tol, 100 eps)`` of the
drive), and an answer that cannot be trusted in the working precision (the Gershgorin
bound ``1 + max(S A S 1)`` of the condition number of ``K`` times the machine epsilon
above ``xbar.results.TRUST_LIMIT``: use float64).  ``throw=True`` (default) raises with
the message of the cause (``eqx.error_if``, also under ``jit``).

Derivatives: implicit differentiation (``xbar._newton``), never back-propagation through
iterations; differentiable in ``G``, ``v_in``, ``v_col``, all resistances, the cell
stack's parameters and what ``iv`` closes over.

Source: modified nodal analysis of resistive crossbars (e.g. Chen, "Design of resistive
synaptic array for implementing on-chip sparse learning", PhD thesis, Arizona State
University, 2016; Liang & Wong, "Cross-point memory array without cell selectors",
IEEE Electron Device Lett. 31, 1002 (2010)).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from . import _direct, _march, _newton, _validate, _wires
from ._chains import families
from ._newton import REFINE_ROUNDS
from ._wires import Operator
from .cells import AbstractCell, Passive
from .results import RESULTS, TRUST_LIMIT
from .solvers import CG, DIRECT_MAX_BYTES, MAX_REFINE, AbstractSolver, Auto, Direct, March, select

__all__ = ["REFINE_ROUNDS", "Solution", "effective_matrix", "solve"]

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
        cg_iterations: linear-solver steps summed over all linear solves (CG
            iterations, or refinement steps of the factorising solvers).
        residual: largest Kirchhoff residual ``max|F(u)| / max|v_in - v_col|`` [V/V] of
            the returned node voltages, recomputed with the exact wire operator.
        condition: Gershgorin bound of the condition number of the (last) linear system.
        result: a :class:`xbar.RESULTS` item (``RESULTS.successful`` or the cause).
    """

    i_out: Float[Array, "*batch N"]
    v_wl: Float[Array, "*batch M N"]
    v_bl: Float[Array, "*batch M N"]
    i_cell: Float[Array, "*batch M N"]
    iterations: Int[Array, ""]
    cg_iterations: Int[Array, ""]
    residual: Float[Array, ""]
    condition: Float[Array, ""]
    result: RESULTS

    @property
    def converged(self) -> Array:
        """``result == RESULTS.successful`` (a boolean array)."""
        return self.result == RESULTS.successful


# ---------------------------------------------------------------------------------------
# Input preparation
# ---------------------------------------------------------------------------------------


def _prepare(G, r_wl, r_bl, r_src, r_sense, dtype_of=()):
    """Validate inputs and fold ``r_src``/``r_sense`` into the end segments."""
    G, r_wl, r_bl, r_src, r_sense = map(_validate.as_array, (G, r_wl, r_bl, r_src, r_sense))
    if np.ndim(G) != 2 or 0 in np.shape(G):
        raise ValueError(
            f"G must be a non-empty (M, N) array of conductances [S]; got shape {np.shape(G)}"
        )
    M, N = np.shape(G)
    G = _validate.check_array("G (cell conductance, S)", G, ((M, N),))
    seg = " (scalar or per-segment (M, N) array, ohm)"
    r_wl = _validate.check_array("r_wl", r_wl, ((), (M, N)), what=seg)
    r_bl = _validate.check_array("r_bl", r_bl, ((), (M, N)), what=seg)
    r_src = _validate.check_array("r_src", r_src, ((), (M,)), what=" (scalar or per-row, ohm)")
    r_sense = _validate.check_array(
        "r_sense", r_sense, ((), (N,)), what=" (scalar or per-column, ohm)"
    )
    dtype = jnp.promote_types(jnp.result_type(G, *dtype_of), jnp.float32)
    return (*_fold(G, r_wl, r_bl, r_src, r_sense, dtype), dtype)


@functools.partial(jax.jit, static_argnums=5)
def _fold(G, r_wl, r_bl, r_src, r_sense, dtype):
    """``(G, R_wl, R_bl)`` in ``dtype``, ``r_src`` / ``r_sense`` added to the end segments
    (one compiled call: eagerly, these few small operations would each be dispatched)."""
    M, N = G.shape
    R_wl = jnp.broadcast_to(r_wl.astype(dtype), (M, N))
    R_bl = jnp.broadcast_to(r_bl.astype(dtype), (M, N))
    R_wl = R_wl.at[:, 0].add(jnp.broadcast_to(r_src.astype(dtype), (M,)))
    R_bl = R_bl.at[M - 1, :].add(jnp.broadcast_to(r_sense.astype(dtype), (N,)))
    return G.astype(dtype), R_wl, R_bl


def _default_tol(dtype, tol, max_iter):
    if tol is None:
        tol = 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-5
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0; got {tol!r}")
    if max_iter is None:
        max_iter = 10_000
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    return float(tol), int(max_iter)


def _check_cell(cell):
    if not isinstance(cell, AbstractCell):
        raise ValueError(
            "cell must be a cell stack of xbar.cells (Passive(), OneTOneR(...), "
            f"OneSOneR(...), Series(...)); got {cell!r}"
        )


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def solve(
    G: Float[ArrayLike, "M N"],
    v_in: Float[ArrayLike, "*batch M"],
    *,
    r_wl: float | Float[ArrayLike, "M N"],
    r_bl: float | Float[ArrayLike, "M N"],
    r_src: float | Float[ArrayLike, " M"] = 0.0,
    r_sense: float | Float[ArrayLike, " N"] = 0.0,
    iv: CellLaw | None = None,
    cell: AbstractCell = Passive(),
    v_col: float | Float[ArrayLike, "*batch N"] = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    max_newton: int = 50,
    throw: bool = True,
    solver: AbstractSolver | Auto = Auto(),
) -> Solution:
    """Solve the full nodal equations of a crossbar read (module docstring).

    Arguments:
        G: cell (device) conductances ``(M, N)`` [S], finite and ``>= 0``.  For a
            nonlinear law it is passed through to ``iv`` (it need not be a conductance).
        v_in: row drive voltages ``(M,)`` or batched ``(B, M)`` [V] (array or list).
        r_wl: word-line segment resistance [ohm], scalar or ``(M, N)``; ``r_wl[i, k]`` feeds
            cell ``(i, k)`` (``k = 0``: from the driver).
        r_bl: bit-line segment resistance [ohm], scalar or ``(M, N)``; ``r_bl[i, j]`` lies
            below cell ``(i, j)`` (``i = M-1``: to the sense node).
        r_src: driver output resistance [ohm], scalar or per row ``(M,)``.
        r_sense: sense-amplifier input resistance [ohm], scalar or per column ``(N,)``.
        iv: ``None`` for linear devices ``i = G x``; else an elementwise, nondecreasing
            device law ``iv(G, x) -> i`` [A] with ``iv(G, 0) = 0`` (a sinh law, a device
            model's ``current``, ...).  Values it closes over are differentiated too.
        cell: the cell stack (``xbar.cells``): ``Passive()`` (default), ``OneTOneR`` (access
            transistor), ``OneSOneR`` (selector) or ``Series`` (any element).  A linear
            device in a linear stack is solved as a linear cell of conductance
            ``cell.linear_conductance(G)``.
        v_col: voltage [V] at which each column's sense end is held, behind ``r_sense``:
            0 (default) is the virtual ground of a read; write-biasing schemes (V/2, V/3)
            drive columns to other voltages.  Scalar, ``(N,)`` or ``(*batch, N)``.  Only
            the differences ``v_in[i] - v_col[j]`` drive currents (exact, also for
            nonlinear cells).
        tol: tolerance of the relative Kirchhoff residual (module docstring); default
            ``1e-10`` in float64, ``1e-5`` in float32.
        max_iter: linear-solver iterations per linear solve (default 10 000).
        max_newton: Newton iterations for nonlinear cells.
        throw: raise (``eqx.error_if``, works under ``jit``) unless ``result`` is
            ``RESULTS.successful``; with ``False`` check ``Solution.result`` yourself.
        solver: an ``xbar.solvers`` object; :class:`xbar.Auto` (default) picks from the
            shapes (``Auto.select``), the same eagerly and under ``jit``.

    Returns:
        A :class:`Solution`; ``i_out = sum_i i_cell[i, :]``; with all wire resistances zero
        and linear cells, exactly ``v_in @ G``.  Works under ``jit``/``vmap`` and in
        float32/float64.
    """
    v_in = _validate.as_array(v_in)
    v_col = _validate.as_array(v_col)
    if np.ndim(v_in) not in (1, 2):
        raise ValueError(f"v_in must have shape (M,) or (B, M); got shape {np.shape(v_in)}")
    _check_cell(cell)
    G, R_wl, R_bl, dtype = _prepare(G, r_wl, r_bl, r_src, r_sense, dtype_of=(v_in,))
    M, N = G.shape
    if np.shape(v_in)[-1] != M:
        raise ValueError(
            f"v_in must have shape (M,) or (B, M) with M = {M} rows of G; got {np.shape(v_in)}"
        )
    v_in = _validate.check_finite("v_in", v_in).astype(dtype)
    col_shapes = ((), (N,), tuple(np.shape(v_in)[:-1]) + (N,))
    if tuple(np.shape(v_col)) not in col_shapes:
        raise ValueError(
            f"v_col must be a scalar or have shape (N,) = ({N},) or (*batch, N) = "
            f"{col_shapes[-1]} (column hold voltages, V); got shape {np.shape(v_col)}"
        )
    v_col = _validate.check_finite("v_col", v_col).astype(dtype)
    if v_col.ndim == 0:
        v_col = jnp.broadcast_to(v_col, (N,))
    tol, max_iter = _default_tol(dtype, tol, max_iter)
    if not (isinstance(max_newton, (int, np.integer)) and max_newton >= 1):
        raise ValueError(f"max_newton must be an int >= 1; got {max_newton!r}")
    n_rhs = int(np.prod(np.shape(v_in)[:-1], dtype=int))
    linear = iv is None and cell.linear_conductance(jnp.ones((), dtype)) is not None
    solver = select(solver, M, N, n_rhs, linear, dtype)
    return _solve_impl(
        G, v_in, v_col, R_wl, R_bl, iv, cell, tol, max_iter, max_newton, throw, solver
    )


def _drive_scale(v_in, v_col):
    """``max_ij |v_in_i - v_col_j|`` per input: the largest cell-voltage drive."""
    c_lo, c_hi = jnp.min(v_col, axis=-1), jnp.max(v_col, axis=-1)
    return jnp.maximum(jnp.max(v_in, axis=-1) - c_lo, c_hi - jnp.min(v_in, axis=-1))


def _relative(res_max, v_in, v_col):
    """Kirchhoff residual per input relative to its drive (absolute at zero drive)."""
    scale = _drive_scale(v_in, v_col)
    return jnp.where(scale > 0, res_max / jnp.where(scale > 0, scale, 1), res_max)


def _device(iv):
    return _newton.linear_cell if iv is None else iv


@eqx.filter_jit
def _solve_impl(G, v_in, v_col, R_wl, R_bl, iv, cell, tol, max_iter, max_newton, throw, solver):
    # Compiled as one program (eager dispatch of the many small ops is slow); arrays are
    # traced, the callables and options are static.
    N = G.shape[1]
    v_row = jnp.broadcast_to(v_in[..., :, None], v_in.shape + (N,))
    # Cell-voltage drive: the bit lines are shifted by v_col (see `solve`).
    v = v_row - v_col[..., None, :]
    dtype = G.dtype
    law_bad = jnp.array(False)

    g_lin = cell.linear_conductance(G) if iv is None else None
    if g_lin is not None:
        law, theta, S = _newton.linear_cell, g_lin, jnp.sqrt(jax.lax.stop_gradient(g_lin))
        if isinstance(solver, March) and solver.fast(tol, dtype):
            out, n_cg, broke = _newton.lines_solve(
                g_lin, R_wl, R_bl, v_in, v_col, tol, max_iter, solver
            )
        else:
            u, n_cg, broke = _newton.linear_solve(
                g_lin, R_wl, R_bl, v, tol, max_iter, solver, refine=False
            )
            out = _newton.outputs(law, theta, R_wl, R_bl, u, v_in, v_col)
            # refined on the Kirchhoff residual the output checks just computed (no extra
            # residual evaluation when the first solve already meets tol)
            u, n_ref, k_ref, broke_ref = _newton.refine_answer(
                solver, g_lin, R_wl, R_bl, v, u, _relative(out[3], v_in, v_col), tol, max_iter
            )
            out = jax.lax.cond(
                n_ref > 0,
                lambda: _newton.outputs(law, theta, R_wl, R_bl, u, v_in, v_col),
                lambda: out,
            )
            n_cg, broke = n_cg + k_ref, broke | broke_ref
        n_newton = 1
    else:
        device = _device(iv)
        if isinstance(cell, Passive):

            def law(theta, u):
                return device(theta[0], u)
        else:

            def law(theta, u):
                G_, cell_ = theta
                return cell_.current(lambda x: device(G_, x), u)

        theta = (G, cell)
        u, n_newton, n_cg, law_bad, broke, S = _newton.newton_solve(
            law, theta, R_wl, R_bl, v, tol, max_iter, max_newton, solver
        )
        out = _newton.outputs(law, theta, R_wl, R_bl, u, v_in, v_col)

    c, v_wl, v_bl, res_max, i_out, node_lo, node_hi, bad_c, bad_u = out
    # The nodes must lie in [lo, hi], the range of the drives.
    lo = jnp.minimum(jnp.min(v_in, axis=-1), jnp.min(v_col, axis=-1))
    hi = jnp.maximum(jnp.max(v_in, axis=-1), jnp.max(v_col, axis=-1))
    scale = _drive_scale(v_in, v_col)
    residual = jnp.max(_relative(res_max, v_in, v_col))
    eps = float(jnp.finfo(dtype).eps)
    slack = jnp.maximum(scale, jnp.finfo(dtype).tiny) * max(10 * tol, 100 * eps)
    mp_bad = jnp.any((node_lo < lo - slack) | (node_hi > hi + slack))
    condition = jnp.max(Operator(S, R_wl, R_bl).gershgorin())
    ill = ~(condition * eps <= TRUST_LIMIT)

    result = RESULTS.successful
    result = RESULTS.where(mp_bad, RESULTS.max_principle, result)
    result = RESULTS.where(~(residual <= tol), RESULTS.max_iterations, result)
    result = RESULTS.where(ill, RESULTS.ill_conditioned, result)
    result = RESULTS.where(broke | jnp.any(bad_u), RESULTS.breakdown, result)
    result = RESULTS.where(law_bad | jnp.any(bad_c), RESULTS.nonfinite, result)
    if throw:
        i_out = result.error_if(i_out, result != RESULTS.successful)
    return Solution(
        i_out=i_out,
        v_wl=v_wl,
        v_bl=v_bl,
        i_cell=c,
        iterations=jnp.asarray(n_newton, jnp.int32),
        cg_iterations=jnp.asarray(n_cg, jnp.int32),
        residual=residual,
        condition=condition,
        result=result,
    )


def effective_matrix(
    G: Float[ArrayLike, "M N"],
    *,
    r_wl: float | Float[ArrayLike, "M N"],
    r_bl: float | Float[ArrayLike, "M N"],
    r_src: float | Float[ArrayLike, " M"] = 0.0,
    r_sense: float | Float[ArrayLike, " N"] = 0.0,
    cell: AbstractCell = Passive(),
    tol: float | None = None,
    max_iter: int | None = None,
    throw: bool = True,
    solver: AbstractSolver | Auto = Auto(),
) -> Float[Array, "M N"]:
    """Effective conductance matrix ``W_eff`` [S] of a linear crossbar with wire resistance.

    For linear cell stacks the outputs are linear in the inputs, ``i_out = v_in @ W_eff``;
    row ``i`` of ``W_eff`` is the response to ``v_in = e_i`` (1 V on row ``i``, others at
    0 V).  Without wire resistance ``W_eff = G`` (for a passive stack).  Arguments as in
    :func:`solve`.

    Method.  :class:`xbar.Auto` (default; ``Auto.select_matrix``) and :class:`xbar.March`:
    the output-only march (``xbar._march.effective_rows``): the ``M`` unit inputs are
    marched together from the open end of the bit lines, keeping only the states at the
    segment ends, and the Riccati sweep of the multiple-shooting march yields the sense
    currents directly: ``O(M N (M + N))`` work and no ``(M, M, N)`` field (for
    ``N > M`` on the reciprocal network, ``W = W_recip^T``), differentiated directly
    (in conductance form, finite at ``G = 0``).  It is checked against one probe input
    solved independently (Jacobi CG refined on the exact Kirchhoff residual): the
    relative mismatch must be ``<= 100 tol``; where it is not (rounding grown in a march
    segment: a strong IR-drop parameter), ``Auto`` computes the matrix by
    :class:`xbar.Direct` (or by blocks of CG solves where its factors do not fit),
    eagerly and under ``jit`` alike; an explicit ``March`` raises (``throw``).
    :class:`xbar.Direct`: one block-tridiagonal factorisation and a single elimination
    sweep that carries all unit inputs, as currents, to the sense row
    (``xbar._direct.effective_matrix_rows``), with the same kind of probe check.
    :class:`xbar.CG`: ``M`` solves batched into one (:func:`solve`).
    """
    _check_cell(cell)
    G = _validate.as_array(G)
    M = np.shape(G)[0] if np.ndim(G) == 2 else 0
    dtype = jnp.promote_types(jnp.result_type(G), jnp.float32)
    kw = dict(r_wl=r_wl, r_bl=r_bl, r_src=r_src, r_sense=r_sense, cell=cell)
    if np.ndim(G) == 2 and M > 0:
        N = np.shape(G)[1]
        if cell.linear_conductance(jnp.ones((), dtype)) is None:
            raise ValueError(f"effective_matrix needs a linear cell stack; got {cell!r}")
        auto = isinstance(solver, Auto)
        solver = solver.select_matrix(M, N, dtype) if auto else select(solver, M, N, M, True, dtype)
        G_, R_wl, R_bl, dtype = _prepare(G, r_wl, r_bl, r_src, r_sense)
        # For N > M the sweep runs on the reciprocal network (see _effective_direct).  It
        # reads the output off the voltages of the family that ends at the outputs (bit
        # lines, or word lines when transposed): every segment of it must be > 0, or none
        # (known here unless the resistances are traced).
        R_out = np.asarray(R_bl if N <= M else R_wl) if _validate.is_concrete(R_bl) else None
        mixed = R_out is not None and 0 < np.count_nonzero(R_out) < M * N
        tol_, max_iter_ = _default_tol(dtype, tol, max_iter)
        max_iter_ = min(max_iter_, MAX_REFINE)
        g = cell.linear_conductance(G_)
        if isinstance(solver, March):
            # the reciprocal network (N > M) has the roles of rows and columns exchanged
            K = solver.num_segments(max(M, N), min(M, N))
            fallback = None
            if auto:
                fits = _direct.factor_bytes(M, N, jnp.dtype(dtype).itemsize) <= DIRECT_MAX_BYTES
                fallback = "direct" if fits and not mixed else "cg"
            return _effective_march(
                g, R_wl, R_bl, tol_, max_iter_, throw, K, solver.planned, fallback
            )
        if isinstance(solver, Direct) and not mixed:
            return _effective_direct(g, R_wl, R_bl, tol_, max_iter_, throw)
    sol = solve(
        G, jnp.eye(M, dtype=dtype), **kw, tol=tol, max_iter=max_iter, throw=throw, solver=solver
    )
    return sol.i_out


@eqx.filter_jit
def _effective_direct(G, R_wl, R_bl, tol, max_iter, throw):
    M, N = G.shape
    if N > M:
        # Reciprocity: the short-circuit transfer conductances of a resistive network are
        # symmetric, W[i, j] = (current into row driver i when column j is driven).  The
        # reciprocal network is again a crossbar in the DESIGN convention: its word lines
        # are our bit lines driven from the sense end, its bit lines our word lines sensed
        # at the driver end, i.e. every array rotated by 180 degrees and transposed; the
        # folded r_sense / r_src land exactly on its driver / sense segments.
        def rot(a):
            return a[::-1, ::-1].T

        return rot(_effective_direct(rot(G), rot(R_bl), rot(R_wl), tol, max_iter, throw))
    # A fixed, input-independent probe with no special structure (entries in [0.5, 1.5]).
    v_probe = 1.0 + 0.5 * jnp.sin(1.0 + 2.399963 * jnp.arange(M, dtype=G.dtype))
    W, err, ok = _direct.effective_matrix_rows(G, R_wl, R_bl, v_probe, tol, max_iter)
    good = ok & (err <= 100 * tol)
    if throw:
        W = eqx.error_if(
            W,
            ~good,
            "xbar.effective_matrix: the direct factorisation failed its probe check (e.g. "
            "zero-resistance bit-line segments); use solver=xbar.CG()",
        )
    return W


def _probe(M, dtype):
    """A fixed, input-independent probe input with no special structure (in [0.5, 1.5])."""
    return 1.0 + 0.5 * jnp.sin(1.0 + 2.399963 * jnp.arange(M, dtype=dtype))


@eqx.filter_jit
def _effective_march(G, R_wl, R_bl, tol, max_iter, throw, K, planned, fallback):
    """``W_eff`` by the output-only march (``xbar._march.effective_rows``), validated by a
    probe input solved independently (Jacobi CG, refined on the exact Kirchhoff residual);
    ``fallback`` (``"direct"`` / ``"cg"`` / ``None``) computes it another way where the
    probe fails (``lax.cond``: only that branch runs, except under ``vmap``)."""
    M, N = G.shape
    if N > M:  # reciprocity, as in _effective_direct

        def rot(a):
            return a[::-1, ::-1].T

        return rot(
            _effective_march(
                rot(G), rot(R_bl), rot(R_wl), tol, max_iter, throw, K, planned, fallback
            )
        )
    Rd, Rt = families(R_wl, R_bl, "rows")
    W = _march.effective_rows(G[::-1], Rd, Rt, K)[::-1]
    # Probe: one input solved independently (CG, refined on its Kirchhoff residual).
    v_probe = _probe(M, G.dtype)
    Gs, Rs = jax.lax.stop_gradient((G, R_wl, R_bl))[0], jax.lax.stop_gradient((R_wl, R_bl))
    u, _, broke = _newton.linear_solve(
        Gs, *Rs, jnp.broadcast_to(v_probe[:, None], (M, N)), tol, 10_000, CG()
    )
    i_probe = jnp.sum(Gs * u, axis=0)
    pred = v_probe @ jax.lax.stop_gradient(W)
    scale = _wires.max_abs(i_probe)
    err = _wires.max_abs(pred - i_probe) / jnp.where(scale > 0, scale, 1)
    good = ~broke & (err <= 100 * tol)
    if fallback is not None:

        def other(G, R_wl, R_bl):
            if fallback == "direct":
                return _effective_direct(G, R_wl, R_bl, tol, max_iter, throw)
            # unit inputs in blocks, so that at most ~2^22 field values are live
            blk = max(1, min(M, (1 << 22) // (M * N)))
            nb = -(-M // blk)
            eye = jnp.eye(nb * blk, M, dtype=G.dtype).reshape(nb, blk, M)

            def rows(e):
                v = jnp.broadcast_to(e[:, :, None], (blk, M, N))
                u, _, _ = _newton.linear_solve(G, R_wl, R_bl, v, tol, 10_000, CG())
                return jnp.sum(G * u, axis=-2)

            return jax.lax.map(rows, eye).reshape(nb * blk, N)[:M]

        return jax.lax.cond(good, lambda *a: W, other, G, R_wl, R_bl)
    if throw:
        W = eqx.error_if(
            W,
            ~good,
            "xbar.effective_matrix: the march failed its probe check (rounding grew beyond "
            "the tolerance); plan it with xbar.March.plan(...) or use solver=xbar.Direct()",
        )
    return W
