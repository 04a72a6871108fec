"""Datasets that work offline, and the encodings that turn values into spike trains.

Two tasks need no download:

- :func:`load_digits`: the 8x8 handwritten digits bundled with scikit-learn (1797 images of
  the UCI "Optical Recognition of Handwritten Digits" set; Alpaydin & Kaynak, 1998), pixel
  values scaled to ``[0, 1]``, split into train and test sets with a seed (stratified by
  class). An SVC reaches about 97 % on it, a surrogate-gradient LIF network about 95 %.
- :func:`spike_patterns`: a temporal task generated in code. Each class is a frozen pattern
  in which every input emits exactly one spike, at a class-specific step; a sample is the
  pattern of its class with every spike moved by a jitter drawn from a rounded normal
  distribution, plus optional random extra spikes. Every input fires once in every class,
  so spike counts carry no information and only timing does (a task in the spirit of the
  hidden-pattern experiments of Masquelier et al., PLoS ONE 3:e1377, 2008, and of the
  tempotron tasks of Gütig & Sompolinsky, Nat. Neurosci. 9:420, 2006).

Encodings turn a value ``x`` in ``[0, 1]`` into a spike train of ``num_steps`` time steps
(shape ``(num_steps, *x.shape)``, entries 0.0 or 1.0):

- :class:`RateEncoding`: a Bernoulli draw per step with probability ``p = x * max_prob``,
  the discrete-time form of a Poisson process of rate ``r = -ln(1 - p) / dt``; its expected
  count is ``num_steps * x * max_prob``.
- :class:`LatencyEncoding`: one spike per input, earlier for larger values, at step
  ``k = round((1 - x) * (num_steps - 1))`` (linear time-to-first-spike code); inputs with
  ``x <= threshold`` stay silent.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

__all__ = [
    "AbstractEncoding",
    "RateEncoding",
    "LatencyEncoding",
    "Split",
    "load_digits",
    "spike_patterns",
]


class Split(eqx.Module):
    """One part of a data set: inputs ``x`` (first axis: samples) and integer labels ``y``."""

    x: Array
    y: Int[Array, " n"]

    def __check_init__(self):
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x and y must hold the same number of samples, got {self.x.shape[0]} "
                f"and {self.y.shape[0]}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])


class AbstractEncoding(eqx.Module):
    """Turns values in ``[0, 1]`` into spike trains of ``num_steps`` steps.

    ``encoding(x, key=key)`` returns an array of shape ``(num_steps, *x.shape)`` of 0.0 and 1.0
    in the dtype of ``x``; deterministic encodings ignore ``key``. Works under ``jit`` and
    ``vmap``.
    """

    num_steps: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "*shape"], *, key: PRNGKeyArray | None = None) -> Array:
        raise NotImplementedError


def _check_steps(num_steps) -> None:
    if not (isinstance(num_steps, int | np.integer) and num_steps >= 1):
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")


class RateEncoding(AbstractEncoding):
    """Bernoulli (discrete Poisson) rate code: a spike in each step with probability
    ``p = x * max_prob``; ``x`` is clipped to ``[0, 1]`` (values outside are out of range
    of the code, not of the data).

    Fields: ``num_steps`` (number of time steps), ``max_prob`` (spike probability per step of
    a value 1, in ``(0, 1]``).
    """

    num_steps: int = eqx.field(static=True)
    max_prob: float = 1.0

    def __check_init__(self):
        _check_steps(self.num_steps)
        if not 0.0 < self.max_prob <= 1.0:
            raise ValueError(f"max_prob must lie in (0, 1], got {self.max_prob}")

    def __call__(self, x, *, key=None):
        if key is None:
            raise ValueError("RateEncoding draws random spikes: pass key=jax.random.key(...)")
        x = jnp.asarray(x)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        p = jnp.clip(x.astype(dtype), 0.0, 1.0) * self.max_prob
        u = jax.random.uniform(key, (self.num_steps, *x.shape), dtype=dtype)
        return (u < p).astype(dtype)


class LatencyEncoding(AbstractEncoding):
    """Linear latency (time-to-first-spike) code: one spike at step
    ``k = round((1 - x) * (num_steps - 1))``, none where ``x <= threshold``.

    Fields: ``num_steps``, ``threshold`` (values at or below it stay silent, in ``[0, 1)``).
    """

    num_steps: int = eqx.field(static=True)
    threshold: float = 0.0

    def __check_init__(self):
        _check_steps(self.num_steps)
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must lie in [0, 1), got {self.threshold}")

    def __call__(self, x, *, key=None):
        x = jnp.asarray(x)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        x = jnp.clip(x.astype(dtype), 0.0, 1.0)
        k = jnp.round((1.0 - x) * (self.num_steps - 1)).astype(jnp.int32)
        steps = jnp.arange(self.num_steps).reshape((-1,) + (1,) * x.ndim)
        return ((steps == k) & (x > self.threshold)).astype(dtype)


def load_digits(*, test_fraction: float = 0.2, seed: int = 0, dtype=None) -> tuple[Split, Split]:
    """scikit-learn's 8x8 digits as ``(train, test)`` splits, ``x`` of shape ``(n, 64)`` in
    ``[0, 1]`` (pixel counts 0..16 divided by 16), ``y`` the digit 0..9.

    The split is stratified by class and fixed by ``seed``; ``test_fraction`` in ``(0, 1)``.
    ``dtype`` defaults to JAX's default float type.
    """
    # imported here: scikit-learn takes about a second to import and only this loader needs it
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    data = _sk_load_digits()
    x = data.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, data.target, test_size=test_fraction, random_state=seed, stratify=data.target
    )
    dtype = dtype or jnp.zeros(()).dtype
    return (
        Split(jnp.asarray(x_tr, dtype), jnp.asarray(y_tr, jnp.int32)),
        Split(jnp.asarray(x_te, dtype), jnp.asarray(y_te, jnp.int32)),
    )


def spike_patterns(
    key: PRNGKeyArray,
    *,
    n_classes: int = 4,
    n_per_class: int = 50,
    n_in: int = 20,
    num_steps: int = 50,
    jitter_steps: float = 1.0,
    noise_prob: float = 0.0,
    dtype=None,
) -> tuple[Split, Float[Array, "n_classes num_steps n_in"]]:
    """A temporal classification task: ``(data, templates)``.

    ``templates[c]`` is the frozen pattern of class ``c``: input ``j`` spikes once, at a step
    drawn uniformly in ``[0, num_steps)``. A sample of class ``c`` moves each spike by
    ``round(jitter_steps * N(0, 1))`` steps (clipped to the window, so every input still spikes
    exactly once) and adds independent extra spikes with probability ``noise_prob`` per input
    and step. ``data.x`` has shape ``(n_classes * n_per_class, num_steps, n_in)``, samples in
    random order; ``data.y`` holds the class.
    """
    for name, value, low in (
        ("n_classes", n_classes, 2),
        ("n_per_class", n_per_class, 1),
        ("n_in", n_in, 1),
        ("num_steps", num_steps, 2),
    ):
        if not (isinstance(value, int | np.integer) and value >= low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not jitter_steps >= 0.0:
        raise ValueError(f"jitter_steps must be >= 0, got {jitter_steps}")
    if not 0.0 <= noise_prob < 1.0:
        raise ValueError(f"noise_prob must lie in [0, 1), got {noise_prob}")
    dtype = dtype or jnp.zeros(()).dtype
    k_tpl, k_jit, k_noise, k_perm = jax.random.split(key, 4)
    t_tpl = jax.random.randint(k_tpl, (n_classes, n_in), 0, num_steps)
    y = jnp.repeat(jnp.arange(n_classes, dtype=jnp.int32), n_per_class)
    shift = jnp.round(jitter_steps * jax.random.normal(k_jit, (y.shape[0], n_in)))
    t = jnp.clip(t_tpl[y] + shift.astype(jnp.int32), 0, num_steps - 1)
    steps = jnp.arange(num_steps)
    x = (steps[None, :, None] == t[:, None, :]).astype(dtype)
    extra = jax.random.uniform(k_noise, x.shape) < noise_prob
    x = jnp.maximum(x, extra.astype(dtype))
    templates = (steps[None, :, None] == t_tpl[:, None, :]).astype(dtype)
    perm = jax.random.permutation(k_perm, y.shape[0])
    return Split(x[perm], y[perm]), templates
