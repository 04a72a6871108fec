"""Local learning rules as pure ``(init, update)`` transformations.

A rule is a small Equinox module with two pure methods, in the style of optax's
gradient transformations (Babuschkin et al., "The DeepMind JAX Ecosystem", 2020):

* ``init(shape, dtype=None) -> state``: the rule's state (synaptic traces, eligibility)
  for a synapse array of ``shape = (M, N)`` (M presynaptic rows, N postsynaptic columns),
* ``update(dw, state, pre, post, dt, *, weights=None, reward=None, key=None) ->
  (dw, state)``: one time step of length ``dt`` [s] with the spikes of this step
  (``pre`` of shape ``(M,)``, ``post`` of shape ``(N,)``, 0/1).

``dw`` is the weight change *asked for* so far in this step (a ``(M, N)`` array in
weight units, or ``None`` when nothing has asked yet). A rule that generates plasticity
(the STDP family in :mod:`.stdp`) adds its own request to it; a modifier
(:class:`Scale`, :class:`SoftBound`, :class:`HardBound`) transforms it. :func:`chain`
runs rules one after another, so ``chain(PairSTDP(...), SoftBound(0, 1))`` is a
weight-dependent pair rule. A rule never changes a weight: the asked-for change goes to
the array through :mod:`xbar.learning.transfer`, which reports what the devices
delivered.

Trace convention (all rules): within a step the traces first decay by
``exp(-dt / tau)``, then the step's weight change is computed from the decayed traces
and the step's spikes, then the spikes are added to the traces. A trace therefore holds
the spikes of earlier steps only, and a pre and a post spike in the same step do not
interact (Morrison, Diesmann & Gerstner, Biol. Cybern. 98:459, 2008, section 4.1).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = [
    "AbstractRule",
    "Chain",
    "HardBound",
    "Scale",
    "SoftBound",
    "chain",
    "run_rule",
]


def _check_spikes(pre, post, shape=None):
    pre = jnp.asarray(pre)
    post = jnp.asarray(post)
    if pre.ndim != 1 or post.ndim != 1:
        raise ValueError(
            f"pre and post must be 1-D spike vectors, got shapes {pre.shape} and {post.shape}"
        )
    if shape is not None and (pre.shape[0], post.shape[0]) != tuple(shape):
        raise ValueError(
            f"spikes of shapes {pre.shape} and {post.shape} do not match the synapse array "
            f"{tuple(shape)}"
        )
    return pre, post


def _check_dt(dt):
    if isinstance(dt, (int, float)) and not dt > 0:
        raise ValueError(f"dt must be positive [s], got {dt}")


def decay(dt, tau):
    """Decay factor ``exp(-dt / tau)`` of a trace over one step."""
    return jnp.exp(-jnp.asarray(dt) / tau)


def add(dw, extra):
    """``dw + extra`` where ``dw`` may be ``None`` (nothing asked yet)."""
    return extra if dw is None else dw + extra


class AbstractRule(eqx.Module):
    """Interface of a local learning rule (module docstring)."""

    @abc.abstractmethod
    def init(self, shape: tuple[int, int], dtype=None):
        """The rule's state for a synapse array of ``shape = (M, N)``."""

    @abc.abstractmethod
    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        """One step: returns ``(dw, state)`` (module docstring)."""


class Chain(AbstractRule):
    """Rules applied one after another (build with :func:`chain`); the state is the
    tuple of the members' states."""

    rules: tuple

    def init(self, shape, dtype=None):
        return tuple(r.init(shape, dtype) for r in self.rules)

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        new = []
        for i, (r, s) in enumerate(zip(self.rules, state, strict=True)):
            k = None if key is None else _fold(key, i)
            dw, s = r.update(dw, s, pre, post, dt, weights=weights, reward=reward, key=k)
            new.append(s)
        return dw, tuple(new)


def _fold(key, i):
    return jax.random.fold_in(key, i)


def chain(*rules: AbstractRule) -> Chain:
    """Compose rules: each receives the change asked for by the ones before it."""
    for r in rules:
        if not isinstance(r, AbstractRule):
            raise ValueError(f"chain takes learning rules, got {type(r).__name__}")
    return Chain(rules=tuple(rules))


