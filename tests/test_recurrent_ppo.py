"""Recurrent PPO: the carries through the runtime's rollouts, the exact replay of a rollout from its stored
start carries, the hand-written backward pass of the GRU, the two-device update, config errors, and
learning on both backends."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import ppo, recurrent_ppo as rp
from surrogate.errors import ConfigError
from surrogate.runtime import devices, host_driver, jax_driver, parts
from surrogate.runtime.rollout import Experience, host_rollout, jax_rollout, rollout_spec

EXACT = rp.Config(normalize_obs=False)  # normalisation re-normalises the replay with updated statistics


@pytest.fixture(scope="module")
def novel():
    return envs.make("CartPoleNoVel-v1")


def recording_act(cfg, env):
    """``rp.act`` that also returns the log-probability of the sampled action (computed while acting)."""
    act, net = rp.act(cfg, env, False), rp.make_learner(cfg, env).network

    def act_fn(params, obs, carry, bits):
        action, new = act(params, obs, carry, bits)
        logits = net.step(params["actor"], obs, carry[0], jnp.zeros(obs.shape[:1], bool))[0]
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], 1)[:, 0]
        return action, new, logp

    return act_fn


def jax_rollouts(cfg, env, n=3):
    """``n`` consecutive runtime rollouts (``jax_rollout``) from a fresh start with the initial policy,
    recording each step's carries and log-probabilities through a debug callback."""
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(rp.ALGO, cfg, env, jax.random.PRNGKey(0)[None]))
    spec = rollout_spec(cfg, env, rp.ALGO.act_words(cfg, env))
    steps, act = [], recording_act(cfg, env)

    def act_fn(params, obs, carry, bits):
        action, new, logp = act(params, obs, carry, bits)
        jax.debug.callback(lambda *x: steps.append([np.asarray(y) for y in x]), carry, new, logp, ordered=True)
        return action, new

    roll = jax.jit(lambda c, k, s: jax_rollout(spec, env, act_fn, runner.algo.params, c, k, start=s)[:2])
    carry, out = runner.env, []
    for i in range(n):
        carry, batch = jax.block_until_ready(roll(carry, jax.random.PRNGKey(10 + i), i == 0))
        jax.effects_barrier()
        out.append((Experience(batch, carry.obs_stats), carry.policy_carry, steps[:]))
        steps.clear()
    return runner.algo, out


def host_rollouts(cfg, n=3):
    env = envs.make("gym:CartPoleNoVel-v1")
    venv = env.vector(cfg.num_envs, 0)
    runner = host_driver.init_runner(rp.ALGO, cfg, env, jax.random.PRNGKey(0), venv)
    spec = rollout_spec(cfg, env, rp.ALGO.act_words(cfg, env))
    act = jax.jit(recording_act(cfg, env))
    rng, steps = np.random.default_rng(0), []

    def act_np(obs, carry):
        bits = rng.integers(0, 2**32, size=(obs.shape[0], spec.act_words), dtype=np.uint32)
        action, new, logp = jax.device_get(act(runner.algo.params, obs, carry, bits))
        steps.append((carry, new, logp))
        return action, new

    carry, out = runner.env, []
    for _ in range(n):
        carry, batch, _ = host_rollout(spec, venv, act_np, carry)
        out.append((Experience(batch, jax.tree.map(jnp.asarray, carry.obs_stats)), carry.policy_carry, steps[:]))
        steps.clear()
    venv.close()
    return runner.algo, out


@pytest.fixture(scope="module")
def recorded(novel):
    return {"jax": jax_rollouts(EXACT, novel), "host": host_rollouts(EXACT)}


@pytest.mark.parametrize("backend", ["jax", "host"])
def test_carry_resets_at_episode_ends_and_nowhere_else(recorded, backend):
    """Through the runtime's rollouts: the carries (the actor's and the critic's) a step acts on are exactly
    zero right after its env's episode ended, and exactly the previous step's new carries otherwise (also
    across rollouts: the stored start carries are the previous rollout's final ones, zeroed where its
    last step ended)."""
    _, rollouts = recorded[backend]
    previous_out = jax.tree.map(np.zeros_like, rollouts[0][0].batch.start_carry)  # a run starts from zeros
    previous_done = np.ones(rollouts[0][0].batch.dones.shape[1], bool)
    zeroed = lambda done, carry: [np.where(done[:, None], 0, c) for c in carry]
    ends = continues = 0
    for experience, final_carry, steps in rollouts:
        batch = experience.batch
        dones = np.asarray(batch.dones)
        np.testing.assert_equal(list(batch.start_carry), zeroed(previous_done, previous_out))
        for t, (carry_in, carry_out, _) in enumerate(steps):
            ended = previous_done if t == 0 else dones[t - 1]
            for c_in, c_prev, c_out in zip(carry_in, previous_out, carry_out, strict=True):
                np.testing.assert_array_equal(c_in[ended], 0)
                np.testing.assert_array_equal(c_in[~ended], c_prev[~ended])
                assert np.all(np.abs(c_out).sum(1) > 0)  # after a step the carry is not 0
            ends, continues = ends + ended.sum(), continues + (~ended).sum()
            previous_out = carry_out
        previous_done = dones[-1]
        np.testing.assert_equal(list(final_carry), zeroed(previous_done, previous_out))
    assert ends > 10 and continues > 100  # both cases occurred


