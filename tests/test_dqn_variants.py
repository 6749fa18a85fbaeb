"""DQN's variants: n-step transitions across episode ends and iterations, dueling aggregation, prioritized
replay, the CNN torsos on MinAtar observations, soft DQN, and the MinAtar preset end to end."""
import surrogate  # noqa: F401  (first: sets the host device count before jax is imported)
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from surrogate import checkpoint, envs, run
from surrogate.algos import dqn, get, soft_dqn
from surrogate.core.nstep import n_step_sums
from surrogate.core.prioritized import beta_schedule, importance_weights, sample_proportional
from surrogate.core.networks import Im2colConv
from surrogate.core.q_networks import QNetwork
from surrogate.core.td import n_step_targets
from surrogate.errors import ConfigError
from surrogate.runtime.rollout import Batch, Experience

SMALL = dqn.Config(total_steps=2_000, num_envs=4, num_steps=5, buffer_size=500, learning_starts=100, batch_size=16,
                   gradient_steps=2, hidden=(16, 16), exploration_fraction=0.3)


@functools.lru_cache(maxsize=None)
def jit_learn(cfg, env):
    return jax.jit(lambda s, e, k: dqn.learn(cfg, env, s, e, k))


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@pytest.fixture(scope="module")
def breakout():
    return envs.make("Breakout-MinAtar")


# ----------------------------------------------------------------------------- n-step transitions


def two_env_rollout(t0: int, T: int = 2):
    """Steps t0 .. t0+T-1 of two envs. Env 0: rewards t+1, terminated at step 1, truncated at step 3. Env 1:
    rewards 10 (t+1), no episode end. obs[t, n] = (t, n, 0, 0), next_obs = (t + 0.5, n, 0, 0)."""
    t = np.arange(t0, t0 + T)
    obs = np.stack([np.stack([t, np.full(T, n), 0 * t, 0 * t], -1) for n in (0, 1)], 1).astype(np.float32)
    rewards = np.stack([t + 1.0, 10.0 * (t + 1)], 1).astype(np.float32)
    term = np.stack([t == 1, np.zeros(T, bool)], 1)
    done = np.stack([(t == 1) | (t == 3), np.zeros(T, bool)], 1)
    next_obs = obs + np.array([0.5, 0, 0, 0], np.float32)
    return Batch(obs, np.zeros((T, 2), np.int32), rewards, term, done, next_obs)


@pytest.mark.parametrize("bootstrap_truncation", [True, False])
def test_n_step_transitions_by_hand_across_episode_ends_and_iterations(cartpole, bootstrap_truncation):
    """n = 3, gamma = 0.5, two steps per iteration: each step is stored n - 1 = 2 steps late, through the window
    kept across iterations. Env 0's sums stop at its termination (step 1: no bootstrap) and at its truncation
    (step 3: bootstraps from the final observation, unless truncations count as terminal)."""
    cfg = dataclasses.replace(SMALL, num_envs=2, num_steps=2, buffer_size=32, learning_starts=1_000, n_step=3,
                              gamma=0.5, bootstrap_truncation=bootstrap_truncation)
    state = dqn.init(cfg, cartpole, jax.random.PRNGKey(0))
    sizes = []
    for i in range(3):  # steps 0-1, 2-3, 4-5
        state, _ = jit_learn(cfg, cartpole)(state, Experience(two_env_rollout(2 * i), None), jax.random.PRNGKey(i))
        sizes.append(int(state.replay.size))
    assert sizes == [0, 4, 8]  # the first iteration's window rows are not steps yet: nothing stored
    items = jax.tree.map(lambda x: np.asarray(x)[:8], state.replay.items)
    trunc_term = 0.0 if bootstrap_truncation else 1.0
    # (start step, env): R, m, terminal, the step whose next_obs the sum ends at; slots are time-major
    want = [((0, 0), 1 + 0.5 * 2, 2, 1.0, 1), ((0, 1), 10 + 0.5 * 20 + 0.25 * 30, 3, 0.0, 2),
            ((1, 0), 2.0, 1, 1.0, 1), ((1, 1), 20 + 0.5 * 30 + 0.25 * 40, 3, 0.0, 3),
            ((2, 0), 3 + 0.5 * 4, 2, trunc_term, 3), ((2, 1), 30 + 0.5 * 40 + 0.25 * 50, 3, 0.0, 4),
            ((3, 0), 4.0, 1, trunc_term, 3), ((3, 1), 40 + 0.5 * 50 + 0.25 * 60, 3, 0.0, 5)]
    for slot, ((t, n), ret, m, term, last) in enumerate(want):
        np.testing.assert_array_equal(items.obs[slot], [t, n, 0, 0])
        assert items.reward[slot] == pytest.approx(ret) and items.horizon[slot] == m, slot
        assert items.terminal[slot] == term, slot
        np.testing.assert_array_equal(items.next_obs[slot], [last + 0.5, n, 0, 0])
    # the window holds steps 4 and 5 for the next iteration
    np.testing.assert_array_equal(np.asarray(state.window.obs)[:, :, 0], [[4, 4], [5, 5]])
    # the targets use gamma^m: a transition with m = 2 that bootstraps from V(s') = 8
    mb = jax.tree.map(lambda x: x[4:5], items)
    y = dqn.td_targets(dataclasses.replace(cfg, double_q=False), cartpole, state.params, mb, jnp.array([[8.0, 3.0]]))
    assert float(y[0]) == pytest.approx(5.0 + 0.25 * (1 - trunc_term) * 8.0)


