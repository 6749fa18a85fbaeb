"""RL²: the trial environments (one gymnax episode = one trial), the GRU carry through the runtime's
rollouts (kept across inner episodes, zeroed between trials), evaluation on given tasks, and the CLI."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import cli, envs
from surrogate.algos import rl2
from surrogate.envs import rl2_tasks
from surrogate.errors import ConfigError
from surrogate.runtime import jax_driver
from surrogate.runtime.rollout import jax_rollout, rollout_spec

TINY = dict(gru_size=8, num_envs=4, num_minibatches=2, num_epochs=1)


def play(env, key, actions):
    """``env.step`` (auto-reset included) along ``actions``; returns per-step (obs, state, reward, done)."""
    obs, state = env.reset(key)
    out = [(obs, state, None, None)]
    step = jax.jit(env.step)
    for i, a in enumerate(actions):
        obs, state, reward, done, _ = step(jax.random.fold_in(key, i), state, a)
        out.append((obs, state, float(reward), bool(done)))
    return out


@pytest.fixture(scope="module")
def bandit():
    return envs.make("Bandit-k5-n10-rl2")


@pytest.fixture(scope="module")
def mdp():
    return envs.make("TabularMDP-n5-rl2")


def test_spaces_and_ids(bandit, mdp):
    assert bandit.obs_shape == (1 + 5 + 2,) and bandit.action_dim == 5 and bandit.discrete
    assert bandit.max_episode_steps == 10
    assert mdp.obs_shape == (10 + 5 + 2,) and mdp.action_dim == 5 and mdp.max_episode_steps == 50
    assert {"Bandit-k50-n500-rl2", "TabularMDP-n100-rl2"} <= set(envs.list_envs()["jax"])
    other = envs.make("Bandit-k3-n7-rl2")  # any setting, not only the paper's grid
    assert other.obs_shape == (1 + 3 + 2,) and other.action_dim == 3 and other.max_episode_steps == 7
    assert envs.make("TabularMDP-n2-rl2").max_episode_steps == 20
    for bad in ("Bandit-k1-n5-rl2", "Bandit-k5-n0-rl2", "TabularMDP-n0-rl2"):
        with pytest.raises(ConfigError, match="at least"):
            rl2_tasks.make(bad)


def test_bandit_trial(bandit):
    """Done only at the trial's end; the task fixed within a trial and redrawn at the next; the observation
    is (1, one-hot previous action, previous reward, flag 1 after every pull); deterministic given keys."""
    actions = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 2, 2]
    steps = play(bandit, jax.random.PRNGKey(3), actions)
    np.testing.assert_array_equal(steps[0][0], [1, 0, 0, 0, 0, 0, 0, 0])  # no previous action, reward, flag
    assert [d for *_, d in steps[1:]] == [False] * 9 + [True, False, False]
    means = [np.asarray(s.task.reward_means) for _, s, _, _ in steps]
    for m in means[1:10]:
        np.testing.assert_array_equal(m, means[0])
    assert not np.allclose(means[10], means[0]) and np.all((means[10] >= 0) & (means[10] <= 1))
    for t in range(1, 10):
        obs, _, reward, _ = steps[t]
        np.testing.assert_array_equal(obs, np.concatenate([[1], np.eye(5)[actions[t - 1]], [reward, 1.0]]))
    np.testing.assert_array_equal(steps[10][0][1:], np.zeros(7))  # the new trial's first observation
    again = play(bandit, jax.random.PRNGKey(3), actions)
    assert [r for _, _, r, _ in again] == [r for _, _, r, _ in steps]


def test_bandit_rewards_are_bernoulli_of_the_arm(bandit):
    task = rl2_tasks.Task(jnp.array([[0.0, 1.0, 0.3, 0.3, 0.3]]), jnp.ones((1, 5, 1)))
    _, state = bandit.env.reset_to_task(task)
    step = jax.jit(lambda k, a: bandit.env.step_env(k, state, a, bandit.default_params)[2])
    assert float(step(jax.random.PRNGKey(0), 0)) == 0.0 and float(step(jax.random.PRNGKey(0), 1)) == 1.0
    draws = jax.vmap(lambda k: bandit.env.step_env(k, state, 2, bandit.default_params)[2])(
        jax.random.split(jax.random.PRNGKey(1), 4000))
    assert abs(float(draws.mean()) - 0.3) < 0.03


def test_mdp_trial(mdp):
    """Inner episodes of 10 steps, each from state 0 (flag 1 on the step after an episode's last step);
    done only after 5 x 10 steps; the task's draws follow the paper (means ~ N(1, 1), Dirichlet rows)."""
    steps = play(mdp, jax.random.PRNGKey(0), [1] * 50)
    assert [d for *_, d in steps[1:]] == [False] * 49 + [True]
    for t in range(1, 50):
        obs, state, reward, _ = steps[t]
        np.testing.assert_array_equal(obs[10:15], np.eye(5)[1])  # previous action
        assert obs[15] == pytest.approx(reward) and obs[16] == float(t % 10 == 0)  # previous reward, flag
        assert obs[:10].sum() == 1.0 and int(state.state) == int(np.argmax(obs[:10]))
        assert t % 10 or int(state.state) == 0  # an inner episode starts in the first state
    tasks = jax.vmap(mdp.env.draw_task)(jax.random.split(jax.random.PRNGKey(1), 500))
    m = np.asarray(tasks.reward_means)
    assert abs(m.mean() - 1.0) < 0.05 and abs(m.std() - 1.0) < 0.05
    np.testing.assert_allclose(np.asarray(tasks.transitions).sum(-1), 1.0, atol=1e-5)
    p = np.asarray(tasks.transitions)  # flat Dirichlet over 10 states: marginals Beta(1, 9), mean 0.1, std 0.0905
    assert abs(p.mean() - 0.1) < 1e-3 and abs(p.std() - 0.0905) < 0.003


@pytest.fixture(scope="module")
def recorded(mdp):
    """Three runtime rollouts (``jax_rollout``) of 23 steps on 50-step trials of 5 inner episodes, with the
    carry each step received and produced recorded through a debug callback."""
    cfg = rl2.Config(task="mdp", episodes=5, num_steps=23, total_steps=23 * 4, **TINY)
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(rl2.ALGO, cfg, mdp, jax.random.PRNGKey(0)[None]))
    spec = rollout_spec(cfg, mdp, rl2.ALGO.act_words(cfg, mdp))
    act, steps = rl2.ALGO.act(cfg, mdp, False), []

    def act_fn(params, obs, carry, bits):
        action, new = act(params, obs, carry, bits)
        jax.debug.callback(lambda *x: steps.append([np.asarray(y) for y in x]), obs, carry[0], new[0], ordered=True)
        return action, new

    roll = jax.jit(lambda c, k, s: jax_rollout(spec, mdp, act_fn, runner.algo.params, c, k, start=s)[:2])
    carry, batches = runner.env, []
    for i in range(3):
        carry, batch = jax.block_until_ready(roll(carry, jax.random.PRNGKey(10 + i), i == 0))
        jax.effects_barrier()
        batches.append(batch)
    return steps, batches


