"""`surrogate bench rllab` (issue 27): the paper's metric and significance marks, the protocol's configs,
and the Ray path: a 2-CPU local Ray runs a 2 x 2 x 2 grid, one trial's worker is killed mid-way, and the
rerun finishes it without redoing the finished trials."""
import argparse
import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from scipy import stats

from surrogate import envs
from surrogate.algos import get
from surrogate.bench import grid, rllab, table
from surrogate.cli import main
from surrogate.errors import ConfigError


def test_average_return_is_over_all_trajectories_of_all_iterations():
    sums = np.array([[10.0, 0.0, 30.0], [5.0, 5.0, 5.0]])  # [seeds, iterations]
    counts = np.array([[1, 0, 2], [1, 1, 3]])
    np.testing.assert_allclose(table.average_return(sums, counts), [40 / 3, 15 / 5])
    it = table.iteration_returns(sums, counts)
    assert np.isnan(it[0, 1]) and it[0, 2] == 15.0
    np.testing.assert_allclose(table.iteration_average(sums, counts), [(10 + 15) / 2, (5 + 5 + 5 / 3) / 3])


def test_bold_is_the_best_and_those_welch_does_not_separate_from_it():
    best, close, far = [100.0, 101, 99, 100.5, 99.5], [99.0, 102, 98, 100, 101], [50.0, 51, 49, 50.5, 49.5]
    assert table.welch_p(best, far) == pytest.approx(stats.ttest_ind(best, far, equal_var=False).pvalue)
    assert table.bold_set({"a": best, "b": close, "c": far}) == {"a", "b"}
    row = table.summarise([{"trial": {"task": "T", "algo": "a"}, "average_return_per_seed": best, "iterations": 3}],
                          ["T"], ["a", "b"], {"T": {"a": (1.0, 2.0)}})
    assert row["T"]["a"]["bold"] and row["T"]["b"]["mean"] is None and row["T"]["a"]["paper"] == (1.0, 2.0)
    md = table.markdown(row, ["a", "b"])
    assert "**100.0 ± 0.7**" in md and "*paper*" in md and "1.0 ± 2.0" in md


def test_protocol_configs():
    env = envs.make("Pendulum-v1")
    c = rllab.protocol_config(get("trpo"), env, iterations=500, batch=50_000, ddpg_steps=1_000_000)
    assert (c.num_envs, c.num_steps, c.total_steps) == (100, 500, 25_000_000)
    assert (c.hidden, c.gamma, c.gae_lambda, c.max_kl) == ((100, 50, 25), 0.99, 1.0, 0.1)
    assert (c.cg_iters, c.cg_damping, c.fvp_fraction) == (10, 1e-5, 0.1)  # rllab's ConjugateGradientOptimizer
    basic = rllab.protocol_config(get("trpo"), envs.make("CartPoleBalancing-rllab"), 500, 50_000, 1)
    assert basic.max_kl == 0.03  # the basic tasks' grid point chosen on the double pendulum
    other = rllab.protocol_config(get("trpo"), env, 500, 50_000, 1, sets=rllab.parse_sets(["max_kl=0.03"]))
    assert other.max_kl == 0.03 and other.cg_damping == 1e-5
    with pytest.raises(ConfigError, match="not a hyperparameter of trpo"):
        rllab.protocol_config(get("trpo"), env, 500, 50_000, 1, sets={"max_lk": 0.03})
    with pytest.raises(ConfigError, match="name=value"):
        rllab.parse_sets(["max_kl"])
    cem = rllab.protocol_config(get("cem"), env, iterations=7, batch=50_000, ddpg_steps=1)
    assert (cem.iterations, cem.population_size, cem.elite_frac) == (7, 100, 0.1)
    with pytest.raises(ConfigError, match="multiple of 100"):
        rllab.protocol_config(get("vpg"), env, iterations=1, batch=50_050, ddpg_steps=1)


def test_cli_bad_grid_exits_2_before_starting_ray(tmp_path, capsys):
    assert main(["bench", "rllab", "--tasks", "NoSuchTask-v0", "--out", str(tmp_path)]) == 2
    assert main(["bench", "rllab", "--algos", "ppo", "--tasks", "CartPole-v1", "--out", str(tmp_path)]) == 2
    assert main(["bench", "nosuch"]) == 2
    assert main(["bench", "rllab", "--algos", "trpo", "--tasks", "CartPoleBalancing-rllab", "--set", "max_lk=1",
                 "--out", str(tmp_path)]) == 2
    assert "Unknown environment id" in capsys.readouterr().err
    assert not (tmp_path / "trials").exists()


