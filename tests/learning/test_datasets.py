"""Offline datasets and spike encodings: shapes, statistics against the requested
distributions, determinism of keys and seeds, jit/vmap, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from xbar.learning import (
    LatencyEncoding,
    RateEncoding,
    load_digits,
    spike_patterns,
)


def test_digits_split_is_stratified_complete_and_seeded():
    train, test = load_digits(test_fraction=0.25, seed=3)
    assert train.x.shape[1] == 64 and len(train) + len(test) == 1797
    assert abs(len(test) - 0.25 * 1797) <= 1
    x = np.concatenate([train.x, test.x])
    assert x.min() == 0.0 and x.max() == 1.0
    # scikit-learn's pixel counts are integers 0..16: scaled by 1/16 exactly
    np.testing.assert_array_equal(x * 16, np.round(x * 16))
    # stratified: every class within one sample of its share in the test set
    counts = np.bincount(np.asarray(test.y), minlength=10)
    share = np.bincount(np.concatenate([train.y, test.y]), minlength=10) * 0.25
    assert np.all(np.abs(counts - share) <= 1)
    again, _ = load_digits(test_fraction=0.25, seed=3)
    other, _ = load_digits(test_fraction=0.25, seed=4)
    np.testing.assert_array_equal(train.x, again.x)
    assert not np.array_equal(train.y, other.y)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.0)


def test_rate_encoding_counts_are_binomial():
    enc = RateEncoding(num_steps=40, max_prob=0.5)
    x = jnp.array([0.0, 0.3, 1.0])
    keys = jax.random.split(jax.random.key(0), 4000)
    s = jax.jit(jax.vmap(lambda k: enc(x, key=k)))(keys)
    assert s.shape == (4000, 40, 3) and set(np.unique(s)) <= {0.0, 1.0}
    counts = np.asarray(s.sum(axis=1))
    p = np.asarray(x) * 0.5
    mean, var = 40 * p, 40 * p * (1 - p)
    # 5 standard errors of the mean of 4000 binomial counts
    assert np.all(np.abs(counts.mean(0) - mean) <= 5 * np.sqrt(var / 4000) + 1e-12)
    assert counts[:, 0].max() == 0
    np.testing.assert_array_equal(enc(x, key=keys[0]), enc(x, key=keys[0]))
    with pytest.raises(ValueError, match="key"):
        enc(x)
    with pytest.raises(ValueError, match="max_prob"):
        RateEncoding(num_steps=10, max_prob=1.5)
    with pytest.raises(ValueError, match="num_steps"):
        RateEncoding(num_steps=0)


def test_latency_encoding_places_one_spike_at_the_linear_latency():
    enc = LatencyEncoding(num_steps=11, threshold=0.05)
    x = jnp.array([[1.0, 0.5, 0.0], [0.04, 0.9, 0.21]])
    s = jax.jit(jax.vmap(enc))(x)
    assert s.shape == (2, 11, 3)
    # expected step: round((1 - x) * 10); silent at or below the threshold
    expected = {(0, 0): 0, (0, 1): 5, (1, 1): 1, (1, 2): 8}
    for (b, j), k in expected.items():
        assert s[b, :, j].sum() == 1 and s[b, k, j] == 1
    assert s[0, :, 2].sum() == 0 and s[1, :, 0].sum() == 0
    with pytest.raises(ValueError, match="threshold"):
        LatencyEncoding(num_steps=5, threshold=1.0)


def test_spike_patterns_carry_information_only_in_timing():
    data, templates = spike_patterns(
        jax.random.key(1), n_classes=3, n_per_class=200, n_in=30, num_steps=60, jitter_steps=2.0
    )
    assert data.x.shape == (600, 60, 30) and templates.shape == (3, 60, 30)
    # every input spikes exactly once in every sample: counts say nothing about the class
    np.testing.assert_array_equal(data.x.sum(axis=1), 1.0)
    assert np.all(np.bincount(np.asarray(data.y)) == 200)
    # jitter: spike-time shift against the template ~ N(0, 2^2), rounded (var 4 + 1/12)
    t = np.argmax(np.asarray(data.x), axis=1)
    t0 = np.argmax(np.asarray(templates), axis=1)[np.asarray(data.y)]
    inside = (t0 > 10) & (t0 < 49)  # far from the clipped window edges
    d = (t - t0)[inside]
    assert abs(d.mean()) < 0.1 and abs(d.var() - (4 + 1 / 12)) < 0.3
    clean, tpl = spike_patterns(jax.random.key(2), n_per_class=3, jitter_steps=0.0)
    np.testing.assert_array_equal(clean.x, tpl[clean.y])
    noisy, _ = spike_patterns(jax.random.key(2), n_per_class=100, noise_prob=0.1, jitter_steps=0)
    extra = float(noisy.x.sum()) / noisy.x.size
    assert abs(extra - (0.1 + 0.9 / 50)) < 0.005
    with pytest.raises(ValueError, match="n_classes"):
        spike_patterns(jax.random.key(0), n_classes=1)
    with pytest.raises(ValueError, match="jitter_steps"):
        spike_patterns(jax.random.key(0), jitter_steps=-1.0)