def test_n_step_sums_agree_with_core_td_n_step_targets():
    """R = n_step_targets with bootstrap values 0 and gamma^m (1 - term) = n_step_targets of zero rewards and
    bootstrap values 1, on random episode ends."""
    rng = np.random.default_rng(0)
    W, N, n, gamma = 12, 5, 4, 0.9
    rewards = jnp.asarray(rng.normal(size=(W, N)), jnp.float32)
    dones = jnp.asarray(rng.random((W, N)) < 0.25)
    terms = dones & jnp.asarray(rng.random((W, N)) < 0.5)
    R, m, term = n_step_sums(rewards, terms, dones, gamma, n)
    T = W - n + 1
    np.testing.assert_allclose(R, n_step_targets(rewards, terms, dones, jnp.zeros_like(rewards), gamma, n)[:T],
                               rtol=1e-6)
    discount = n_step_targets(jnp.zeros_like(rewards), terms, dones, jnp.ones_like(rewards), gamma, n)[:T]
    np.testing.assert_allclose(gamma ** np.asarray(m) * (1 - np.asarray(term)), discount, rtol=1e-6)
    assert set(np.unique(m)) <= set(range(1, n + 1))


# ----------------------------------------------------------------------------- networks


def test_dueling_aggregation_by_hand():
    """Q = V + A - mean_a A (Wang et al. 2016, eq. 9): torso relu(obs_0, obs_1) = (1, 2), V = h_0 + 0.5 = 1.5,
    A = (h_0, h_1, h_1 - h_0) = (1, 2, 1), mean A = 4/3."""
    net = QNetwork(3, (2,), "relu", True)
    pick = np.zeros((4, 2), np.float32)
    pick[0, 0] = pick[1, 1] = 1.0
    params = {"params": {"MLP_0": {"Dense_0": {"kernel": pick, "bias": np.zeros(2, np.float32)}},
                         "Dense_0": {"kernel": np.array([[1.0], [0.0]], np.float32), "bias": np.array([0.5], np.float32)},
                         "Dense_1": {"kernel": np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]], np.float32),
                                     "bias": np.zeros(3, np.float32)}}}
    assert jax.tree.structure(params) == jax.tree.structure(net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4))))
    q = net.apply(params, jnp.array([[1.0, 2.0, 0.0, 0.0]]))
    np.testing.assert_allclose(q[0], 1.5 + np.array([1.0, 2.0, 1.0]) - 4.0 / 3.0, rtol=1e-6)


