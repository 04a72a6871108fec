"""Weight <-> conductance mapping: signed weights on differential pairs or on a reference column.

A crossbar stores a *logical* weight matrix ``W`` (M, N) in a *physical* conductance
array ``G`` (M, P). Two standard schemes, both members of :class:`AbstractMapping`:

* :class:`DifferentialMapping` (P = 2N): each weight on a pair of devices,
  ``w = (G+ - G-) / scale``, ``scale = (g_max - g_min) / w_max`` [S per weight unit];
  the device that is not needed sits at ``g_min``. Columns are interleaved
  (physical column ``2j`` holds ``G+``, ``2j+1`` holds ``G-``) so that a pair shares the
  same wire position. Source: the differential-pair mapping of Joshi et al.,
  Nat. Commun. 11, 2473 (2020) (also aihwkit's ``PCMLikeNoiseModel``: ``g_T = |w| / w_max``,
  ``G_T = g_T g_max``, the unused device at 0), generalised to ``g_min > 0``.
* :class:`ReferenceMapping` (P = N + 1): one device per weight plus one reference
  column at ``g_ref = (g_min + g_max) / 2`` in the last physical column; the output is
  ``i_j - i_ref``, so ``w = (G - g_ref) / scale`` with ``scale = (g_max - g_min) / (2 w_max)``.
  (Reference-column offset subtraction as used for signed weights on single devices,
  e.g. in the NeuroSim framework, Chen, Peng & Yu, IEEE TCAD 37(12), 3067 (2018);
  UNCONFIRMED as to a single primary source.)

Both are linear: a read returns ``v @ G`` per physical column, and ``combine`` turns it
into the logical column currents ``i_logical = v @ (scale W)``. :meth:`~AbstractMapping.
to_conductance` clips weights outside ``[-w_max, w_max]`` to the window (the conductance
window is the physics); callers that must not clip (``xbar.program``) check the range first.

A new mapping is one final subclass of :class:`AbstractMapping` that gives the three
fields and the methods marked abstract; ``tests/xbar/test_contracts.py`` runs every
member through the same properties.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from xbar.devices._checks import check_less, check_nonnegative, check_positive, check_range
from xbar.devices._math import saturate


class AbstractMapping(eqx.Module):
    """How signed logical weights ``(M, N)`` sit on a non-negative conductance array ``(M, P)``.

    Abstract fields:
        g_min: conductance of an "off" device [S], ``>= 0``.
        g_max: largest programmed conductance [S], ``> g_min``.
        w_max: weight magnitude that uses the full window [weight units], ``> 0``.

    Abstract methods: ``scale`` (S per weight unit), ``n_physical``/``n_logical`` (column
    counts), ``to_conductance`` (weights -> target conductances), ``combine`` (physical ->
    logical column quantities, linear) and ``combine_variance`` (variances of independent
    per-cell terms -> variances of the logical columns)."""

    g_min: eqx.AbstractVar[float]
    g_max: eqx.AbstractVar[float]
    w_max: eqx.AbstractVar[float]

    def __check_init__(self):
        check_nonnegative("g_min", self.g_min, "S")
        check_positive("g_max", self.g_max, "S")
        check_positive("w_max", self.w_max)
        check_less("g_min", self.g_min, "g_max", self.g_max, "S")

    @property
    @abc.abstractmethod
    def scale(self):
        """Conductance per weight unit [S] (logical column current = ``v @ (scale W)``)."""

    @abc.abstractmethod
    def n_physical(self, n: int) -> int:
        """Physical columns needed for ``n`` logical columns."""

    @abc.abstractmethod
    def n_logical(self, p: int) -> int:
        """Logical columns held by ``p`` physical columns (inverse of ``n_physical``)."""

    @abc.abstractmethod
    def to_conductance(self, w: Float[Array, "*b m n"]) -> Float[Array, "*b m p"]:
        """Target conductances [S] for weights ``w`` (clipped to ``[-w_max, w_max]``)."""

    @abc.abstractmethod
    def combine(self, i_phys: Float[Array, "*b p"]) -> Float[Array, "*b n"]:
        """Logical column quantities from physical ones (linear)."""

    @abc.abstractmethod
    def combine_variance(self, var_phys: Float[Array, "*b p"]):
        """``(var, var_shared)``: variances [unit^2] of the logical columns from variances
        of independent per-physical-column terms. ``var`` ``(*b, n)`` is the part
        independent between logical columns; ``var_shared`` ``(*b, 1)`` (or None) is a part
        common to every logical column of a read (subtracted, e.g. a reference column)."""

    def from_conductance(self, g: Float[Array, "*b m p"]) -> Float[Array, "*b m n"]:
        """Weights read back from conductances [S] (inverse of ``to_conductance``)."""
        return self.combine(g) / self.scale

    def check_weights(self, name: str, w) -> None:
        """Raise ``ValueError`` unless the concrete weights ``w`` are finite and within
        ``[-w_max, w_max]`` (traced values are left to the caller's ``eqx.error_if``)."""
        check_range(name, w, -self.w_max * (1 + 1e-9), self.w_max * (1 + 1e-9))


class DifferentialMapping(AbstractMapping):
    """Signed weights on differential pairs ``(G+, G-)``; see the module docstring.

    Fields:
        g_min: conductance of an "off" device [S]. Default 0 S (aihwkit PCM: the
            unused device is at 0, Joshi 2020).
        g_max: largest programmed conductance [S]. Default 25 uS (Joshi 2020, aihwkit
            ``PCMLikeNoiseModel`` g_max).
        w_max: weight magnitude mapped to ``g_max`` [weight units]. Default 1.
    """

    g_min: float = 0.0
    g_max: float = 25e-6
    w_max: float = 1.0

    @property
    def scale(self):
        """``(g_max - g_min) / w_max`` [S per weight unit]."""
        return (self.g_max - self.g_min) / self.w_max

    def n_physical(self, n: int) -> int:
        """``2 n``."""
        return 2 * n

    def n_logical(self, p: int) -> int:
        """``p // 2``."""
        return p // 2

    def to_conductance(self, w: Float[Array, "*b m n"]) -> Float[Array, "*b m p"]:
        """Target conductances [S] of the interleaved pairs for weights ``w``."""
        w = saturate(jnp.asarray(w), -self.w_max, self.w_max)
        span = self.g_max - self.g_min
        g_pos = self.g_min + span * jnp.maximum(w, 0.0) / self.w_max
        g_neg = self.g_min + span * jnp.maximum(-w, 0.0) / self.w_max
        return jnp.stack([g_pos, g_neg], axis=-1).reshape(w.shape[:-1] + (2 * w.shape[-1],))

    def combine(self, i_phys: Float[Array, "*b p"]) -> Float[Array, "*b n"]:
        """``x[2j] - x[2j+1]``."""
        pairs = i_phys.reshape(i_phys.shape[:-1] + (i_phys.shape[-1] // 2, 2))
        return pairs[..., 0] - pairs[..., 1]

    def combine_variance(self, var_phys):
        """The two devices of a pair are independent: ``var[2j] + var[2j+1]``, nothing shared."""
        pairs = var_phys.reshape(var_phys.shape[:-1] + (var_phys.shape[-1] // 2, 2))
        return pairs[..., 0] + pairs[..., 1], None


class ReferenceMapping(AbstractMapping):
    """Signed weights on one device each plus a reference column; see the module docstring.

    Fields as :class:`DifferentialMapping`; the reference devices (last physical
    column) are programmed to ``g_ref = (g_min + g_max) / 2``."""

    g_min: float = 0.0
    g_max: float = 25e-6
    w_max: float = 1.0

    @property
    def g_ref(self):
        """Reference conductance [S] (middle of the window)."""
        return 0.5 * (self.g_min + self.g_max)

    @property
    def scale(self):
        """``(g_max - g_min) / (2 w_max)`` [S per weight unit]."""
        return 0.5 * (self.g_max - self.g_min) / self.w_max

    def n_physical(self, n: int) -> int:
        """``n + 1``."""
        return n + 1

    def n_logical(self, p: int) -> int:
        """``p - 1``."""
        return p - 1

    def to_conductance(self, w: Float[Array, "*b m n"]) -> Float[Array, "*b m p"]:
        """Weights in columns ``0..n-1``, ``g_ref`` in the last."""
        w = saturate(jnp.asarray(w), -self.w_max, self.w_max)
        g = self.g_ref + self.scale * w
        ref = jnp.full(w.shape[:-1] + (1,), self.g_ref, g.dtype)
        return jnp.concatenate([g, ref], axis=-1)

    def combine(self, i_phys: Float[Array, "*b p"]) -> Float[Array, "*b n"]:
        """Each column minus the reference column."""
        return i_phys[..., :-1] - i_phys[..., -1:]

    def combine_variance(self, var_phys):
        """Each weight device independently; the reference cell's variance is common to
        every logical column of a read."""
        return var_phys[..., :-1], var_phys[..., -1:]


Mapping = AbstractMapping

__all__ = ["AbstractMapping", "DifferentialMapping", "Mapping", "ReferenceMapping"]
