import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import ppo
from surrogate.core import onpolicy
from surrogate.core.networks import ActorCritic, numpy_policy


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@pytest.fixture(scope="module")
def four_seeds(cartpole):
    """The default (rl-zoo) config, 100k steps, 4 seeds in one jitted, sharded run."""
    return ppo.train(ppo.Config(), cartpole, jax.random.PRNGKey(0), seeds=4)


def test_ppo_reaches_475_on_cartpole_for_4_of_4_seeds(cartpole, four_seeds):
    cfg = ppo.Config()
    returns = [ppo.evaluate(cfg, cartpole, *ppo.seed_params(four_seeds, i), jax.random.PRNGKey(7), 20).mean()
               for i in range(4)]
    assert min(returns) >= 475, returns
    assert four_seeds.history["episode_return_sum"].shape == (4, cfg.num_updates)


def test_seeds_differ_and_are_deterministic(cartpole, four_seeds):
    again = ppo.train(ppo.Config(), cartpole, jax.random.PRNGKey(0), seeds=4)
    for a, b in zip(jax.tree.leaves(four_seeds.params), jax.tree.leaves(again.params)):
        np.testing.assert_array_equal(a, b)
    w = jax.tree.leaves(four_seeds.params)[0]
    assert not np.allclose(w[0], w[1])