def test_minatar_torso_matches_flax_conv_and_shapes(breakout):
    """MinAtarCNN's im2col convolution computes nn.Conv's; Q-values keep image observations' shape:
    [B, 10, 10, C] -> [B, A] and an extra leading axis passes through."""
    obs = jnp.asarray(np.random.default_rng(0).random((6, *breakout.obs_shape)) < 0.3, jnp.float32)
    conv = Im2colConv(16, kernel_init=jax.nn.initializers.normal(1.0))
    p = conv.init(jax.random.PRNGKey(1), obs)
    import flax.linen as nn
    np.testing.assert_allclose(conv.apply(p, obs), nn.Conv(16, (3, 3), padding="VALID").apply(p, obs), atol=1e-4)
    for dueling in (False, True):
        cfg = dataclasses.replace(dqn.PRESETS["minatar"], dueling=dueling)
        params = dqn.init(cfg, breakout, jax.random.PRNGKey(0)).params
        assert dqn.q_values(cfg, breakout, params, obs).shape == (6, breakout.action_dim)
        assert dqn.q_values(cfg, breakout, params, obs.reshape(2, 3, *obs.shape[1:])).shape == (2, 3, 3)
    assert params["params"]["MinAtarCNN_0"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert params["params"]["MinAtarCNN_0"]["Dense_0"]["kernel"].shape == (8 * 8 * 16, 128)


def test_nature_cnn_q_network_shape():
    net = QNetwork(6, (), "relu", True, "nature_cnn")
    obs = jnp.zeros((2, 84, 84, 4), jnp.uint8)
    params = net.init(jax.random.PRNGKey(0), obs)
    assert net.apply(params, obs).shape == (2, 6)
    assert params["params"]["NatureCNN_0"]["Dense_0"]["kernel"].shape == (7 * 7 * 64, 512)


# ----------------------------------------------------------------------------- prioritized replay


def test_prioritized_sampling_frequencies_are_proportional_to_priority_alpha():
    """P(i) = p_i^alpha / sum p^alpha over the filled slots only (chi-square at a fixed seed); the stored
    array holds p^alpha."""
    alpha = 0.6
    raw = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 100.0, 100.0, 100.0], np.float32)  # slots 5.. not filled
    idx, probs = jax.jit(sample_proportional, static_argnums=3)(jnp.asarray(raw**alpha), 5, jax.random.PRNGKey(0),
                                                                 200_000)
    counts = np.bincount(np.asarray(idx), minlength=8)
    want = raw[:5].astype(np.float64) ** alpha / (raw[:5].astype(np.float64) ** alpha).sum()
    assert counts[5:].sum() == 0
    assert stats.chisquare(counts[:5], want * counts.sum()).pvalue > 0.01
    np.testing.assert_allclose(probs, want[np.asarray(idx)], rtol=1e-5)
    # a sharply wrong law is rejected by the same test (the test has power)
    assert stats.chisquare(counts[:5], np.full(5, counts.sum() / 5)).pvalue < 1e-6


def test_importance_weights_and_beta_by_hand():
    """w = (N P)^-beta / max w (Schaul et al. 2016, sec. 3.4): N = 4, P = (.1, .2, .3, .4), beta = 0.5 ->
    (1, 1/sqrt 2, 1/sqrt 3, 1/2); normalised per minibatch (last axis)."""
    w = importance_weights(jnp.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]), 4, 0.5)
    np.testing.assert_allclose(w, [[1, 2**-0.5, 3**-0.5, 0.5], [1, 1, 1, 1]], rtol=1e-5)
    assert float(beta_schedule(0.4, 0.0)) == pytest.approx(0.4)
    assert float(beta_schedule(0.4, 0.5)) == pytest.approx(0.7)
    assert float(beta_schedule(0.4, 2.0)) == 1.0


