"""Weight <-> conductance mapping: signed weights on differential pairs or on a reference column.

A crossbar stores a *logical* weight matrix ``W`` (M, N) in a *physical* conductance
array ``G`` (M, P). Two standard schemes:

* :class:`DifferentialMapping` (P = 2N): each weight on a pair of devices,
  ``w = (G+ - G-) / scale``, ``scale = (g_max - g_min) / w_max`` [S per weight unit];
  the device that is not needed sits at ``g_min``. Columns are interleaved
  (physical column ``2j`` holds ``G+``, ``2j+1`` holds ``G-``) so that a pair shares the
  same wire position. Source: the differential-pair mapping of Joshi et al.,
  Nat. Commun. 11, 2473 (2020) (aihwkit ``PCMLikeNoiseModel``: ``g_T = |w| / w_max``,
  ``G_T = g_T g_max``, the unused device at 0), generalised to ``g_min > 0``.
* :class:`ReferenceMapping` (P = N + 1): one device per weight plus one reference
  column at ``g_ref = (g_min + g_max) / 2`` in the last physical column; the output is
  ``i_j - i_ref``, so ``w = (G - g_ref) / scale`` with ``scale = (g_max - g_min) / (2 w_max)``.
  (Reference-column offset subtraction, e.g. Chen et al. / NeuroSim "two's complement
  by reference column"; UNCONFIRMED as to a single primary source.)

Both are linear: a read returns ``v @ G`` per physical column, and ``combine`` turns it
into the logical column currents ``i_logical = v @ (scale W)``. Weights outside
``[-w_max, w_max]`` are clipped to the window (the conductance window is the physics).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from xbar.devices._checks import check_less, check_nonnegative, check_positive


class _Window(eqx.Module):
    """Conductance window and weight range shared by the mappings (fields documented
    on :class:`DifferentialMapping`)."""

    g_min: float = 0.0
    g_max: float = 25e-6
    w_max: float = 1.0

    def __check_init__(self):
        check_nonnegative("g_min", self.g_min, "S")
        check_positive("g_max", self.g_max, "S")
        check_positive("w_max", self.w_max)
        check_less("g_min", self.g_min, "g_max", self.g_max, "S")

    def from_conductance(self, g: Float[Array, "*b m p"]) -> Float[Array, "*b m n"]:
        """Weights read back from conductances [S] (inverse of ``to_conductance``)."""
        return self.combine(g) / self.scale


class DifferentialMapping(_Window):
    """Signed weights on differential pairs ``(G+, G-)``; see the module docstring.

    Fields:
        g_min: conductance of an "off" device [S]. Default 0 S (aihwkit PCM: the
            unused device is at 0, Joshi 2020).
        g_max: largest programmed conductance [S]. Default 25 uS (Joshi 2020, aihwkit
            ``PCMLikeNoiseModel`` g_max).
        w_max: weight magnitude mapped to ``g_max`` [weight units]. Default 1.
    """


    @property
    def scale(self):
        """Conductance per weight unit [S] (logical column current = v @ (scale W))."""
        return (self.g_max - self.g_min) / self.w_max

    def n_physical(self, n: int) -> int:
        """Physical columns needed for ``n`` logical columns (2n)."""
        return 2 * n

    def to_conductance(self, w: Float[Array, "*b m n"]) -> Float[Array, "*b m p"]:
        """Target conductances [S] of the interleaved pairs for weights ``w``."""
        w = jnp.clip(jnp.asarray(w), -self.w_max, self.w_max)
        span = self.g_max - self.g_min
        g_pos = self.g_min + span * jnp.maximum(w, 0.0) / self.w_max
        g_neg = self.g_min + span * jnp.maximum(-w, 0.0) / self.w_max
        return jnp.stack([g_pos, g_neg], axis=-1).reshape(w.shape[:-1] + (2 * w.shape[-1],))

    def combine(self, i_phys: Float[Array, "*b p"]) -> Float[Array, "*b n"]:
        """Logical column quantities from physical ones: ``x[2j] - x[2j+1]``."""
        return i_phys[..., 0::2] - i_phys[..., 1::2]


class ReferenceMapping(_Window):
    """Signed weights on one device each plus a reference column; see the module docstring.

    Fields as :class:`DifferentialMapping`; the reference devices (last physical
    column) are programmed to ``g_ref = (g_min + g_max) / 2``."""


    @property
    def g_ref(self):
        """Reference conductance [S] (middle of the window)."""
        return 0.5 * (self.g_min + self.g_max)

    @property
    def scale(self):
        """Conductance per weight unit [S]."""
        return 0.5 * (self.g_max - self.g_min) / self.w_max

    def n_physical(self, n: int) -> int:
        """Physical columns needed for ``n`` logical columns (n + 1)."""
        return n + 1

    def to_conductance(self, w: Float[Array, "*b m n"]) -> Float[Array, "*b m p"]:
        """Target conductances [S]: weights in columns ``0..n-1``, ``g_ref`` in the last."""
        w = jnp.clip(jnp.asarray(w), -self.w_max, self.w_max)
        g = self.g_ref + self.scale * w
        ref = jnp.full(w.shape[:-1] + (1,), self.g_ref, g.dtype)
        return jnp.concatenate([g, ref], axis=-1)

    def combine(self, i_phys: Float[Array, "*b p"]) -> Float[Array, "*b n"]:
        """Logical column quantities: each column minus the reference column."""
        return i_phys[..., :-1] - i_phys[..., -1:]


Mapping = DifferentialMapping | ReferenceMapping

__all__ = ["DifferentialMapping", "Mapping", "ReferenceMapping"]