def test_hidden_state_kept_across_episodes_and_reset_between_trials(recorded):
    """Through the runtime's rollouts: the carry a step receives is the one the previous step produced,
    also at inner-episode starts (flag 1) and across rollouts; at a trial's first step it is zeros."""
    steps, batches = recorded
    assert len(steps) == 69
    dones = np.concatenate([np.asarray(b.dones) for b in batches])  # [69, N]
    trial_starts, inner_starts = 0, 0
    for t in range(1, 69):
        obs, received, _ = steps[t]
        produced = steps[t - 1][2]
        for n in range(obs.shape[0]):
            if dones[t - 1, n]:  # the previous step ended a trial
                np.testing.assert_array_equal(received[n], 0.0)
                assert np.abs(produced[n]).max() > 0
                trial_starts += 1
            else:
                np.testing.assert_array_equal(received[n], produced[n])
                inner_starts += int(obs[n, -1] == 1.0)
    assert trial_starts == 4 and inner_starts == 4 * 5  # every env: steps 10, 20, 30, 40 and 60 start inner episodes


def test_evaluate_tasks_totals_match_the_env(bandit):
    """Given tasks are the ones played: arms that always pay give 10 in 10 pulls, arms that never pay 0,
    half of them paying: the pulls of those (an untrained policy's samples: strictly between 0 and 10)."""
    cfg = rl2.Config(arms=5, episodes=10, total_steps=10 * 4, **TINY)
    params = rl2.ALGO.policy(cfg, rl2.ALGO.init(cfg, bandit, jax.random.PRNGKey(0)))
    means = np.array([[1.0] * 5, [0.0] * 5] + [[1.0, 0.0, 1.0, 0.0, 1.0]] * 20)
    totals = rl2.evaluate_tasks(cfg, bandit, params, None, rl2.task_arrays(cfg, means), jax.random.PRNGKey(1))
    assert totals.shape == (22,) and totals[0] == 10.0 and totals[1] == 0.0
    assert 0 < totals[2:].mean() < 10 and len(set(totals[2:].tolist())) > 1


def test_config_derives_env_and_rejects_bad_settings():
    cfg = rl2.Config(task="bandit", arms=10, episodes=100)
    assert cfg.env == "Bandit-k10-n100-rl2" and cfg.num_steps == 100
    assert rl2.Config(task="mdp", episodes=25).num_steps == 250
    assert rl2.Config(arms=3, episodes=7).validate().env == "Bandit-k3-n7-rl2"  # not only the paper's grid
    with pytest.raises(ConfigError, match="at least 2 arms"):
        rl2.Config(arms=1).validate()
    with pytest.raises(ConfigError, match="at least 1 episode"):
        rl2.Config(task="mdp", episodes=0).validate()
    assert dataclasses.replace(cfg, arms=5).env == "Bandit-k5-n100-rl2"


def test_cli_train_and_eval_beside_gittins(tmp_path, capsys):
    flags = ["--task", "bandit", "--arms", "2", "--episodes", "5", "--total-steps", "40", "--num-envs", "4",
             "--num-minibatches", "2", "--num-epochs", "1", "--gru-size", "8", "--runs-dir", str(tmp_path), "--name", "r", "--no-progress"]
    assert cli.main(["train", "rl2", *flags]) == 0
    assert cli.main(["eval", str(tmp_path / "r"), "--episodes", "50"]) == 0
    out = capsys.readouterr().out
    assert "Gittins" in out and "regret" in out
    assert cli.main(["train", "rl2", "--arms", "1", "--runs-dir", str(tmp_path)]) == 2
    assert cli.main(["train", "rl2", "--episodes", "0", "--runs-dir", str(tmp_path)]) == 2