def test_learn_writes_priorities(cartpole):
    """New transitions enter at the largest priority so far; after a gradient step the sampled slots hold
    (|TD error| + 1e-6)^alpha of that step's errors (one minibatch per iteration: sampling is exact)."""
    cfg = dataclasses.replace(SMALL, prioritized=True, gradient_steps=1, learning_starts=30, buffer_size=64)
    learn = jit_learn(cfg, cartpole)
    state = dqn.init(cfg, cartpole, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    rollout = lambda: Batch(rng.normal(size=(5, 4, 4)).astype(np.float32), rng.integers(0, 2, (5, 4)).astype(np.int32),
                            rng.normal(size=(5, 4)).astype(np.float32), np.zeros((5, 4), bool), np.zeros((5, 4), bool),
                            rng.normal(size=(5, 4, 4)).astype(np.float32))
    state, m = learn(state, Experience(rollout(), None), jax.random.PRNGKey(1))
    assert float(m["q_loss"]) == 0.0
    np.testing.assert_array_equal(np.asarray(state.priorities.items)[:20], 1.0)  # max priority starts at 1
    before, key, second = state, jax.random.PRNGKey(2), rollout()
    state, m = learn(state, Experience(second, None), key)
    assert float(m["q_loss"]) > 0
    stored = dqn.store(cfg, before, second)  # the buffer as learn sampled from it
    np.testing.assert_array_equal(np.asarray(stored.priorities.items)[:40], 1.0)
    batches, slots, weights = dqn.minibatches(cfg, stored, key)
    nq = dqn.q_values(cfg, cartpole, before.target, batches.next_obs[0])
    _, (_, err) = dqn.td_loss(cfg, cartpole, before.params, jax.tree.map(lambda x: x[0], batches), nq, None, True)
    prio = np.asarray(state.priorities.items)
    np.testing.assert_allclose(prio[np.asarray(slots[0])], (np.abs(err) + 1e-6) ** 0.6, rtol=1e-4)
    np.testing.assert_array_equal(np.delete(prio[:40], np.asarray(slots[0])), 1.0)  # untouched: still at the max
    assert float(state.max_priority) == pytest.approx(max(1.0, float(((np.abs(err) + 1e-6) ** 0.6).max())))
    assert float(weights.max()) == 1.0


def test_resume_with_n_step_and_prioritized_replay(tmp_path, cartpole):
    """A run cut after 50 of 100 iterations and resumed from its checkpoint (buffer, priorities and n-step
    window included) ends exactly as the uninterrupted one."""
    cfg = dataclasses.replace(SMALL, n_step=3, prioritized=True)
    whole = run.train_in_dir(tmp_path / "whole", "dqn", cfg, seeds=2, checkpoint_every=25, stop_after=100)
    run.train_in_dir(tmp_path / "cut", "dqn", cfg, seeds=2, checkpoint_every=25, stop_after=50)
    state, _, done = checkpoint.load(tmp_path / "cut" / run.CKPT,
                                     dqn.ALGO.state_template(cfg, cartpole, jax.random.PRNGKey(0), 2))
    assert done == 50 and np.asarray(state.algo.window.obs).shape == (2, 2, 4, 4)
    assert (np.asarray(state.algo.priorities.items)[:, :490] != 1.0).any()  # priorities moved off the max
    resumed = run.train_in_dir(tmp_path / "cut", resume=True, algo="dqn")
    for k in whole.history:
        np.testing.assert_array_equal(resumed.history[k], whole.history[k], err_msg=k)
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state)):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- soft DQN


def hand_q(cfg, env):
    """Q(s) = (s_0, s_1) for s_0, s_1 >= 0: a 4 -> 2 -> 2 relu net that copies two inputs."""
    pick = np.zeros((4, 2), np.float32)
    pick[0, 0] = pick[1, 1] = 1.0
    params = {"params": {"MLP_0": {"Dense_0": {"kernel": pick, "bias": np.zeros(2, np.float32)}},
                         "Dense_0": {"kernel": np.eye(2, dtype=np.float32), "bias": np.zeros(2, np.float32)}}}
    assert jax.tree.structure(params) == jax.tree.structure(dqn.init(cfg, env, jax.random.PRNGKey(0)).params)
    return params