class _Stateless(AbstractRule):
    def init(self, shape, dtype=None):
        return ()


class Scale(_Stateless):
    """Multiply the asked-for change by ``factor`` (a learning rate) [-]."""

    factor: float

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        return (None if dw is None else dw * self.factor), state


def _need_weights(weights, name):
    if weights is None:
        raise ValueError(f"{name} needs the present weights (weights=None given)")
    return jnp.asarray(weights)


class SoftBound(_Stateless):
    """Weight-dependent (multiplicative, soft-bound) STDP.

    ``dw+ <- dw+ ((w_max - w) / (w_max - w_min))^mu`` for potentiation and
    ``dw- <- dw- ((w - w_min) / (w_max - w_min))^mu`` for depression, so changes shrink
    towards the bounds (van Rossum, Bi & Turrigiano, J. Neurosci. 20:8812, 2000, mu = 1;
    Guetig, Aharonov, Rotter & Sompolinsky, J. Neurosci. 23:3697, 2003, Eq. 3, 0 <= mu
    <= 1; mu = 0 is the additive rule). Needs ``weights``; weights outside the bounds are
    treated as at the bound.
    """

    w_min: float = 0.0
    w_max: float = 1.0
    mu: float = 1.0

    def __check_init__(self):
        if not self.w_max > self.w_min:
            raise ValueError(f"w_max ({self.w_max}) must exceed w_min ({self.w_min})")
        if not 0.0 <= self.mu:
            raise ValueError(f"mu must be >= 0, got {self.mu}")

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        if dw is None:
            return dw, state
        w = _need_weights(weights, "SoftBound")
        span = self.w_max - self.w_min
        up = jnp.clip((self.w_max - w) / span, 0.0, 1.0) ** self.mu
        down = jnp.clip((w - self.w_min) / span, 0.0, 1.0) ** self.mu
        return jnp.where(dw > 0, dw * up, dw * down), state


class HardBound(_Stateless):
    """Additive STDP with hard bounds: the asked-for change is cut so that ``w + dw``
    stays in ``[w_min, w_max]`` (Song, Miller & Abbott, Nat. Neurosci. 3:919, 2000).
    Needs ``weights``."""

    w_min: float = 0.0
    w_max: float = 1.0

    def __check_init__(self):
        if not self.w_max > self.w_min:
            raise ValueError(f"w_max ({self.w_max}) must exceed w_min ({self.w_min})")

    def update(self, dw, state, pre, post, dt, *, weights=None, reward=None, key=None):
        if dw is None:
            return dw, state
        w = _need_weights(weights, "HardBound")
        return jnp.clip(w + dw, self.w_min, self.w_max) - w, state


def run_rule(rule: AbstractRule, pre_t, post_t, dt, *, weights=None, reward_t=None, key=None):
    """Run ``rule`` over spike trains ``pre_t (T, M)``, ``post_t (T, N)`` with fixed
    weights; returns the summed asked-for change ``(M, N)`` and the final state.
    (A convenience for studies and tests: with ideal synapses the weights would move.)"""
    pre_t = jnp.asarray(pre_t)
    post_t = jnp.asarray(post_t)
    shape = (pre_t.shape[1], post_t.shape[1])
    dtype = jnp.result_type(pre_t, post_t, float)
    state = rule.init(shape, dtype)
    n = pre_t.shape[0]
    rew = jnp.zeros((n,), dtype) if reward_t is None else jnp.asarray(reward_t)
    keys = jax.random.split(key, n) if key is not None else None

    def body(carry, xs):
        total, st = carry
        pre, post, r, k = xs
        dw, st = rule.update(
            None,
            st,
            pre,
            post,
            dt,
            weights=weights,
            reward=r if reward_t is not None else None,
            key=k,
        )
        dw = jnp.zeros(shape, dtype) if dw is None else dw
        return (total + dw, st), None

    (total, state), _ = jax.lax.scan(
        body, (jnp.zeros(shape, dtype), state), (pre_t, post_t, rew, keys)
    )
    return total, state
