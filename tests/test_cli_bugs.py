"""CLI and run-directory bugs: bad saved configs, resuming with the wrong algorithm, `train ALGO --help`,
a closed stdout, and total_steps that are not a whole number of batches."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import surrogate
from surrogate import cli, run
from surrogate.algos import ppo


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "ppo"
    run.train_in_dir(d, "ppo", ppo.Config(total_steps=256 * 2), seeds=1, eval_episodes=2)
    return d


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _snapshot(d):
    return {p.relative_to(d): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*")) if p.is_file()}


def _edit_config(d, **changes):
    path = d / "config.json"
    saved = json.loads(path.read_text())
    saved["config"].update(changes)
    path.write_text(json.dumps(saved))


@pytest.mark.parametrize("field, value, expected", [
    ("learning_rate", "abc", "expected a number"),
    ("total_steps", "512", "expected an integer"),
    ("total_steps", 512.0, "expected an integer"),
    ("anneal_lr", 1, "expected true or false"),
    ("activation", "sigmoid", "expected one of 'tanh', 'relu', 'swish', 'elu'"),
    ("hidden", [64, "64"], "expected a list of integers"),
    ("env", 3, "expected a string"),
    ("no_such_field", 1, "unknown fields ['no_such_field']"),
    ("learning_rate", -1.0, "learning_rate must be > 0"),
])
def test_badly_typed_saved_config_exits_2_and_leaves_the_run_untouched(ppo_run, tmp_path, capsys, field, value,
                                                                      expected):
    d = _copy(ppo_run, tmp_path / "run")
    _edit_config(d, **{field: value})
    before = _snapshot(d)
    for argv in (["eval", str(d)], ["train", "ppo", "--resume", str(d), "--no-progress"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert str(d / "config.json") in err and field in err and expected in err, err
        assert "start a new run" in err, err
    assert _snapshot(d) == before


def test_saved_int_for_a_float_and_list_for_a_tuple_are_accepted(ppo_run, tmp_path, capsys):
    d = _copy(ppo_run, tmp_path / "run")
    _edit_config(d, learning_rate=1, gamma=1)
    module, config = run.config_from_saved(run.read_config(d))
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.hidden == (64, 64)
    assert cli.main(["eval", str(d), "--episodes", "1"]) == 0
    assert "seed 0:" in capsys.readouterr().out


def test_badly_typed_seeds_exits_2(ppo_run, tmp_path, capsys):
    d = _copy(ppo_run, tmp_path / "run")
    saved = json.loads((d / "config.json").read_text())
    saved["seeds"] = "1"
    (d / "config.json").write_text(json.dumps(saved))
    assert cli.main(["eval", str(d)]) == 2
    err = capsys.readouterr().err
    assert "seeds" in err and "expected an integer" in err and "Traceback" not in err


def test_resume_with_another_algorithm_is_refused_and_files_are_untouched(ppo_run, tmp_path, capsys):
    d = _copy(ppo_run, tmp_path / "run")
    before = _snapshot(d)
    assert cli.main(["train", "trpo", "--resume", str(d), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trained with ppo" in err and f"surrogate train ppo --resume {d}" in err and "Traceback" not in err
    assert _snapshot(d) == before


def test_train_algo_help_shows_run_options_and_hyperparameters(capsys):
    assert cli.main(["train", "ppo", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--seeds", "--preset", "--name", "--resume", "--overwrite", "--learning-rate", "--num-epochs"):
        assert flag in out, flag
    assert out.index("--resume") < out.index("--learning-rate")  # run options first


@pytest.mark.parametrize("reader, first_lines", [("head -1", 1), ("true", 0)])
def test_closed_stdout_exits_quietly(reader, first_lines):
    """`surrogate envs | head -1`; `| true` closes the pipe before the first write, so it fails without the fix
    every time, where `head -1` races with the writer."""
    script = Path(sys.executable).parent / "surrogate"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(Path(surrogate.__file__).parents[1])}
    p = subprocess.run(f"'{script}' envs | {reader}", shell=True, capture_output=True, text=True, env=env,
                       timeout=120)
    assert len(p.stdout.splitlines()) == first_lines and p.stdout.endswith(":\n" if first_lines else ""), p.stdout
    assert p.stderr == ""


def test_total_steps_not_a_multiple_of_the_batch_is_noted_once(tmp_path, capsys):
    d = tmp_path / "run"
    run.train_in_dir(d, "ppo", ppo.Config(total_steps=256 * 2 + 100), stop_after=1)
    err = capsys.readouterr().err
    note = ("note: total_steps 612 is not a multiple of the batch (8 x 32 = 256 steps); "
            "training runs 2 updates = 512 steps.")
    assert err.count(note) == 1, err
    run.train_in_dir(d, resume=True, stop_after=1)
    assert "note:" not in capsys.readouterr().err