def test_soft_targets_by_hand(cartpole):
    """y = r + gamma (1 - term) tau log mean_a exp(Q_target(s', a) / tau) (Schulman et al. 2017, eq. 11)."""
    cfg = dataclasses.replace(soft_dqn.Config(), hidden=(2,), activation="relu", dueling=False, gamma=0.9,
                              soft_tau=0.5)
    next_q = np.array([[1.0, 5.0], [10.0, 20.0], [4.0, 2.0]], np.float32)
    mb = dqn.Transition(np.zeros((3, 4), np.float32), np.zeros(3, np.int32), np.array([1.0, 2.0, 3.0]),
                        np.array([0.0, 1.0, 0.0]), np.zeros((3, 4), np.float32))
    y = dqn.td_targets(cfg, cartpole, hand_q(cfg, cartpole), mb, jnp.asarray(next_q))
    v = 0.5 * np.log(np.mean(np.exp(next_q / 0.5), axis=1))
    np.testing.assert_allclose(y, [1 + 0.9 * v[0], 2.0, 3 + 0.9 * v[2]], rtol=1e-5)
    assert v[0] < 5.0 and v[0] > 5.0 - 0.5 * np.log(2) - 1e-6  # between the max - tau log|A| and the max


def test_boltzmann_action_frequencies(cartpole):
    """Acting samples softmax(Q / tau): Q = (1, 0.5), tau = 0.5 -> P = softmax(2, 1); greedy when deterministic."""
    cfg = dataclasses.replace(soft_dqn.Config(), hidden=(2,), activation="relu", dueling=False, soft_tau=0.5)
    params = hand_q(cfg, cartpole)
    assert dqn.act_words(cfg, cartpole) == 4
    obs = jnp.tile(jnp.array([[1.0, 0.5, 0.0, 0.0]]), (40_000, 1))
    bits = jax.random.bits(jax.random.PRNGKey(3), (40_000, 4))
    actions, _ = jax.jit(dqn.act(cfg, cartpole, False))((params, 0.0), obs, (), bits)
    counts = np.bincount(np.asarray(actions), minlength=2)
    p = np.exp([2.0, 1.0]) / np.exp([2.0, 1.0]).sum()
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 0.01
    det, _ = dqn.act(cfg, cartpole, True)((params, 0.0), obs[:5], (), None)
    np.testing.assert_array_equal(det, 0)
    np_act = dqn.host_act(cfg, cartpole, (params, 0.0), None, np.random.default_rng(0))
    host_counts = np.bincount(np_act(np.asarray(obs[:20_000]), ())[0], minlength=2)
    assert stats.chisquare(host_counts, p * 20_000).pvalue > 0.01


def test_soft_dqn_registered_with_presets():
    assert get("soft_dqn") is soft_dqn.ALGO and soft_dqn.ALGO.learn is dqn.learn
    for cfg in soft_dqn.PRESETS.values():
        assert isinstance(cfg, soft_dqn.Config) and cfg.validate().soft_tau > 0 and cfg.eps_start == 0
    assert soft_dqn.PRESETS["minatar"].buffer_size == dqn.PRESETS["minatar"].buffer_size


@pytest.mark.slow
def test_soft_dqn_reaches_475_on_cartpole(cartpole):
    """soft_dqn's defaults (DQN's cartpole preset, soft_tau 0.05, no epsilon), 100k steps, 4 seeds in one run;
    measured 500 for 4 of 4 seeds (also at soft_tau 0.2)."""
    cfg = soft_dqn.Config()
    result = soft_dqn.ALGO.train(cfg, cartpole, jax.random.PRNGKey(0), seeds=4)
    returns = [float(soft_dqn.ALGO.evaluate(cfg, cartpole, *soft_dqn.ALGO.seed_policy(cfg, result, i),
                                            jax.random.PRNGKey(7), 20).mean()) for i in range(4)]
    assert min(returns) >= 475, returns


# ----------------------------------------------------------------------------- MinAtar