def test_partial_tasks_run_the_recurrent_variants_for_300_iterations():
    a = argparse.Namespace(algos=["trpo", "cem"], tasks=["CartPoleBalancing-rllab-NO", "MountainCar-rllab"], seeds=1,
                           seed=0, iterations=None, batch=50_000, ddpg_steps=1)
    runs = {t["name"]: (t["runs"], t["iterations"]) for t in rllab.make_trials(a)}
    assert runs == {"trpo__CartPoleBalancing-rllab-NO": ("recurrent_trpo", 300),
                    "cem__CartPoleBalancing-rllab-NO": ("cem", 300),
                    "trpo__MountainCar-rllab": ("trpo", 500), "cem__MountainCar-rllab": ("cem", 500)}


def test_ray_grid_survives_a_killed_worker_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out: Ray runs trials in their own working directories
    out = tmp_path / "grid"
    a = argparse.Namespace(algos=["trpo", "vpg"], tasks=["CartPole-v1", "Pendulum-v1"], seeds=2, seed=0,
                           iterations=2, batch=1000, ddpg_steps=1)
    trials = rllab.make_trials(a)
    assert len(trials) == 4
    killed = []

    def kill_first_trial():  # the first trial that starts: SIGKILL its worker process mid-way
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            for f in sorted((out / "running").glob("*.pid")) if (out / "running").exists() else []:
                try:
                    os.kill(int(f.read_text()), signal.SIGKILL)
                    killed.append(f.stem)
                    break
                except (ValueError, ProcessLookupError):
                    pass
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_trial)
    killer.start()
    first = grid.run_grid(rllab.run_trial, trials, "grid", num_cpus=2, log=lambda m: None)
    killer.join()
    assert killed and first["failed"] == killed and len(first["ran"]) == 3
    done = {n: grid.trial_path(out, n).stat().st_mtime_ns for n in first["ran"]}
    second = grid.run_grid(rllab.run_trial, trials, "grid", num_cpus=2, log=lambda m: None)
    assert second["ran"] == killed and sorted(second["skipped"]) == sorted(done) and not second["failed"]
    assert {n: grid.trial_path(out, n).stat().st_mtime_ns for n in done} == done  # not redone
    summary = rllab.write_table(out, trials)
    r = summary["CartPole-v1"]["trpo"]
    assert r["seeds"] == 2 and r["mean"] > 0 and (out / "curves.png").is_file()
    # a command that ran part of the grid still tables every finished trial in the folder, and the summary
    # beside the folder says which command wrote it
    again = rllab.write_table(out, trials[:1], "surrogate bench rllab --algos trpo")
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # noqa: E731 (NaN cells)
    assert same(again, summary)
    beside = json.loads((out.parent / f"{out.name}.json").read_text())
    assert same(beside["table"], summary) and beside["command"].endswith("--algos trpo")
    assert beside["machine"]["cores"] >= 1 and "jax" in beside["versions"]


class Stop(Exception):
    pass


def test_a_trial_cut_off_continues_from_its_checkpoint(tmp_path, monkeypatch):
    from surrogate import checkpoint

    trial = dict(name="trpo__CartPole-v1", algo="trpo", runs="trpo", task="CartPole-v1", seeds=2, seed=3, iterations=4,
                 batch=1000, ddpg_steps=1)
    whole = rllab.run_trial(trial)
    save = checkpoint.save

    def save_then_stop(*args):  # the worker dies right after its first checkpoint
        save(*args)
        raise Stop

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(Stop):
        rllab.run_trial(trial, checkpoint_dir=tmp_path, chunks=2)
    saved_at = []
    monkeypatch.setattr(checkpoint, "save", lambda *args: (saved_at.append(args[-1]), save(*args)))
    assert (tmp_path / "trpo__CartPole-v1.msgpack").is_file()
    resumed = rllab.run_trial(trial, checkpoint_dir=tmp_path, chunks=2)
    assert saved_at == [4]  # it ran only the second chunk
    assert resumed["iteration_returns"] == whole["iteration_returns"]
    assert resumed["average_return_per_seed"] == whole["average_return_per_seed"]
    assert not (tmp_path / "trpo__CartPole-v1.msgpack").exists()
