"""TRPO, TNPG and VPG learn (CartPole-v1, Pendulum-v1, the host backend) and keep their trust region on
every update of a real run; the CLI trains them and rejects bad hyperparameters with exit 2."""
import dataclasses

import jax
import numpy as np
import pytest

from surrogate import algos, cli, envs
from surrogate.algos import trpo


def final_returns(algo, cfg, env, result, seeds):
    return [float(algo.evaluate(cfg, env, *algo.seed_policy(cfg, result, i), jax.random.PRNGKey(7), 20).mean())
            for i in range(seeds)]


@pytest.fixture(scope="module")
def runs():
    """name -> (config, result, final return per seed): each method on CartPole-v1 and Pendulum-v1."""
    out = {}
    for method, seeds in (("trpo", 4), ("tnpg", 2), ("vpg", 2)):
        algo = algos.get(method)
        for preset in ("cartpole", "pendulum"):
            cfg = algo.presets[preset]
            env = envs.make(cfg.env)
            result = algo.train(cfg, env, jax.random.PRNGKey(0), seeds=seeds)
            out[method, preset] = (cfg, result, final_returns(algo, cfg, env, result, seeds))
    return out


def test_trpo_reaches_475_on_cartpole_for_every_seed(runs):
    assert min(runs["trpo", "cartpole"][2]) >= 475, runs["trpo", "cartpole"][2]


def test_trpo_reaches_minus_300_on_pendulum(runs):
    returns = runs["trpo", "pendulum"][2]
    assert np.mean(returns) >= -300 and np.median(returns) >= -300 and min(returns) >= -700, returns


@pytest.mark.parametrize("method", ["tnpg", "vpg"])
def test_tnpg_and_vpg_learn_both_tasks(runs, method):
    assert np.mean(runs[method, "cartpole"][2]) >= 400, runs[method, "cartpole"][2]
    assert np.mean(runs[method, "pendulum"][2]) >= -600, runs[method, "pendulum"][2]  # random: about -1200


@pytest.mark.parametrize("preset", ["cartpole", "pendulum"])
def test_every_trpo_update_keeps_kl_within_delta_and_never_worsens_the_surrogate(runs, preset):
    cfg, result, _ = runs["trpo", preset]
    kl, gain, backtracks = (result.history[k] for k in ("kl", "surrogate_gain", "backtracks"))
    assert kl.max() <= cfg.max_kl * (1 + 1e-5), kl.max()
    accepted = backtracks < cfg.line_search_steps
    assert accepted.mean() > 0.9 and (gain[accepted] > 0).all() and (gain[~accepted] == 0).all()
    assert np.median(kl) > 0.2 * cfg.max_kl  # steps are not vanishingly small either


def test_tnpg_updates_stay_within_one_and_a_half_delta(runs):
    """Without a line search only the quadratic model bounds the step: every CartPole update is within
    1.5 delta; on Pendulum (Gaussian policy, larger curvature changes) at most 1% of updates are not."""
    cfg, result, _ = runs["tnpg", "cartpole"]
    assert result.history["kl"].max() <= 1.5 * cfg.max_kl, result.history["kl"].max()
    cfg, result, _ = runs["tnpg", "pendulum"]
    kl = result.history["kl"]
    assert (kl > 1.5 * cfg.max_kl).mean() <= 0.01 and 0.5 * cfg.max_kl < np.median(kl) <= cfg.max_kl, kl
    for _, result, _ in (runs["tnpg", "cartpole"], runs["tnpg", "pendulum"]):
        assert (result.history["backtracks"] == 0).all()


def test_trpo_host_path_learns_gymnasium_cartpole_with_trust_region_value_fit():
    env = envs.make("gym:CartPole-v1")
    cfg = dataclasses.replace(trpo.PRESETS["cartpole"], total_steps=100_000, vf_fit="trust_region", vf_max_kl=0.1)
    result = trpo.ALGO.train(cfg, env, jax.random.PRNGKey(0), seeds=1)
    assert final_returns(trpo.ALGO, cfg, env, result, 1)[0] >= 400
    assert result.history["kl"].max() <= cfg.max_kl * (1 + 1e-5)


def test_cli_trains_tnpg_and_rejects_bad_hyperparameters(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = ["--total-steps", "2048", "--num-envs", "4", "--num-steps", "64", "--no-progress"]
    assert cli.main(["train", "tnpg", "--name", "t", *small]) == 0
    assert "final return" in capsys.readouterr().out
    header = (tmp_path / "runs" / "t" / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith("surrogate_gain,kl,entropy,backtracks,value_loss")
    for argv, message in ((["--max-kl", "-0.01"], "max_kl must be > 0"),
                          (["--vf-minibatch-size", "100"], "does not split into value minibatches of 100"),
                          (["--backtrack", "1.5"], "backtrack must be in (0, 1)"),
                          (["--network", "nature_cnn"], "needs separate policy and value networks")):
        assert cli.main(["train", "trpo", "--name", "bad", *small, *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert cli.main(["train", "vpg", "--name", "bad", *small, "--method", "trpo"]) == 2
    assert "run `surrogate train trpo`" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "bad").exists()


@pytest.mark.parametrize("method, vf_fit", [("trpo", "trust_region"), ("vpg", "adam")])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, method, vf_fit):
    """Checkpoints carry the family's optimiser states (none, Adam for the policy or the value function)."""
    from surrogate import run

    cfg = algos.get(method).Config(num_envs=4, num_steps=64, total_steps=256 * 6, vf_fit=vf_fit)
    full = run.train_in_dir(tmp_path / "full", method, cfg, seeds=2, checkpoint_every=2)
    run.train_in_dir(tmp_path / "cut", method, cfg, seeds=2, checkpoint_every=2, stop_after=4)
    resumed = run.train_in_dir(tmp_path / "cut", resume=True)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (tmp_path / "cut" / "metrics.csv").read_text() == (tmp_path / "full" / "metrics.csv").read_text()