def test_minatar_preset_schedule_and_optimizer():
    cfg = dqn.PRESETS["minatar"]
    assert (cfg.buffer_size, cfg.batch_size, cfg.target_update_interval, cfg.learning_rate, cfg.learning_starts,
            cfg.network, cfg.loss) == (100_000, 32, 1_000, 2.5e-4, 5_000, "minatar_cnn", "huber")
    eps = lambda steps: float(dqn.epsilon(cfg, jnp.int32(steps)))
    # MinAtar: uniform before replay start, then 1 - 0.9 (t - 5000) / 100k, 0.1 after 105k frames
    assert eps(4_998) == 1.0 and eps(5_000) == 1.0
    assert eps(55_000) == pytest.approx(0.55, abs=1e-6) and eps(105_000) == pytest.approx(0.1, abs=1e-6)
    assert eps(4_000_000) == pytest.approx(0.1, abs=1e-6)
    # centered RMSprop as torch's: g / (sqrt(E g^2 - (E g)^2) + 0.01), E over decay 0.95 from 0
    g = {"w": jnp.array([0.3, -2.0])}
    opt = dqn.optimizer(cfg)
    update, _ = opt.update(g, opt.init(g))
    v, m = 0.05 * g["w"] ** 2, 0.05 * g["w"]
    np.testing.assert_allclose(update["w"], -2.5e-4 * g["w"] / (np.sqrt(v - m**2) + 0.01), rtol=1e-5)


@pytest.mark.parametrize("change, words", [(dict(n_step=0), "n_step must be >= 1"),
                                           (dict(priority_alpha=1.5), "priority_alpha must be in [0, 1]"),
                                           (dict(soft_tau=-1.0), "soft_tau must be >= 0")])
def test_variant_configs_validated(change, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        dataclasses.replace(dqn.Config(), **change).validate()


def test_minatar_trains_in_one_jit_with_seeds_vmapped(breakout):
    """The MinAtar preset, shrunk, trains Breakout-MinAtar in the JAX driver with 2 seeds; images are stored
    as uint8 with their shape; n-step and prioritized replay compile with the CNN too."""
    cfg = dataclasses.replace(dqn.PRESETS["minatar"], total_steps=400, learning_starts=100, buffer_size=300,
                              exploration_steps=100, target_update_interval=50, n_step=3, prioritized=True)
    result = dqn.ALGO.train(cfg, breakout, jax.random.PRNGKey(0), seeds=2)
    replay = result.state.algo.replay
    assert replay.items.obs.dtype == jnp.uint8 and replay.items.obs.shape == (2, 300, 10, 10, 4)
    assert set(np.unique(np.asarray(replay.items.obs))) <= {0, 1}
    assert (result.history["q_loss"][:, -1] > 0).all() and result.history["episode_count"].sum() > 0
    assert not np.allclose(result.history["q_loss"][0], result.history["q_loss"][1])


def test_atari_preset_is_cleanrl_dqn_atari():
    """CleanRL's dqn_atari.py: 10M steps, an update of batch 32 every 4 steps from 80k, replay 1M, Adam 1e-4,
    a target copy every 1000 steps, epsilon 1 -> 0.01 over 10% of the run, the Nature CNN."""
    c = dqn.PRESETS["atari"].validate()
    assert (c.env, c.total_steps, c.num_envs, c.num_steps, c.gradient_steps, c.batch_size) == (
        "ALE/Pong-v5", 10_000_000, 1, 4, 1, 32)
    assert (c.buffer_size, c.learning_starts, c.learning_rate, c.opt, c.grad_clip) == (
        1_000_000, 80_000, 1e-4, "adam", "none")
    assert c.tau == 0.0 and c.target_update_interval * c.steps_per_iteration == 1000
    assert (c.eps_start, c.eps_end, c.exploration_fraction, c.exploration_steps) == (1.0, 0.01, 0.1, 0)
    assert (c.double_q, c.dueling, c.network, c.bootstrap_truncation, c.n_step) == (False, False, "nature_cnn", False, 1)
    assert c.frame_replay  # each frame stored once: the 1M buffer in 13 GiB (tests/test_frame_replay.py)


def test_a_replay_buffer_too_big_for_the_machine_is_a_clear_error_and_leaves_no_run(tmp_path):
    config = dataclasses.replace(SMALL, buffer_size=10**12)
    with pytest.raises(ConfigError, match="Lower --buffer-size"):
        run.train_in_dir(tmp_path / "run", "dqn", config)
    assert not (tmp_path / "run").exists()
