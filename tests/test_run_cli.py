"""Run directories, checkpoints, resume, and the CLI's handling of bad input."""
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from surrogate import checkpoint, cli, run
from surrogate.algos import ppo
from surrogate.errors import CheckpointError
from tb_events import tensorboard_scalars

SMALL = ppo.Config(total_steps=256 * 12)  # 12 updates of 256 steps
SMALL_FLAGS = ["--total-steps", str(256 * 12)]


def _leaves_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "full"
    result = run.train_in_dir(d, "ppo", SMALL, seeds=2, checkpoint_every=4)
    return d, result


def test_run_dir_contents(uninterrupted):
    d, result = uninterrupted
    for name in ("config.json", "metrics.csv", "eval.json", "curve.png", "checkpoints/latest.msgpack"):
        assert (d / name).is_file(), name
    assert any((d / "tb").iterdir())
    rows = (d / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 12 and rows[0].startswith("seed,update,env_steps,episode_return")
    saved = json.loads((d / "config.json").read_text())
    assert saved["config"]["total_steps"] == 256 * 12 and saved["seeds"] == 2


def test_interrupted_and_resumed_run_equals_uninterrupted(uninterrupted, tmp_path):
    d_full, full = uninterrupted
    d = tmp_path / "resumed"
    run.train_in_dir(d, "ppo", SMALL, seeds=2, checkpoint_every=4, stop_after=8)  # "killed" after 2 chunks
    assert not (d / "eval.json").exists()
    resumed = run.train_in_dir(d, resume=True)
    _leaves_equal(full.state, resumed.state)
    assert (d / "metrics.csv").read_text() == (d_full / "metrics.csv").read_text()
    assert json.loads((d / "eval.json").read_text()) == json.loads((d_full / "eval.json").read_text())
    # TensorBoard: the resumed run's events are the uninterrupted run's (none lost to the resume's writer)
    assert tensorboard_scalars(d / "tb") == tensorboard_scalars(d_full / "tb")


def test_cli_resume_via_command_line(uninterrupted, tmp_path, capsys):
    d_full, full = uninterrupted
    d = tmp_path / "cli"
    run.train_in_dir(d, "ppo", SMALL, seeds=2, checkpoint_every=4, stop_after=4)
    assert cli.main(["train", "ppo", "--resume", str(d), "--no-progress"]) == 0
    assert "final return" in capsys.readouterr().out
    _leaves_equal(run.load_result(d)[3].state, full.state)


def test_checkpoint_roundtrip_and_corruption(uninterrupted, tmp_path):
    d, result = uninterrupted
    module, config, env, loaded, seeds = run.load_result(d)
    _leaves_equal(loaded.state, result.state)
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"\x93not a checkpoint")
    template = ppo.ALGO.state_template(config, env, jax.random.PRNGKey(0), seeds)
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(bad, template)
    other = ppo.ALGO.state_template(ppo.Config(hidden=(32,)), env, jax.random.PRNGKey(0), seeds)
    with pytest.raises(CheckpointError, match="does not match"):
        checkpoint.load(d / run.CKPT, other)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    checkpoint.atomic_write(path, b"old")

    with pytest.raises(TypeError):
        checkpoint.atomic_write(path, object())  # cannot be written
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("argv, message", [
    (["train", "ppo", "--learning-rate", "-0.1"], "learning_rate must be > 0"),
    (["train", "ppo", "--num-minibatches", "7"], "does not split into 7 minibatches"),
    (["train", "nosuchalgo"], "Unknown algorithm 'nosuchalgo'"),
    (["train", "ppo", "--env", "CartPol-v1"], "Did you mean: CartPole-v1"),
    (["train", "ppo", "--preset", "nope"], "Unknown preset"),
    (["train", "ppo", "--seeds", "0"], "--seeds must be >= 1"),
    (["train", "ppo", "--network", "nature_cnn", "--separate-updates"], "separate_updates needs separate"),
    (["eval", "/nonexistent/run"], "does not exist"),
    (["train", "ppo", "--resume", "/nonexistent/run"], "does not exist"),
])
def test_bad_input_exits_2_with_a_clear_message(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv + ["--no-progress"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("config.json"))


def test_corrupt_checkpoint_and_config_exit_2_and_are_left_untouched(uninterrupted, tmp_path, capsys):
    d_full, _ = uninterrupted
    d = tmp_path / "copy"
    d.mkdir()
    (d / "config.json").write_text((d_full / "config.json").read_text())
    (d / "checkpoints").mkdir()
    garbage = b"\x00\x01garbage"
    (d / "checkpoints" / "latest.msgpack").write_bytes(garbage)
    assert cli.main(["eval", str(d)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert cli.main(["train", "ppo", "--resume", str(d), "--no-progress"]) == 2
    assert (d / "checkpoints" / "latest.msgpack").read_bytes() == garbage
    (d / "config.json").write_text("{not json")
    assert cli.main(["eval", str(d)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert (d / "config.json").read_text() == "{not json"


def test_existing_run_is_not_overwritten(uninterrupted, tmp_path, capsys, monkeypatch):
    d_full, _ = uninterrupted
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "runs" / "keep"
    d.mkdir(parents=True)
    (d / "config.json").write_text((d_full / "config.json").read_text())
    before = (d / "config.json").read_bytes()
    assert cli.main(["train", "ppo", "--name", "keep", "--no-progress", *SMALL_FLAGS]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (d / "config.json").read_bytes() == before


def test_cli_train_eval_plot_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "ppo", "--env", "CartPole-v1", "--name", "t", "--no-progress", *SMALL_FLAGS]) == 0
    assert "final return" in capsys.readouterr().out
    assert cli.main(["eval", "runs/t", "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed 0:" in out and "3 episodes per seed" in out
    assert cli.main(["plot", "runs/t", "--out", "c.png"]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_real_process_prints_no_traceback_and_exits_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", "surrogate.cli", "train", "ppo", "--learning-rate", "-1"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    assert "learning_rate must be > 0" in p.stderr and "Traceback" not in p.stderr


def test_large_arrays_are_written_raw_and_read_through_a_memory_map(tmp_path):
    """A replay-buffer-sized leaf goes after the msgpack header as raw bytes and comes back as a memory map
    (no second copy in memory); all-msgpack checkpoints of earlier versions still load; a cut file is corrupt."""
    from flax import serialization

    rng = np.random.default_rng(0)
    state = {"buffer": rng.integers(0, 256, (3, 1 << 20), dtype=np.uint8), "params": rng.normal(size=(4, 5)),
             "empty": (), "steps": np.int32(7)}
    history = {"q_loss": rng.normal(size=(2, 3))}
    path = tmp_path / "ckpt.msgpack"
    checkpoint.save(path, state, history, 5)
    data = path.read_bytes()
    assert data.startswith(checkpoint.MAGIC) and len(data) >= state["buffer"].nbytes
    loaded, hist, done = checkpoint.load(path, state)
    assert isinstance(loaded["buffer"], np.memmap) and done == 5
    for got, want in zip(jax.tree.leaves((loaded, hist)), jax.tree.leaves((state, history))):
        np.testing.assert_array_equal(got, want)
    old = tmp_path / "old.msgpack"
    old.write_bytes(serialization.msgpack_serialize({"format": checkpoint.FORMAT, "updates_done": 5, "history": history,
                                                     "state": serialization.to_state_dict(state)}))
    np.testing.assert_array_equal(checkpoint.load(old, state)[0]["buffer"], state["buffer"])
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(cut, state)
    objects = tmp_path / "objects.msgpack"  # a forged header asking for an object array: refused, never mapped
    objects.write_bytes(data.replace(serialization.msgpack_serialize(np.dtype(np.uint8).str), b"\xa3|O8", 1))
    with pytest.raises(CheckpointError, match="dtype object"):
        checkpoint.load(objects, state)


def test_a_metric_added_since_a_run_was_saved_resumes_as_nan_before():
    from surrogate.algos import dqn
    from surrogate.runtime.train import _stack_history

    keys = ("episode_return_sum", "episode_length_sum", "episode_count", *dqn.ALGO.metrics)
    saved = {k: np.ones((2, 3)) for k in keys if k != "replay_mismatches"}  # a run saved before that metric
    new = _stack_history(dqn.ALGO, saved, {k: np.zeros((2, 1)) for k in keys})
    assert all(v.shape == (2, 4) for v in new.values())
    np.testing.assert_array_equal(new["replay_mismatches"], [[np.nan] * 3 + [0]] * 2)