def test_numpy_policy_matches_flax_module():
    from surrogate.core.normalize import RunningStats, normalize

    rng = np.random.default_rng(0)
    for discrete, act in ((True, "tanh"), (False, "relu"), (False, "elu"), (True, "swish")):
        net = ActorCritic(3, discrete, "mlp", (16, 8), act)
        params = jax.device_get(net.init(jax.random.PRNGKey(1), jnp.zeros((1, 5))))
        obs = (rng.normal(size=(4, 5)) * 30).astype(np.float32)  # some entries beyond the +-10 clip
        want = net.apply(params, obs, method=ActorCritic.policy)
        want = want if discrete else want[0]
        forward = numpy_policy(params, act)
        np.testing.assert_allclose(forward(obs), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(forward(obs[:1]), want[:1], rtol=1e-5, atol=1e-5)  # another batch size
        # with frozen normalisation statistics: the network applied to normalize(stats, obs)
        stats = RunningStats(rng.normal(size=5).astype(np.float32), rng.uniform(0.5, 2, 5).astype(np.float32),
                             np.float32(10))
        want = net.apply(params, normalize(stats, obs), method=ActorCritic.policy)
        want = want if discrete else want[0]
        forward = numpy_policy(params, act, stats.mean, 1 / np.sqrt(stats.var + 1e-8))
        np.testing.assert_allclose(forward(obs), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(forward(obs[2:3]), want[2:3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("env_id", ["gym:Pendulum-v1", "gym:CartPole-v1"])
def test_host_sampler_equals_the_jax_policy_on_normalised_observations(env_id):
    """The host rollout's NumPy sampler acts exactly as ``sample_actions`` on ``normalize(stats, obs)``
    with the same pre-drawn noise (scaled by the std for a Gaussian policy)."""
    from surrogate.core.distributions import draw_noise
    from surrogate.core.normalize import RunningStats, normalize

    env = envs.make(env_id)
    cfg = dataclasses.replace(ppo.Config(), env=env_id, normalize_obs=True, num_envs=2, num_steps=3,
                              log_std_init=-0.5)
    learner = ppo.make_learner(cfg, env)
    params = onpolicy.init_train_state(ppo.ALGO, cfg, learner, env.obs_shape, jax.random.PRNGKey(2)).params
    rng = np.random.default_rng(4)
    stats = RunningStats(rng.normal(size=env.obs_shape).astype(np.float32),
                         rng.uniform(0.1, 2, env.obs_shape).astype(np.float32), np.float32(5))
    act = onpolicy.host_sampler(cfg, learner, params, stats, np.random.default_rng(7))
    noise = draw_noise(np.random.default_rng(7), (3, 2, env.action_dim), env.discrete)
    for t in range(3):
        obs = rng.normal(size=(2, *env.obs_shape)).astype(np.float32) * 3
        want = onpolicy.sample_actions(learner, params, normalize(stats, obs), noise[t])
        np.testing.assert_allclose(act(obs), want, rtol=1e-5, atol=1e-5)


def test_first_epoch_starts_at_ratio_one_and_kl_stays_small(cartpole):
    """prepare() evaluates the old policy under the same normalisation the update uses."""
    cfg = dataclasses.replace(ppo.Config(), normalize_obs=True, normalize_reward=True, total_steps=2560)
    learner = ppo.make_learner(cfg, cartpole)
    runner = onpolicy.init_runner(ppo.ALGO, cfg, learner, cartpole, jax.random.PRNGKey(3))
    sample = lambda p, o, k: onpolicy.sample_actions(learner, p, o, k)
    from surrogate.core.rollout import jax_rollout

    carry, batch, _ = jax_rollout(learner.spec, cartpole, cartpole.default_params, sample, runner.train.params,
                                  runner.env, jax.random.PRNGKey(4), True)
    data = ppo.prepare(cfg, learner, runner.train.params, batch, carry.obs_stats)
    _, (pi_loss, v_loss, ent, kl, clip_frac) = ppo.loss_fn(runner.train.params, cfg, learner, data)
    assert float(kl) == pytest.approx(0.0, abs=1e-7) and float(clip_frac) == 0.0
    # normalised advantages: the surrogate at ratio 1 is -mean(normalised adv) = 0
    assert float(pi_loss) == pytest.approx(0.0, abs=1e-5)
    train, stats = ppo.learn(cfg, learner, runner.train, batch, carry.obs_stats, jax.random.PRNGKey(5))
    assert 0.0 < float(stats[3]) < 0.2  # approx KL after 20 epochs at the clipped objective


def test_host_path_learns_gymnasium_cartpole():
    env = envs.make("gym:CartPole-v1")
    cfg = ppo.Config(total_steps=60_000)
    res = ppo.train(cfg, env, jax.random.PRNGKey(0), seeds=1)
    params, stats = ppo.seed_params(res, 0)
    ret = ppo.evaluate(cfg, env, params, stats, jax.random.PRNGKey(1), 10)
    assert ret.mean() >= 400, ret
    curve = res.history["episode_return_sum"][0] / np.maximum(res.history["episode_count"][0], 1)
    assert curve[:10].mean() < 60  # it started from a random policy


def test_continuous_actions_gaussian_policy_on_pendulum_improves():
    env = envs.make("Pendulum-v1")
    cfg = ppo.Config(env="Pendulum-v1", total_steps=120_000, num_envs=16, num_steps=128, num_epochs=10,
                     num_minibatches=8, learning_rate=1e-3, gamma=0.95, gae_lambda=0.9, normalize_obs=True,
                     normalize_reward=True, ent_coef=0.0)
    res = ppo.train(cfg, env, jax.random.PRNGKey(0), seeds=2)
    for i in range(2):
        ret = ppo.evaluate(cfg, env, *ppo.seed_params(res, i), jax.random.PRNGKey(1), 10).mean()
        assert ret > -600, ret  # a random policy scores about -1200


@pytest.mark.parametrize("clip", [dict(max_grad_norm=1e9), dict(grad_clip="elementwise", max_grad_norm=0.01)])
def test_separate_updates_equal_joint_updates_without_coupled_clipping(cartpole, clip):
    """Actor and critic share no parameters and Adam is element-wise, so with clipping off, or an
    element-wise clip (here it clips ~6% of the entries), the separate updates (actor epochs, then critic
    epochs, same shuffles) give the joint update's parameters."""
    base = dict(normalize_obs=True, total_steps=512, num_minibatches=4, num_epochs=3, **clip)
    joint, sep = ppo.Config(**base), ppo.Config(**base, separate_updates=True)
    from surrogate.core.rollout import jax_rollout

    out = {}
    for cfg in (joint, sep):
        learner = ppo.make_learner(cfg, cartpole)
        runner = onpolicy.init_runner(ppo.ALGO, cfg, learner, cartpole, jax.random.PRNGKey(3))
        sample = lambda p, o, k: onpolicy.sample_actions(learner, p, o, k)
        carry, batch, _ = jax_rollout(learner.spec, cartpole, cartpole.default_params, sample, runner.train.params,
                                      runner.env, jax.random.PRNGKey(4), True)
        out[cfg.separate_updates] = ppo.learn(cfg, learner, runner.train, batch, carry.obs_stats, jax.random.PRNGKey(5))
        if cfg.separate_updates:  # the host path's two programs (actor, then critic) give the same
            data = ppo.prepare(cfg, learner, runner.train.params, batch, carry.obs_stats)
            perms = ppo.shuffles(cfg, data, jax.random.PRNGKey(5))
            t, a_stats = jax.jit(lambda t, d, p: ppo.step_actor(cfg, learner, t, d, p))(runner.train, data, perms)
            t, c_stats = jax.jit(lambda t, d, p: ppo.fit_critic(cfg, learner, t, d, p))(t, data, perms)
            for a, b in zip(jax.tree.leaves(t.params), jax.tree.leaves(out[True][0].params)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(out[False][0].params), jax.tree.leaves(out[True][0].params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[False][1], out[True][1], rtol=1e-4, atol=1e-6)


def test_separate_updates_learn_on_both_backends():
    # 100k steps: at 60k about one seed in six (joint or separate) is still below 400
    cfg = ppo.Config(total_steps=100_000, separate_updates=True)
    for env_id in ("CartPole-v1", "gym:CartPole-v1"):
        env = envs.make(env_id)
        res = ppo.train(cfg, env, jax.random.PRNGKey(0))
        ret = ppo.evaluate(cfg, env, *ppo.seed_params(res, 0), jax.random.PRNGKey(1), 10).mean()
        assert ret >= 400, (env_id, ret)


def test_lazy_init_starts_from_fresh_resets_and_optimiser_state(cartpole):
    """jax_init compiles nothing for an MLP: placeholder env and optimiser states, which the first
    update replaces (start_fresh: the optimiser state of the initial parameters; the first rollout:
    fresh resets, each env its own). Later updates keep theirs."""
    cfg = ppo.Config()
    learner = ppo.make_learner(cfg, cartpole)
    lazy = onpolicy.jax_init(ppo.ALGO, cfg, learner, cartpole, 1)(jax.random.PRNGKey(5)[None])
    lazy = jax.tree.map(lambda x: x[0], lazy)
    assert not np.asarray(lazy.env.obs).any()
    start = jax.jit(lambda r: onpolicy.start_fresh(ppo.ALGO, cfg, learner, r))
    same = lambda a, b: jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
    # Adam's initial state is zeros like the placeholder: fill the placeholder so that a no-op would fail
    filled = lazy._replace(train=lazy.train._replace(opt_state=jax.tree.map(np.ones_like, lazy.train.opt_state)))
    same(start(filled).train.opt_state, ppo.ALGO.init_opt_state(cfg, learner, lazy.train.params))
    later = onpolicy.init_runner(ppo.ALGO, cfg, learner, cartpole, jax.random.PRNGKey(5))._replace(update=jnp.int32(3))
    same(start(later), later)

    from surrogate.core.rollout import jax_rollout

    sample = lambda p, o, k: onpolicy.sample_actions(learner, p, o, k)
    roll = jax.jit(lambda c, s: jax_rollout(learner.spec, cartpole, cartpole.default_params, sample,
                                            lazy.train.params, c, jax.random.PRNGKey(4), True, start=s)[1].obs[0])
    first = np.asarray(roll(lazy.env, True))
    assert (np.abs(first) <= 0.05).all() and first.any() and len(np.unique(first[:, 0])) == cfg.num_envs
    np.testing.assert_array_equal(roll(later.env, False), later.env.obs)


@pytest.mark.parametrize("method, overrides", [("ppo", dict(total_steps=2500)),
                                               ("trpo", dict(num_envs=4, num_steps=64, total_steps=256 * 3))])
def test_one_seed_runs_the_actor_and_critic_parts_on_two_devices_with_the_sequential_result(monkeypatch, method,
                                                                                            overrides):
    """One seed of an update in parts (PPO's separate updates, TRPO) runs the actor's step and the critic's
    fit on two devices at once (``learn_parts_in_parallel``); every array of the final state and every
    metric equals the sequential run's: bit for bit for PPO (the parts share nothing; each device's half
    is gathered exactly), to float rounding for TRPO."""
    from surrogate import algos

    if len(jax.devices()) < 2:
        pytest.skip("needs two host devices")
    module = algos.get(method)
    cfg = dataclasses.replace(module.PRESETS["cartpole-rejax"] if method == "ppo" else module.Config(), **overrides)
    env = envs.make("CartPole-v1")
    assert onpolicy.parts_on_two_devices(module.ALGO, cfg, 1)
    assert not onpolicy.parts_on_two_devices(module.ALGO, cfg, 2)
    parallel = module.train(cfg, env, jax.random.PRNGKey(3))
    monkeypatch.setattr(onpolicy, "parts_on_two_devices", lambda *a: False)
    monkeypatch.setattr(onpolicy, "_COMPILED", {})
    sequential = module.train(cfg, env, jax.random.PRNGKey(3))
    # PPO's programs give the same bits; TRPO's conjugate-gradient and line-search reductions are fused
    # differently in the two programs, so its results agree to float rounding (~1e-4 relative here)
    same = np.testing.assert_array_equal if method == "ppo" else partial(np.testing.assert_allclose, rtol=2e-3,
                                                                         atol=1e-6)
    for a, b in zip(jax.tree.leaves(parallel.state), jax.tree.leaves(sequential.state), strict=True):
        same(np.asarray(a), np.asarray(b))
    for k in sequential.history:
        same(parallel.history[k], sequential.history[k])
    assert np.isfinite(sequential.history["value_loss"]).all() and sequential.history["value_loss"].max() > 0


def test_one_seed_on_two_devices_resumes_from_its_checkpoint_exactly(tmp_path):
    """A run on two devices checkpointed mid-way (the replicated state saved from the host) and resumed
    ends with the uninterrupted run's state and metrics."""
    from surrogate import run

    if len(jax.devices()) < 2:
        pytest.skip("needs two host devices")
    cfg = dataclasses.replace(ppo.PRESETS["cartpole-rejax"], total_steps=3000)
    assert onpolicy.parts_on_two_devices(ppo.ALGO, cfg, 1)
    full = run.train_in_dir(tmp_path / "full", "ppo", cfg, checkpoint_every=2, eval_episodes=2)
    run.train_in_dir(tmp_path / "cut", "ppo", cfg, checkpoint_every=2, stop_after=4)
    resumed = run.train_in_dir(tmp_path / "cut", resume=True, eval_episodes=2)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (tmp_path / "cut" / "metrics.csv").read_text() == (tmp_path / "full" / "metrics.csv").read_text()
