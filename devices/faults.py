"""Stuck-at faults: devices frozen at the ON (LRS) or OFF (HRS) conductance.

Model: an independent Bernoulli draw per device at
construction of an array; a stuck-ON device (SA1) always reads ``G_on`` (``G_max``),
a stuck-OFF device (SA0) always reads ``G_off`` (``G_min``), and programming pulses
do not change it. The two faults are mutually exclusive: one uniform draw ``u`` per
device gives stuck-ON for ``u < p_on`` and stuck-OFF for ``p_on <= u < p_on + p_off``.

Default rates: the pair used throughout the fault-tolerance literature,
SA1 (stuck-ON) 9.04 % and SA0 (stuck-OFF) 1.75 % (Chen et al., IEEE Trans. Comput.
2015) -- UNCONFIRMED: no primary source was read. They are of the order measured in
ReRAM test arrays (9.8 % / 13.5 % corrupt devices, Gong & Rasch et al., IEDM 2022;
"around 10 %" faulty, Electronics 10(19), 2427, 2021). Set both to 0 for a clean array.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int8, PRNGKeyArray

from ._checks import check_range

HEALTHY = 0
STUCK_ON = 1
STUCK_OFF = 2


class StuckAtFaults(eqx.Module):
    """Stuck-at-ON / stuck-at-OFF faults with given rates (see the module docstring).

    Fields:
        p_on: probability that a device is stuck ON (SA1, at ``G_on``) [-].
        p_off: probability that a device is stuck OFF (SA0, at ``G_off``) [-].
    """

    p_on: float = 0.0904  # UNCONFIRMED (Chen et al. 2015 as quoted in the literature)
    p_off: float = 0.0175  # UNCONFIRMED

    def __check_init__(self):
        check_range("p_on", self.p_on, 0.0, 1.0)
        check_range("p_off", self.p_off, 0.0, 1.0)
        check_range("p_on + p_off", jnp.asarray(self.p_on) + jnp.asarray(self.p_off), 0.0, 1.0)

    def draw(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Int8[Array, "*shape"]:
        """Fault mask of ``shape``: int8, 0 healthy, 1 stuck-ON, 2 stuck-OFF."""
        u = jax.random.uniform(key, tuple(shape))
        on = u < self.p_on
        off = (~on) & (u < self.p_on + self.p_off)
        return jnp.where(on, STUCK_ON, jnp.where(off, STUCK_OFF, HEALTHY)).astype(jnp.int8)

    @staticmethod
    def apply(
        g: Float[Array, "*shape"],
        mask: Int8[Array, "*shape"],
        g_on: float | Float[Array, "*shape"],
        g_off: float | Float[Array, "*shape"],
    ) -> Float[Array, "*shape"]:
        """Conductances [S] with stuck cells replaced: ``g_on`` where stuck-ON,
        ``g_off`` where stuck-OFF, ``g`` elsewhere (gradient flows to healthy cells)."""
        g = jnp.asarray(g)
        return jnp.where(mask == STUCK_ON, g_on, jnp.where(mask == STUCK_OFF, g_off, g))

    @staticmethod
    def freeze(old_state, new_state, mask: Int8[Array, "*shape"]):
        """State pytree after a pulse with stuck cells kept at ``old_state``.

        Every leaf of the state must broadcast against ``mask`` (device array shape)."""
        stuck = mask != HEALTHY
        return jax.tree.map(lambda o, n: jnp.where(stuck, o, n), old_state, new_state)

    @staticmethod
    def stuck_fraction(mask: Int8[Array, "*shape"]) -> tuple[Array, Array]:
        """Observed fractions (stuck-ON, stuck-OFF) of a mask."""
        return jnp.mean(mask == STUCK_ON), jnp.mean(mask == STUCK_OFF)


__all__ = ["HEALTHY", "STUCK_OFF", "STUCK_ON", "StuckAtFaults"]