@pytest.mark.parametrize("backend", ["jax", "host"])
def test_replay_from_the_start_carry_reproduces_the_rollouts_log_probs_exactly(recorded, novel, backend):
    """``prepare`` unrolls each stored sequence from ``start_carry`` with ``resets[t] = dones[t-1]``: its
    log-probabilities of the taken actions equal those computed step by step while acting, bit for bit
    (also for rollouts that start mid-episode and have episode ends inside), so PPO's ratio is 1."""
    params, rollouts = recorded[backend]
    learner = rp.make_learner(EXACT, novel)
    prepare = jax.jit(lambda p, e: rp.prepare(EXACT, learner, p, e))
    for experience, _, steps in rollouts:
        data = prepare(params.params, experience)
        acting = np.stack([logp for _, _, logp in steps])  # [T, N]
        np.testing.assert_array_equal(np.asarray(data.old_log_probs).T, acting)
        np.testing.assert_array_equal(np.asarray(data.resets)[:, 1:].T, np.asarray(experience.batch.dones)[:-1])
        assert not np.asarray(data.resets)[:, 0].any()
    assert np.abs(rollouts[1][0].batch.start_carry[0]).sum() > 0 and rollouts[1][0].batch.dones.any()


@pytest.mark.parametrize("cfg", [EXACT, rp.Config(), rp.Config(num_minibatches=4)], ids=["exact", "preset", "mb4"])
def test_first_minibatch_of_whole_sequences_starts_at_ratio_one(recorded, novel, cfg):
    """The actor's loss replays a minibatch of whole env sequences (columns) from their start carries:
    before the first gradient step its ratio is exactly 1 (with observation normalisation too: the
    replay and the old log-probabilities then both use the updated statistics); the critic's replay
    gives the old values. One update then moves the policy, a little."""
    state, rollouts = recorded["jax"]
    learner = rp.make_learner(cfg, novel)
    experience = rollouts[1][0]
    data = rp.prepare(cfg, learner, state.params, experience)
    perm = ppo.shuffles(cfg, data, jax.random.PRNGKey(1))[0]
    mb = jax.tree.map(lambda x: x[perm[: cfg.num_envs // cfg.num_minibatches]], data)
    replay = jax.jit(lambda p, mb, part: rp.replay(learner, p, mb, part), static_argnums=2)
    _, m = ppo.actor_terms(cfg, learner, replay(state.params["actor"], mb, 0), mb)
    assert float(m["approx_kl"]) == 0.0 and float(m["clip_frac"]) == 0.0
    # (the value head's [h, 1] product can differ by an ulp between 2 and 8 rows, as core/recurrent.py notes)
    np.testing.assert_allclose(replay(state.params["critic"], mb, 1), mb.old_values, rtol=1e-6, atol=1e-9)
    new, metrics = jax.jit(lambda s, e, k: rp.learn(cfg, novel, s, e, k))(state, experience, jax.random.PRNGKey(2))
    assert 0.0 < float(metrics["approx_kl"]) < 0.2 and int(new.updates) == 1


def test_unrolls_hand_written_backward_pass_equals_autodiff_through_the_cell():
    """``core.recurrent.gru_sequence``'s backward pass against autodiff of ``step`` in a ``scan``: gradients
    for every parameter and the start carry, with resets (also at t = 0), both policy kinds."""
    from surrogate.core.recurrent import RecurrentActorCritic

    T, N = 12, 3
    for discrete in (True, False):
        net = RecurrentActorCritic(2, discrete, (5,), 8, "tanh")
        params = net.init_params(jax.random.PRNGKey(0), (3,))
        params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(1), x.shape), params)
        obs, carry0 = jax.random.normal(jax.random.PRNGKey(2), (T, N, 3)), jax.random.normal(jax.random.PRNGKey(3), (N, 8))
        resets = jnp.zeros((T, N), bool).at[0, 0].set(True).at[5, 1].set(True).at[6, 1].set(True)

        def by_steps(p, o, c, r):
            def body(c, x):
                d, v, c = net.step(p, *x[:1], c, x[1])
                return c, (d, v, c)
            _, (d, v, cs) = jax.lax.scan(body, c, (o, r))
            return d, v, cs

        def loss(unroll, p, c):
            d, v, cs = unroll(p, obs, c, resets)
            d = d if discrete else d[0] * jnp.exp(d[1])
            return (jnp.sin(d).sum(-1) * jnp.arange(1, T + 1)[:, None]).sum() + (v ** 2).sum() + jnp.cos(cs).sum()

        fast = lambda p, o, c, r: net.unroll(p, o, c, r, all_carries=True)
        want = jax.grad(lambda p, c: loss(by_steps, p, c), argnums=(0, 1))(params, carry0)
        got = jax.jit(jax.grad(lambda p, c: loss(fast, p, c), argnums=(0, 1)))(params, carry0)
        # float32 sums in another order: agree to ~1e-6 of each gradient's scale
        jax.tree.map(lambda a, b: np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max()), want, got)
        assert np.all(got[1][0] == 0) and np.abs(got[1][1:]).min() > 0  # reset at t = 0 cuts env 0's start carry


