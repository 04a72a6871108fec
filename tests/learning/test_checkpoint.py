"""Checkpoints: a training run killed with SIGKILL after its first checkpoint resumes and ends
bit for bit where an uninterrupted run ends; the file format round-trips exactly."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from xbar.learning import SpikingMLP, fit, load_checkpoint, save_checkpoint, spike_patterns
from xbar.learning.checkpoint import read_header
from xbar.learning.train import CHECKPOINT_NAME

# The same run in the child process and here; the pause after each epoch leaves the parent
# time to kill the child between two checkpoints.
RUN = textwrap.dedent(
    """
    import jax, optax
    jax.config.update("jax_enable_x64", True)
    from xbar.learning import SpikingMLP, fit, spike_patterns

    def run(checkpoint_dir, on_epoch_end=None, epochs=5):
        data, _ = spike_patterns(jax.random.key(0), n_classes=3, n_per_class=16, n_in=8,
                                 num_steps=12)
        model = SpikingMLP.build((8, 10, 3), key=jax.random.key(1))
        return fit(model, data, optax.adam(1e-2), epochs=epochs, batch_size=12,
                   key=jax.random.key(2), checkpoint_dir=checkpoint_dir,
                   on_epoch_end=on_epoch_end, progress=False)
    """
)


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(tree) if hasattr(a, "dtype")]


def test_killed_run_resumes_bit_identical(tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    child = RUN + "\nimport time, sys\nrun(sys.argv[1], lambda e, h: time.sleep(0.5))\n"
    proc = subprocess.Popen([sys.executable, "-c", child, str(ckpt_dir)], cwd=tmp_path)
    path = ckpt_dir / CHECKPOINT_NAME
    deadline = time.monotonic() + 300
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = read_header(path)["epoch"]
    assert 1 <= killed_at < 5  # killed mid-run, after the first checkpoint

    namespace = {}
    exec(RUN, namespace)
    seen = []
    resumed = namespace["run"](ckpt_dir, lambda e, h: seen.append(e))
    assert seen == list(range(killed_at + 1, 6))  # resumed after the last completed epoch
    straight = namespace["run"](None)
    for a, b in zip(
        _leaves((resumed.model, resumed.opt_state)),
        _leaves((straight.model, straight.opt_state)),
        strict=True,
    ):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    for name in ("loss", "accuracy"):
        assert resumed.history[name] == straight.history[name]
    # a finished run started again does no more work and returns the same parameters
    again = namespace["run"](ckpt_dir, lambda e, h: seen.append(e))
    assert seen == list(range(killed_at + 1, 6)) and again.epochs == 5
    assert all(
        a.tobytes() == b.tobytes()
        for a, b in zip(_leaves(again.model), _leaves(resumed.model), strict=True)
    )
    # another key cannot continue this checkpoint
    data, _ = spike_patterns(jax.random.key(0), n_classes=3, n_per_class=16, n_in=8, num_steps=12)
    model = SpikingMLP.build((8, 10, 3), key=jax.random.key(1))
    with pytest.raises(ValueError, match="another key"):
        fit(
            model,
            data,
            optax.adam(1e-2),
            epochs=5,
            batch_size=12,
            key=jax.random.key(3),
            checkpoint_dir=ckpt_dir,
            progress=False,
        )


def test_checkpoint_file_round_trips_exactly(tmp_path):
    tree = {
        "w": jax.random.normal(jax.random.key(0), (3, 4)),
        "f32": jnp.array([1.0 / 3.0], jnp.float32),
        "count": jnp.array(7, jnp.int32),
        "none": None,
    }
    header = {"epoch": 3, "history": {"loss": [0.1 + 0.2, 1 / 3]}}
    path = tmp_path / "sub" / "c.eqx"
    save_checkpoint(path, tree, header)
    like = jax.tree_util.tree_map(jnp.zeros_like, tree)
    back, head = load_checkpoint(path, like)
    assert head == header  # floats survive JSON exactly (shortest round-trip repr)
    for k in ("w", "f32", "count"):
        assert (
            back[k].dtype == tree[k].dtype
            and np.asarray(back[k]).tobytes() == np.asarray(tree[k]).tobytes()
        )
    assert sorted(os.listdir(path.parent)) == ["c.eqx"]  # no temporary file left
    (tmp_path / "junk.eqx").write_bytes(b"not a checkpoint\n")
    with pytest.raises(ValueError, match="not an xbar checkpoint"):
        load_checkpoint(tmp_path / "junk.eqx", like)
