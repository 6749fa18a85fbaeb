"""Recurrent TRPO/TNPG/VPG (issue 27, the partially observed rllab tasks): the Fisher-vector products of the
unrolled GRU policy against the Hessian of the mean KL, the replay of acting (previous actions included) and the
resets at episode ends inside the loss's unroll, the trust region of real updates and learning on
CartPoleBalancing-rllab-LS, config errors, and the CLI with checkpoint and resume."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from surrogate import algos, cli, envs
from surrogate.algos import recurrent_ppo as rp
from surrogate.algos import recurrent_trpo as rt
from surrogate.algos import trpo
from surrogate.core.distributions import make_dist
from surrogate.core.normalize import init_stats
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import Batch, Experience

T, N = 8, 3


@pytest.fixture(scope="module")
def ls_env():
    return envs.make("CartPoleBalancing-rllab-LS")


@pytest.fixture(scope="module")
def novel_env():
    return envs.make("CartPoleNoVel-v1")


def tiny(env, **kw):
    """A GRU of 4 units with parameters of order one (the policy head's gain 0.01 scaled up), and its config."""
    cfg = rt.Config(**{**dict(env=env.id, num_envs=N, num_steps=T, total_steps=N * T, gru_size=4, cg_damping=0.0), **kw})
    state = rt.init(cfg, env, jax.random.PRNGKey(0))
    noise = lambda x, k: x + 0.5 * jax.random.normal(k, x.shape)
    leaves, treedef = jax.tree.flatten(state.params["actor"])
    actor = treedef.unflatten([noise(x, k) for x, k in zip(leaves, jax.random.split(jax.random.PRNGKey(1), len(leaves)))])
    return cfg, state._replace(params={**state.params, "actor": actor})


def synthetic_batch(cfg, env, dones, seed=0):
    """A ``[T, N]`` batch with random observations and actions, the episode ends ``dones`` and a random start
    carry (zero where the previous rollout's last step ended: here env 0)."""
    rng = np.random.default_rng(seed)
    t, n = dones.shape
    obs = rng.normal(size=(t, n, *env.obs_shape)).astype(np.float32)
    actions = (rng.integers(0, env.action_dim, (t, n)).astype(np.int32) if env.discrete
               else rng.normal(size=(t, n, env.action_dim)).astype(np.float32))
    carry = rt.initial_carry(cfg, env, n)
    carry = rt.Carry(rng.normal(size=carry.actor.shape).astype(np.float32), carry.critic,
                     np.asarray(rt.action_features(cfg, env, jnp.asarray(actions[0]))))
    carry = jax.tree.map(lambda c: c * (np.arange(n) > 0)[:, None], carry)
    steps = np.zeros((t, n), np.int32)
    batch = Batch(obs, actions, rng.normal(size=(t, n)).astype(np.float32), dones, dones, obs, carry, steps)
    return Experience(batch, init_stats(env.obs_shape, jnp))


def dones_with_resets():
    dones = np.zeros((T, N), bool)
    dones[2, 1] = dones[3, 1] = dones[5, 2] = True  # an episode of one step in env 1
    return dones


# ----------------------------------------------------------------------------- the unroll and its resets


@pytest.mark.parametrize("env_name", ["ls_env", "novel_env"])
def test_replay_reproduces_acting_step_by_step_with_previous_actions_and_resets(request, env_name):
    """``prepare``'s old log-probabilities (one unroll of each sequence from its start carry) equal those of
    ``act``'s network step by step, with the previous action as input and the carry (GRU state and previous
    action) zeroed after every episode end, as the runtime zeroes it."""
    env = request.getfixturevalue(env_name)
    cfg, state = tiny(env)
    experience = synthetic_batch(cfg, env, dones_with_resets())
    data, _ = rt.prepare(cfg, env, state, experience)
    batch, net = experience.batch, rt.make_learner(cfg, env).network
    carry, logps = batch.start_carry, []
    for t in range(T):
        x = rt.with_action(jnp.asarray(batch.obs[t]), carry.prev_action)
        dist, _, h = net.step(state.params["actor"], x, carry.actor, jnp.zeros(N, bool))
        logps.append(make_dist(dist, env.discrete).log_prob(batch.actions[t]))
        carry = rt.Carry(h, (), rt.action_features(cfg, env, jnp.asarray(batch.actions[t])))
        carry = jax.tree.map(lambda c: jnp.where(batch.dones[t][:, None], 0.0, c), carry)
    np.testing.assert_allclose(np.asarray(data.old_log_probs), np.stack(logps, 1), rtol=1e-5, atol=1e-6)


def test_loss_on_a_sequence_with_a_reset_is_the_sum_of_its_two_episodes_losses(ls_env):
    """One env's rollout of T steps whose episode ends at step 4: the loss ``sum(log pi(a|h) * A)`` of the whole
    sequence, and its gradient, equal the sums over the two pieces computed separately (the first from the
    stored carry, the second from a zero carry and no previous action): no memory and no gradient crosses the
    episode boundary inside the unroll."""
    cfg, state = tiny(ls_env, num_envs=1)
    dones = np.zeros((T, 1), bool)
    dones[4, 0] = True
    experience = synthetic_batch(cfg, ls_env, dones, seed=3)
    experience = experience._replace(batch=experience.batch._replace(
        start_carry=jax.tree.map(lambda c: c + 1.0, experience.batch.start_carry)))  # env 0's carry not zero here
    flat, unravel = ravel_pytree(state.params["actor"])
    outputs = rt.policy_outputs(rt.make_learner(cfg, ls_env), unravel)
    advantages = jnp.asarray(np.random.default_rng(4).normal(size=(1, T)), jnp.float32)

    def loss(f, exp, adv):
        data = rt.prepare(cfg, ls_env, state, exp)[0]
        return jnp.sum(make_dist(outputs(f, data), False).log_prob(data.actions) * adv)

    def piece(start, stop, carry):
        b = jax.tree.map(lambda x: x[start:stop], experience.batch._replace(start_carry=()))
        return experience._replace(batch=b._replace(start_carry=carry))

    zero = rt.initial_carry(cfg, ls_env, 1)
    first, second = piece(0, 5, experience.batch.start_carry), piece(5, T, zero)
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    whole, g_whole = value_and_grad(flat, experience, advantages)
    parts = [value_and_grad(flat, first, advantages[:, :5]), value_and_grad(flat, second, advantages[:, 5:])]
    np.testing.assert_allclose(whole, parts[0][0] + parts[1][0], rtol=1e-5)
    np.testing.assert_allclose(g_whole, parts[0][1] + parts[1][1], rtol=1e-4, atol=1e-5 * np.abs(g_whole).max())
    carried = piece(5, T, jax.tree.map(lambda c: c + 1.0, zero))  # the second piece from a non-zero carry: differs
    assert abs(float(value_and_grad(flat, carried, advantages[:, 5:])[0] - parts[1][0])) > 1e-3


@pytest.mark.parametrize("env_name", ["ls_env", "novel_env"])
def test_recurrent_fisher_vector_product_equals_the_hessian_of_the_mean_kl(request, env_name):
    """``trpo.policy_objectives``'s Fisher-vector products through the GRU's unroll (``J v`` by transposing its
    hand-written reverse pass) against ``jax.hessian`` of the mean KL computed by stepping the cell in a plain
    ``scan`` (autodiff only), on sequences with resets (also with ``fvp_fraction`` 0.5: every other sequence)."""
    env = request.getfixturevalue(env_name)
    cfg, state = tiny(env)
    data, _ = rt.prepare(cfg, env, state, synthetic_batch(cfg, env, dones_with_resets()))
    learner = rt.make_learner(cfg, env)
    flat, unravel = ravel_pytree(state.params["actor"])

    def by_steps(f, d):  # [N, T, ...] distribution parameters, one cell step at a time
        def body(h, inputs):
            x, reset = inputs
            dist, _, h = learner.network.step(unravel(f), x, h, reset)
            return h, dist
        swap = lambda x: jnp.swapaxes(x, 0, 1)
        return jax.tree.map(swap, jax.lax.scan(body, d.start_carry[0], (swap(d.obs), swap(d.resets)))[1])

    old = jax.tree.map(jax.lax.stop_gradient, make_dist(by_steps(flat, data), env.discrete))
    rng = np.random.default_rng(5)
    for fraction, sub in ((1.0, slice(None)), (0.5, slice(None, None, 2))):
        _, _, fisher = trpo.policy_objectives(dataclasses.replace(cfg, fvp_fraction=fraction), env.discrete,
                                              rt.policy_outputs(learner, unravel), flat, data, forward_mode=False)
        sub_data, sub_old = jax.tree.map(lambda x: x[sub], (data, old))
        hessian = jax.hessian(lambda f: sub_old.kl(make_dist(by_steps(f, sub_data), env.discrete)).mean())(flat)
        vs = rng.normal(size=(3, flat.size)).astype(np.float32)
        got = np.asarray(jax.jit(lambda v: jax.vmap(fisher(flat))(v))(vs))
        want = vs @ np.asarray(hessian).T
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
        assert np.abs(want).max() > 1e-3


# ----------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def ls_run(ls_env):
    """The ``cartpole`` preset (32 envs x 100 steps, TRPO max KL 0.1, linear baseline) for 12 updates."""
    cfg = dataclasses.replace(rt.TRPO.presets["cartpole"], total_steps=12 * 3200)
    return cfg, rt.TRPO.train(cfg, ls_env, jax.random.PRNGKey(0))


def test_every_trpo_update_keeps_the_kl_within_max_kl(ls_run):
    cfg, res = ls_run
    kl, backtracks = res.history["kl"][0], res.history["backtracks"][0]
    assert np.all(kl <= cfg.max_kl) and np.all(kl > 0.2 * cfg.max_kl), kl  # moved, inside the trust region
    assert np.all(backtracks < cfg.line_search_steps) and np.all(res.history["surrogate_gain"][0] > 0)


def test_learns_cartpole_balancing_with_limited_sensors(ls_run):
    """Positions only (no velocities): 68 -> ~780 per 100-step episode in 12 updates here (max ~1000)."""
    _, res = ls_run
    curve = res.history["episode_return_sum"][0] / np.maximum(res.history["episode_count"][0], 1)
    assert curve[:2].mean() < 100 and curve[-3:].mean() > 500, curve


def test_tnpg_learned_value_and_discrete_actions_run_an_update(novel_env):
    """TNPG with the learned value GRU on CartPoleNoVel-v1 (discrete): its step is on the KL boundary of the
    quadratic model (within 1.5 delta of the true KL) and the value fit reduces its loss."""
    cfg = rt.TNPGConfig(env="CartPoleNoVel-v1", num_envs=8, num_steps=32, total_steps=3 * 256, baseline="learned",
                        gae_lambda=0.95, vf_minibatch_size=4)
    res = rt.TNPG.train(cfg, novel_env, jax.random.PRNGKey(1))
    kl = res.history["kl"][0]
    assert np.all((kl > 0.3 * cfg.max_kl) & (kl < 1.5 * cfg.max_kl)), kl
    assert np.all(np.isfinite(res.history["value_loss"][0]))


# ----------------------------------------------------------------------------- configs, the CLI, checkpoints


def test_config_errors_and_presets(ls_env):
    for kw, message in ((dict(method="vpg"), "surrogate train recurrent_vpg"),
                        (dict(baseline="learned", vf_fit="trust_region"), "vf_fit 'trust_region' is not available"),
                        (dict(baseline="learned", vf_minibatch_size=5), "divisible by vf_minibatch_size"),
                        (dict(gru_size=0), "gru_size must be > 0"), (dict(max_grad_norm=0.0), "max_grad_norm"),
                        (dict(hidden=(0,)), "hidden"), (dict(network="nature_cnn"), "MLP encoder only"),
                        (dict(max_kl=-1.0), "max_kl must be > 0")):
        with pytest.raises(ConfigError, match=message):
            rt.Config(**kw).validate()
    with pytest.raises(ConfigError, match="recurrent_tnpg` runs method tnpg"):
        rt.TNPGConfig(method="trpo").validate()
    with pytest.raises(ConfigError, match="vector observations"):
        rt.make_learner(rt.Config(), envs.make("Breakout-MinAtar"))
    for name, method, step in (("recurrent_trpo", "trpo", 0.1), ("recurrent_tnpg", "tnpg", 0.05),
                               ("recurrent_vpg", "vpg", None)):
        algo = algos.get(name)
        rllab = algo.presets["rllab"].validate()
        assert rllab.method == method and rllab.batch_size == 50_000 and rllab.num_updates == 300
        assert (rllab.gamma, rllab.gae_lambda, rllab.gru_size, rllab.baseline) == (0.99, 1.0, 32, "linear")
        assert rllab.max_kl == step if step else rllab.policy_lr == 0.005 and rllab.max_grad_norm == 10.0
        assert algo.presets["cartpole"] == algo.Config()


@pytest.mark.parametrize("algo, extra", [("recurrent_trpo", []),
                                         ("recurrent_vpg", ["--baseline", "learned", "--vf-minibatch-size", "2"])])
def test_cli_trains_and_a_resumed_run_continues_the_same_trajectory(tmp_path, capsys, monkeypatch, algo, extra):
    """``surrogate train`` on CartPoleBalancing-rllab-LS with checkpoints; a run cut after 3 updates and resumed
    with ``--resume`` ends with the uninterrupted run's state and metrics (GRU carries, previous actions, the
    linear baseline's coefficients or the value GRU's Adam state, VPG's Adam state travel in the checkpoint)."""
    from surrogate import run

    monkeypatch.chdir(tmp_path)
    small = ["--env", "CartPoleBalancing-rllab-LS", "--num-envs", "4", "--num-steps", "25", "--total-steps", "500",
             "--checkpoint-every", "2", "--eval-episodes", "2", "--no-progress", *extra]
    assert cli.main(["train", algo, "--name", "full", *small]) == 0
    assert "final return" in capsys.readouterr().out
    header = (tmp_path / "runs" / "full" / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith("surrogate_gain,kl,entropy,backtracks,value_loss")
    cfg = run.load_result(tmp_path / "runs" / "full")[1]
    run.train_in_dir(tmp_path / "runs" / "cut", algo, cfg, checkpoint_every=2, stop_after=3)
    assert cli.main(["train", algo, "--resume", str(tmp_path / "runs" / "cut"), "--eval-episodes", "2",
                     "--no-progress"]) == 0
    full, cut = (run.load_result(tmp_path / "runs" / name)[3] for name in ("full", "cut"))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(cut.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    metrics = [(tmp_path / "runs" / name / "metrics.csv").read_text() for name in ("full", "cut")]
    assert metrics[0] == metrics[1]
    assert cli.main(["train", algo, "--name", "bad", *small, "--gru-size", "0"]) == 2
    assert "gru_size must be > 0" in capsys.readouterr().err
