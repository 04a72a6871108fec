"""Linear solvers of the crossbar system, as objects.

Every linear(ised) crossbar system is ``(I + A D) x = b`` with ``A`` the wire operator
(``xbar._wires``) and ``D >= 0`` the (differential) cell conductances.  With
``S = sqrt(D)`` and ``z = S x`` it becomes the symmetric positive definite system

    K z = S b,      K = I + S A S,      x = b - A S z,

whose eigenvalues lie in ``[1, 1 + max(D) ||A||]`` (``docs/solver.md``).  A solver is an
:class:`AbstractSolver`, in the manner of lineax's ``AbstractLinearSolver``:

* ``init(operator, tol, max_iter)`` does the work that depends on the operator only
  (a preconditioner, a factorisation) and returns a state;
* ``compute(state, b)`` solves ``K z = b`` for a batch of right-hand sides ``b``
  ``(..., M, N)`` and returns ``(z, ASz, steps, converged, breakdown)`` (``ASz`` is
  ``A S z`` where the solver has it for free, else ``None``);
* ``transpose(state)`` is the state for the adjoint system (``K`` is symmetric, so it is
  the same state; reverse-mode derivatives use it).

Concrete solvers: :class:`CG` (conjugate gradients with a :class:`Jacobi` or
:class:`LinePreconditioner`), :class:`Direct` (Woodbury + block-tridiagonal
elimination), :class:`March` (marching with multiple shooting; linear cells).
:class:`Auto` picks one from the shapes alone (:meth:`Auto.select`), so that the same
inputs get the same algorithm eagerly and under ``jit``.  The one value-dependent plan,
the segments of the march, is an explicit call outside ``jit``:
``solver = xbar.March.plan(G, r_wl=..., r_bl=...)``, then ``xbar.solve(..., solver=solver)``
(also inside ``jit``).

Adding a solver: one class here (``init`` / ``compute`` / ``transpose``) and one entry in
the parametrised list of ``tests/xbar/test_solvers_contract.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _cg, _direct, _march, _validate
from ._wires import Operator
from .cells import AbstractCell, Passive

__all__ = [
    "AbstractPreconditioner",
    "AbstractSolver",
    "Auto",
    "CG",
    "Direct",
    "Jacobi",
    "LinePreconditioner",
    "March",
]

MAX_REFINE = 50
"""Refinement steps at most of the factorising solvers (they need 1, a few with floors)."""

DIRECT_MAX_BYTES = 2 * 1024**3
"""Largest factorisation (bytes) that :class:`Auto` lets :class:`Direct` hold."""

MARCH_ROWS = 32
"""Blocks per segment of an unplanned :class:`March` (``segments=None``)."""

MARCH_ROWS_MATRIX = 256
"""Blocks per segment of the march :meth:`Auto.select_matrix` picks (fewer segments: the
effective matrix costs less; growth beyond the tolerance falls back, see there)."""


# ---------------------------------------------------------------------------------------
# Preconditioners
# ---------------------------------------------------------------------------------------


class AbstractPreconditioner(eqx.Module):
    """A symmetric positive definite approximation of ``K^{-1}`` for :class:`CG`."""

    @abc.abstractmethod
    def init(self, operator: Operator) -> Callable[[jax.Array], jax.Array]:
        """The map ``r -> M^{-1} r`` for ``operator`` (batched like its ``S``)."""


class Jacobi(AbstractPreconditioner):
    """Diagonal preconditioner ``1 / diag(K)``, ``diag(K) = 1 + S^2 diag(A)``."""

    def init(self, operator):
        return _cg.jacobi_preconditioner(operator.S, operator.R_wl, operator.R_bl)


class LinePreconditioner(AbstractPreconditioner):
    """Exact inverses of the word-line and the bit-line family (Woodbury + batched
    Thomas solves, ``xbar._cg.line_preconditioner``), combined symmetrically.

    About 2.5-3x fewer CG iterations than :class:`Jacobi`, each dearer (three line
    solves); with ideal bit lines it is the exact inverse.  Zero-resistance segments
    are floored inside the preconditioner only.
    """

    def init(self, operator):
        return _cg.line_preconditioner(operator.S, operator.R_wl, operator.R_bl)


# ---------------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------------


class AbstractSolver(eqx.Module):
    """A solver of ``K z = b`` (module docstring).

    ``nonlinear``: whether it may serve as the linear solver of Newton's method (the
    slope ``S`` then carries the batch axes of the inputs).
    """

    nonlinear: eqx.AbstractClassVar[bool]
    margin: ClassVar[float] = 1.0
    """Factor on the tolerance of a linear-cell solve's first solve: the answer is judged
    on its Kirchhoff residual in the max norm (``xbar._newton``), which a solver that
    stops on the 2-norm of ``K z - b`` can miss by a small factor; aiming that much
    lower saves a refinement round."""

    @abc.abstractmethod
    def init(self, operator: Operator, tol: float, max_iter: int):
        """State for solving with ``operator`` to relative tolerance ``tol`` (2-norm of the
        residual of ``K z = b`` over that of ``b``, per right-hand side)."""

    @abc.abstractmethod
    def compute(self, state, b: jax.Array):
        """``(z, ASz | None, steps, converged, breakdown)`` for ``K z = b``."""

    @abc.abstractmethod
    def transpose(self, state):
        """State of the adjoint system (``K`` is symmetric: the same)."""


class CG(AbstractSolver):
    """Preconditioned conjugate gradients (``xbar._cg.pcg``), one CG per input.

    Fields:
        preconditioner: :class:`Jacobi` (default) or :class:`LinePreconditioner`.

    ``steps`` counts CG iterations (the largest over the batch).
    """

    preconditioner: AbstractPreconditioner = Jacobi()
    nonlinear: ClassVar[bool] = True
    # Measured (uniform G in [1e-6, 1e-4] S, 1 ohm segments, 64-256 lines, 1-64 inputs):
    # CG stopped at a 2-norm tolerance tol leaves a Kirchhoff max-norm residual of up to
    # 3.4 tol, and of at most 0.31 tol when stopped at tol / 4 (one more iteration,
    # ~0.3 ms at 256x256, against ~2.5 ms for a refinement round).
    margin: ClassVar[float] = 0.25

    def init(self, operator, tol, max_iter):
        S = lax.stop_gradient(operator.S)
        operator = Operator(S, operator.R_wl, operator.R_bl)
        return operator, self.preconditioner.init(operator), tol, max_iter

    def compute(self, state, b):
        operator, prec, tol, max_iter = state
        S = operator.S.reshape((1,) * (b.ndim - operator.S.ndim) + operator.S.shape)
        op = Operator(S, operator.R_wl, operator.R_bl)
        if isinstance(self.preconditioner, LinePreconditioner) and S.ndim != operator.S.ndim:
            prec = self.preconditioner.init(op)  # factors broadcast against every input
        z, k, ok, broke = _cg.pcg(op.mv, prec, b, tol, max_iter)
        return z, None, k, ok, broke

    def transpose(self, state):
        return state


class Direct(AbstractSolver):
    """Woodbury + block-tridiagonal elimination with iterative refinement
    (``xbar._direct``): ``O(max(M,N) min(M,N)^3)`` once, then four dense block products
    per input; stores ``2 max(M,N) min(M,N)^2`` numbers.  Refinement against the exact
    operator until the tolerance holds (``steps`` counts refinement steps, normally 1).
    """

    nonlinear: ClassVar[bool] = True

    def init(self, operator, tol, max_iter):
        S = lax.stop_gradient(operator.S)
        return Operator(S, operator.R_wl, operator.R_bl), tol, min(max_iter, MAX_REFINE)

    def compute(self, state, b):
        operator, tol, max_iter = state
        z, k, ok, ASz = _direct.solve_refined(
            operator.S, operator.R_wl, operator.R_bl, b, tol, max_iter
        )
        broke = ~jnp.all(jnp.isfinite(z))
        return z, ASz, k, ok, broke

    def transpose(self, state):
        return state


class March(AbstractSolver):
    """Marching with multiple shooting (``xbar._march``), linear cells only:
    ``O(M N min(M,N))`` once, ``O(M N)`` per input, no dense block products.

    Fields:
        segments: number of march segments, or ``None`` (default): one segment per
            ``MARCH_ROWS`` blocks, chosen from the shape alone.
        planned: ``segments`` came from :meth:`plan`, which bounds the rounding growth
            inside a segment from the actual conductances and wires; the march may then
            trust the residual of its segment states (float64 at the default tolerance,
            ``xbar._march.trusted``) and run its fast path, driven straight by the line
            voltages.  Otherwise every residual test applies the exact operator.

    A plan is value-dependent: make it outside ``jit`` with :meth:`plan` and pass the
    returned solver in (it is then a constant of the compiled program).
    """

    segments: int | None = eqx.field(default=None, static=True)
    planned: bool = eqx.field(default=False, static=True)
    nonlinear: ClassVar[bool] = False

    def __check_init__(self):
        if self.segments is not None and not (
            isinstance(self.segments, int) and 1 <= self.segments <= _march.MAX_SEGMENTS
        ):
            raise ValueError(
                f"segments must be an int in [1, {_march.MAX_SEGMENTS}] or None; "
                f"got {self.segments!r}"
            )
        if self.planned and self.segments is None:
            raise ValueError("planned=True needs segments (use March.plan)")

    @classmethod
    def plan(
        cls,
        G,
        *,
        r_wl,
        r_bl,
        r_src=0.0,
        r_sense=0.0,
        cell: AbstractCell = Passive(),
        dtype=None,
    ) -> March:
        """A :class:`March` whose segments bound the rounding growth for these concrete
        conductances ``G`` [S] and wires [Ohm] (arguments as in ``xbar.solve``).

        Per block of the marching family the amplification is at most
        ``exp(2 asinh(sqrt(max Rt max G) / 2))``; the segments are equal and short enough
        that their growth stays within ``xbar._march.LOG_GROWTH``.  Raises ``ValueError``
        for traced arrays, nonlinear cell stacks, or arrays that would need more than
        ``xbar._march.MAX_SEGMENTS`` segments (use :class:`Direct` or :class:`CG`).
        """
        arrays = (G, r_wl, r_bl, r_src, r_sense)
        if not all(_validate.is_concrete(a) for a in arrays):
            raise ValueError("March.plan needs concrete arrays (call it outside jit)")
        G = np.asarray(G, np.float64)
        if G.ndim != 2 or 0 in G.shape:
            raise ValueError(f"G must be a non-empty (M, N) array; got shape {G.shape}")
        M, N = G.shape
        g = cell.linear_conductance(G)
        if g is None:
            raise ValueError(f"March needs linear cell stacks; got {cell!r}")
        R_wl = np.broadcast_to(np.asarray(r_wl, np.float64), (M, N)).copy()
        R_bl = np.broadcast_to(np.asarray(r_bl, np.float64), (M, N)).copy()
        R_wl[:, 0] += np.broadcast_to(np.asarray(r_src, np.float64), (M,))
        R_bl[M - 1, :] += np.broadcast_to(np.asarray(r_sense, np.float64), (N,))
        if dtype is None:
            dtype = jnp.promote_types(jnp.result_type(jnp.asarray(G).dtype), jnp.float32)
        K = _march.plan(np.asarray(g), R_wl, R_bl, jnp.dtype(dtype).itemsize)
        if K is None:
            raise ValueError(
                "March.plan: the IR-drop parameter of this array is too large for at most "
                f"{_march.MAX_SEGMENTS} marching segments; use xbar.Direct() or xbar.CG()"
            )
        return cls(segments=K, planned=True)

    def num_segments(self, M: int, N: int) -> int:
        """Segments used on an ``(M, N)`` array."""
        if self.segments is not None:
            return self.segments
        return min(_march.MAX_SEGMENTS, -(-max(M, N) // MARCH_ROWS))

    def fast(self, tol: float, dtype) -> bool:
        """Whether the trusted fast path applies (planned, and ``tol`` well above the
        rounding that the planned growth can amplify)."""
        return _march.trusted(self.planned, tol, dtype)

    def init(self, operator, tol, max_iter):
        if operator.S.ndim != 2:
            raise ValueError("March needs linear cells (one conductance field for the batch)")
        S = lax.stop_gradient(operator.S)
        K = self.num_segments(*S.shape)
        return Operator(S, operator.R_wl, operator.R_bl), K, tol, min(max_iter, MAX_REFINE)

    def compute(self, state, b):
        operator, K, tol, max_iter = state
        z, k, ok, ASz = _march.solve_refined(
            operator.S, operator.R_wl, operator.R_bl, b, tol, max_iter, K, self.planned
        )
        broke = ~jnp.all(jnp.isfinite(z))
        return z, ASz, k, ok, broke

    def transpose(self, state):
        return state


class Auto(eqx.Module):
    """Picks a solver from the shapes alone (:meth:`select`); never reads values, so a
    call gets the same algorithm eagerly and under ``jit``.

    Rule: linear cells with at least ``max(8, min(M, N) / 2)`` inputs, whose
    factorisation fits in ``DIRECT_MAX_BYTES``: :class:`Direct` (the factorisation pays
    off over the batch); otherwise ``CG(Jacobi())``.  For batches of linear reads,
    ``March.plan(...)`` (an explicit step outside ``jit``) is faster still.
    """

    def select(
        self, M: int, N: int, n_rhs: int = 1, linear: bool = True, dtype=jnp.float64
    ) -> AbstractSolver:
        """The solver for ``n_rhs`` inputs on an ``(M, N)`` array (``linear``: linear
        cell stacks; ``dtype``: working precision)."""
        itemsize = jnp.dtype(dtype).itemsize
        fits = _direct.factor_bytes(M, N, itemsize) <= DIRECT_MAX_BYTES
        if linear and fits and n_rhs >= max(8, min(M, N) / 2):
            return Direct()
        return CG(Jacobi())

    def select_matrix(self, M: int, N: int, dtype=jnp.float64) -> AbstractSolver:
        """The solver of ``xbar.effective_matrix`` on an ``(M, N)`` array: the
        output-only march (``March()``, segments of ``MARCH_ROWS_MATRIX`` blocks), which
        forms no ``(M, M, N)`` field.  ``effective_matrix`` validates it with a probe
        input and, where that fails (rounding grown beyond the tolerance: a strong
        IR-drop parameter), computes the matrix by :class:`Direct` (or :class:`CG` where
        the factors do not fit), so the answer never depends on values being traced."""
        return March(segments=min(_march.MAX_SEGMENTS, -(-max(M, N) // MARCH_ROWS_MATRIX)))


def select(solver, M: int, N: int, n_rhs: int, linear: bool, dtype) -> AbstractSolver:
    """Resolve :class:`Auto` and validate a solver choice for a solve."""
    if isinstance(solver, Auto):
        solver = solver.select(M, N, n_rhs, linear, dtype)
    if not isinstance(solver, AbstractSolver):
        raise ValueError(
            "solver must be an xbar solver object (xbar.Auto(), xbar.CG(), xbar.Direct(), "
            f"xbar.March(...)); got {solver!r}"
        )
    if not linear and not solver.nonlinear:
        raise ValueError(
            f"solver={solver!r} needs linear cells (iv=None and a linear cell stack); use "
            "xbar.CG() or xbar.Direct() for nonlinear cells"
        )
    return solver
