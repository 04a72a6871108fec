"""xbar.tune_allocator: fewer page faults for repeated compiled calls with large temporaries,
and clear errors for bad settings."""

import platform
import subprocess
import sys
import textwrap

import pytest

import xbar

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import jax, jax.numpy as jnp
    import xbar
    if sys.argv[1] == "tuned":
        assert xbar.tune_allocator()
    # the gradient of a small spiking layer over 25 steps: temporaries of 15 MB (the
    # clipped input) and a few MB (the scan's residuals), freed at the end of every call
    x = (jax.random.uniform(jax.random.key(0), (25, 192, 784)) < 0.1).astype(jnp.float32)
    w = jax.random.normal(jax.random.key(1), (784, 256)) * 0.05
    def loss(w, x):
        i = jnp.clip(x, -1.0, 1.0) @ w
        def step(v, it):
            v = 0.9 * v + it
            return v * (v < 1.0), jnp.tanh(v)
        _, out = jax.lax.scan(step, jnp.zeros(i.shape[1:]), i)
        return jnp.sum(out ** 2)
    f = jax.jit(jax.grad(loss))
    for _ in range(10):  # warm-up: compile, and let the heap reach the program's peak
        f(w, x).block_until_ready()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        f(w, x).block_until_ready()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10)
    """
)


@pytest.mark.slow  # a memory-performance measurement (page faults), sensitive to the load
@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_tuned_allocator_serves_repeated_temporaries_without_page_faults():
    # ~4000 pages of temporaries: the default allocator hands them back and faults them in
    # again at every call, the tuned one keeps them
    faults = {}
    for mode in ("default", "tuned"):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
        )
        faults[mode] = float(out.stdout.strip().splitlines()[-1])
    if faults["default"] < 2000:
        pytest.skip(f"this C library keeps the memory by itself ({faults['default']} faults)")
    # (the tuned count varies with the machine's load, from 0 to about a third)
    assert faults["tuned"] < 0.5 * faults["default"]


def test_settings_are_accepted_where_the_c_library_is_glibc():
    # mallopt accepts every setting on glibc (True); elsewhere nothing is changed (False)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert xbar.tune_allocator() is glibc


def test_bad_settings_name_the_parameter():
    with pytest.raises(ValueError, match="mmap_threshold"):
        xbar.tune_allocator(mmap_threshold=64 * 1024 * 1024)
    with pytest.raises(ValueError, match="trim_threshold"):
        xbar.tune_allocator(trim_threshold=-1)
    with pytest.raises(ValueError, match="top_pad"):
        xbar.tune_allocator(top_pad=1.5)
