import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.algos import ppo
from surrogate.algos import actor_critic as ac
from surrogate.runtime import devices, jax_driver, parts
from surrogate.runtime.rollout import Experience, jax_rollout, rollout_spec
from surrogate.core.networks import ActorCritic, numpy_policy


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


def first_rollout(algo, cfg, env, key=3):
    """A seed's initial state and its first rollout (fresh resets), as the JAX driver makes them."""
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(algo, cfg, env, jax.random.PRNGKey(key)[None]))
    spec = rollout_spec(cfg, env, algo.act_words(cfg, env))
    carry, batch, _ = jax_rollout(spec, env, algo.act(cfg, env, False), algo.policy(cfg, runner.algo), runner.env,
                                  jax.random.PRNGKey(4), start=True)
    return runner.algo, Experience(batch, carry.obs_stats)


@pytest.fixture(scope="module")
def four_seeds(cartpole):
    """The default (rl-zoo) config, 100k steps, 4 seeds in one jitted, sharded run."""
    return ppo.ALGO.train(ppo.Config(), cartpole, jax.random.PRNGKey(0), seeds=4)


def test_ppo_reaches_475_on_cartpole_for_4_of_4_seeds(cartpole, four_seeds):
    cfg = ppo.Config()
    returns = [ppo.ALGO.evaluate(cfg, cartpole, *ppo.ALGO.seed_policy(cfg, four_seeds, i), jax.random.PRNGKey(7), 20).mean()
               for i in range(4)]
    assert min(returns) >= 475, returns
    assert four_seeds.history["episode_return_sum"].shape == (4, cfg.num_updates)


def test_seeds_differ_and_are_deterministic(cartpole, four_seeds):
    again = ppo.ALGO.train(ppo.Config(), cartpole, jax.random.PRNGKey(0), seeds=4)
    for a, b in zip(jax.tree.leaves(four_seeds.state.algo.params), jax.tree.leaves(again.state.algo.params)):
        np.testing.assert_array_equal(a, b)
    w = jax.tree.leaves(four_seeds.state.algo.params)[0]
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
    """The host rollout's NumPy sampler acts exactly as ``actor_critic.sample`` on ``normalize(stats, obs)``
    with the same pre-drawn noise (scaled by the std for a Gaussian policy)."""
    from surrogate.core.distributions import draw_noise
    from surrogate.core.normalize import RunningStats, normalize

    env = envs.make(env_id)
    cfg = dataclasses.replace(ppo.Config(), env=env_id, normalize_obs=True, num_envs=2, num_steps=3,
                              log_std_init=-0.5)
    learner = ppo.make_learner(cfg, env)
    params = ppo.init(cfg, env, jax.random.PRNGKey(2)).params
    rng = np.random.default_rng(4)
    stats = RunningStats(rng.normal(size=env.obs_shape).astype(np.float32),
                         rng.uniform(0.1, 2, env.obs_shape).astype(np.float32), np.float32(5))
    act = ac.host_act(cfg, env, params, stats, np.random.default_rng(7))
    noise = draw_noise(np.random.default_rng(7), (3, 2, env.action_dim), env.discrete)
    for t in range(3):
        obs = rng.normal(size=(2, *env.obs_shape)).astype(np.float32) * 3
        want = ac.sample(learner.network, env.discrete, params, normalize(stats, obs), noise[t])
        actions, carry = act(obs, ())
        np.testing.assert_allclose(actions, want, rtol=1e-5, atol=1e-5)
        assert carry == ()