def test_config_errors():
    with pytest.raises(ConfigError, match="whole env sequences"):
        rp.Config(num_minibatches=3).validate()
    with pytest.raises(ConfigError, match="always separate"):
        rp.Config(separate_updates=False).validate()
    with pytest.raises(ConfigError, match="hidden"):
        rp.Config(hidden=(0,)).validate()
    with pytest.raises(ConfigError, match="vector observations"):
        rp.make_learner(rp.Config(), envs.make("Breakout-MinAtar"))
    assert rp.Config(hidden=(32,), num_minibatches=8).validate()
    assert rp.ALGO.presets["cartpole-novel"] == rp.Config()


def test_host_backend_improves_on_gym_cartpole_without_velocities():
    env = envs.make("gym:CartPoleNoVel-v1")
    cfg = rp.Config(env="gym:CartPoleNoVel-v1", total_steps=25_600)
    res = rp.ALGO.train(cfg, env, jax.random.PRNGKey(0))
    curve = res.history["episode_return_sum"][0] / np.maximum(res.history["episode_count"][0], 1)
    assert curve[:10].mean() < 40 and curve[-10:].mean() > max(60, 2 * curve[:10].mean()), curve  # 5x at keys 0, 1


def test_one_seed_runs_the_actor_and_the_critic_on_two_devices_with_the_sequential_result(monkeypatch, novel):
    """One seed's update runs the actor's epochs and the critic's on two devices at once
    (``parts.learn_parts_in_parallel``): every array of the final state and every metric equals the
    sequential run's, bit for bit (also the clip schedule's update count, which the actor's side owns)."""
    if len(jax.devices()) < 2:
        pytest.skip("needs two host devices")
    cfg = rp.Config(total_steps=1024)
    assert parts.on_two_devices(rp.ALGO, cfg, 1) is not None
    parallel = rp.ALGO.train(cfg, novel, jax.random.PRNGKey(3))
    monkeypatch.setattr(parts, "on_two_devices", lambda *a: None)
    monkeypatch.setattr(devices, "_COMPILED", {})
    sequential = rp.ALGO.train(cfg, novel, jax.random.PRNGKey(3))
    for a, b in zip(jax.tree.leaves(parallel.state), jax.tree.leaves(sequential.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for k in sequential.history:
        np.testing.assert_array_equal(parallel.history[k], sequential.history[k])
    assert int(np.asarray(sequential.state.algo.updates).reshape(-1)[0]) == 4


@pytest.mark.slow
def test_reaches_475_on_cartpole_without_velocities_for_4_of_4_seeds(novel):
    cfg = rp.Config()
    res = rp.ALGO.train(cfg, novel, jax.random.PRNGKey(0), seeds=4)
    returns = [rp.ALGO.evaluate(cfg, novel, *rp.ALGO.seed_policy(cfg, res, i), jax.random.PRNGKey(7), 20).mean()
               for i in range(4)]
    assert min(returns) >= 475, returns


def test_resumes_from_its_checkpoint_exactly(tmp_path):
    """A run (one seed: its update split over two devices) checkpointed mid-way and resumed ends with the
    uninterrupted run's state and metrics: the GRUs' carries, the clip schedule's count and both
    optimisers travel in the checkpoint."""
    from surrogate import run

    cfg = rp.Config(total_steps=3072)
    full = run.train_in_dir(tmp_path / "full", "recurrent_ppo", cfg, checkpoint_every=2, eval_episodes=2)
    run.train_in_dir(tmp_path / "cut", "recurrent_ppo", cfg, checkpoint_every=2, stop_after=4)
    resumed = run.train_in_dir(tmp_path / "cut", resume=True, eval_episodes=2)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (tmp_path / "cut" / "metrics.csv").read_text() == (tmp_path / "full" / "metrics.csv").read_text()