def test_first_epoch_starts_at_ratio_one_and_kl_stays_small(cartpole):
    """prepare() evaluates the old policy under the same normalisation the update uses."""
    cfg = dataclasses.replace(ppo.Config(), normalize_obs=True, normalize_reward=True, total_steps=2560)
    learner = ppo.make_learner(cfg, cartpole)
    train, experience = first_rollout(ppo.ALGO, cfg, cartpole)
    data = ppo.prepare(cfg, learner, train.params, experience)
    _, m = ppo.joint_loss(train.params, cfg, learner, data)
    assert float(m["approx_kl"]) == pytest.approx(0.0, abs=1e-7) and float(m["clip_frac"]) == 0.0
    # normalised advantages: the surrogate at ratio 1 is -mean(normalised adv) = 0
    assert float(m["policy_loss"]) == pytest.approx(0.0, abs=1e-5)
    train, metrics = ppo.learn(cfg, cartpole, train, experience, jax.random.PRNGKey(5))
    assert 0.0 < float(metrics["approx_kl"]) < 0.2  # approx KL after 20 epochs at the clipped objective


def test_host_path_learns_gymnasium_cartpole():
    env = envs.make("gym:CartPole-v1")
    cfg = ppo.Config(total_steps=60_000)
    res = ppo.ALGO.train(cfg, env, jax.random.PRNGKey(0), seeds=1)
    params, stats = ppo.ALGO.seed_policy(cfg, res, 0)
    ret = ppo.ALGO.evaluate(cfg, env, params, stats, jax.random.PRNGKey(1), 10)
    assert ret.mean() >= 400, ret
    curve = res.history["episode_return_sum"][0] / np.maximum(res.history["episode_count"][0], 1)
    assert curve[:10].mean() < 60  # it started from a random policy


def test_continuous_actions_gaussian_policy_on_pendulum_improves():
    env = envs.make("Pendulum-v1")
    cfg = ppo.Config(env="Pendulum-v1", total_steps=120_000, num_envs=16, num_steps=128, num_epochs=10,
                     num_minibatches=8, learning_rate=1e-3, gamma=0.95, gae_lambda=0.9, normalize_obs=True,
                     normalize_reward=True, ent_coef=0.0)
    res = ppo.ALGO.train(cfg, env, jax.random.PRNGKey(0), seeds=2)
    for i in range(2):
        ret = ppo.ALGO.evaluate(cfg, env, *ppo.ALGO.seed_policy(cfg, res, i), jax.random.PRNGKey(1), 10).mean()
        assert ret > -600, ret  # a random policy scores about -1200


@pytest.mark.parametrize("clip", [dict(max_grad_norm=1e9), dict(grad_clip="elementwise", max_grad_norm=0.01)])
def test_separate_updates_equal_joint_updates_without_coupled_clipping(cartpole, clip):
    """Actor and critic share no parameters and Adam is element-wise, so with clipping off, or an
    element-wise clip (here it clips ~6% of the entries), the separate updates (actor epochs, then critic
    epochs, same shuffles) give the joint update's parameters."""
    base = dict(normalize_obs=True, total_steps=512, num_minibatches=4, num_epochs=3, **clip)
    joint, sep = ppo.Config(**base), ppo.Config(**base, separate_updates=True)
    out = {}
    for cfg in (joint, sep):
        train, experience = first_rollout(ppo.ALGO, cfg, cartpole)
        out[cfg.separate_updates] = ppo.learn(cfg, cartpole, train, experience, jax.random.PRNGKey(5))
        if cfg.separate_updates:  # the host path's two programs (actor, then critic) give the same
            learn = parts.host_learn(parts.of(ppo.ALGO, cfg), cfg, cartpole, jax.jit)
            t, metrics, _ = learn(train, experience, jax.random.PRNGKey(5))
            for a, b in zip(jax.tree.leaves(t.params), jax.tree.leaves(out[True][0].params)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(out[False][0].params), jax.tree.leaves(out[True][0].params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert out[False][1].keys() == out[True][1].keys()
    for k in out[False][1]:
        np.testing.assert_allclose(out[False][1][k], out[True][1][k], rtol=1e-4, atol=1e-6)


def test_separate_updates_learn_on_both_backends():
    # 100k steps: at 60k about one seed in six (joint or separate) is still below 400
    cfg = ppo.Config(total_steps=100_000, separate_updates=True)
    for env_id in ("CartPole-v1", "gym:CartPole-v1"):
        env = envs.make(env_id)
        res = ppo.ALGO.train(cfg, env, jax.random.PRNGKey(0))
        ret = ppo.ALGO.evaluate(cfg, env, *ppo.ALGO.seed_policy(cfg, res, 0), jax.random.PRNGKey(1), 10).mean()
        assert ret >= 400, (env_id, ret)


def test_initial_state_compiles_nothing_and_the_first_rollout_starts_from_fresh_resets(cartpole):
    """The JAX driver's initial state is made on the host: NumPy parameters, the optimiser's zero state
    (``zeros_like_init``, equal to optax's ``init``) and placeholder env states, which the first rollout
    replaces with fresh resets (each env its own); a later rollout continues from its carry."""
    from surrogate.algos import trpo, vpg

    for algo, cfg in ((ppo.ALGO, ppo.Config()), (ppo.ALGO, ppo.Config(separate_updates=True)),
                      (trpo.ALGO, trpo.Config()), (vpg.ALGO, vpg.Config())):
        state = algo.init(cfg, cartpole, jax.random.PRNGKey(5))
        module = ppo if algo is ppo.ALGO else trpo
        optimizer = module.make_learner(cfg, cartpole).optimizer
        if algo is ppo.ALGO and cfg.separate_updates:
            want = tuple(optimizer.init(p) for p in ac.split_params(state.params))
        elif algo is ppo.ALGO:
            want = optimizer.init(state.params)
        else:
            from jax.flatten_util import ravel_pytree
            actor, critic = ac.split_params(state.params)
            want = (optimizer[0].init(ravel_pytree(actor)[0]) if optimizer[0] else (),
                    optimizer[1].init(critic) if optimizer[1] else ())
        jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), state.opt_state, want)
    cfg = ppo.Config()
    runner = jax.tree.map(lambda x: x[0], jax_driver.initial_state(ppo.ALGO, cfg, cartpole, jax.random.PRNGKey(5)[None]))
    assert not np.asarray(runner.env.obs).any()
    spec = rollout_spec(cfg, cartpole, ppo.ALGO.act_words(cfg, cartpole))
    act = ppo.ALGO.act(cfg, cartpole, False)
    roll = jax.jit(lambda c, s: jax_rollout(spec, cartpole, act, runner.algo.params, c, jax.random.PRNGKey(4),
                                            start=s)[:2])
    carry, batch = roll(runner.env, True)
    first = np.asarray(batch.obs[0])
    assert (np.abs(first) <= 0.05).all() and first.any() and len(np.unique(first[:, 0])) == cfg.num_envs
    np.testing.assert_array_equal(roll(carry, False)[1].obs[0], carry.obs)


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
    algo = algos.get(method)
    cfg = dataclasses.replace(algo.presets["cartpole-rejax"] if method == "ppo" else algo.Config(), **overrides)
    env = envs.make("CartPole-v1")
    assert parts.on_two_devices(algo, cfg, 1) is not None
    assert parts.on_two_devices(algo, cfg, 2) is None
    parallel = algo.train(cfg, env, jax.random.PRNGKey(3))
    monkeypatch.setattr(parts, "on_two_devices", lambda *a: None)
    monkeypatch.setattr(devices, "_COMPILED", {})
    sequential = algo.train(cfg, env, jax.random.PRNGKey(3))
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
    assert parts.on_two_devices(ppo.ALGO, cfg, 1) is not None
    full = run.train_in_dir(tmp_path / "full", "ppo", cfg, checkpoint_every=2, eval_episodes=2)
    run.train_in_dir(tmp_path / "cut", "ppo", cfg, checkpoint_every=2, stop_after=4)
    resumed = run.train_in_dir(tmp_path / "cut", resume=True, eval_episodes=2)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (tmp_path / "cut" / "metrics.csv").read_text() == (tmp_path / "full" / "metrics.csv").read_text()
