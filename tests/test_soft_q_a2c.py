"""Soft Q-learning and entropy-regularised A2C, and their equivalence (Schulman, Chen & Abbeel 2017).

The gradient test recomputes everything by hand (loops over the rollout, a tabular Q) instead of
reusing the library's target code, so a wrong sign, a missing KL term or a shifted bootstrap shows.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate.algos import a2c, soft_q
from surrogate.core.td import boltzmann_log_probs, soft_value
from surrogate.runtime.rollout import Batch

S, A, T, N = 6, 3, 7, 3
TAU, GAMMA = 0.7, 0.9


def random_rollout(rng, q_table):
    """``T`` steps of ``N`` envs of a random MDP acting with the Boltzmann policy of ``q_table``; episodes
    end at random, some terminated and some truncated (time limits: they bootstrap)."""
    P = rng.dirichlet(np.ones(S), size=(S, A))
    probs = np.exp(np.asarray(boltzmann_log_probs(jnp.asarray(q_table), TAU)))
    s = rng.integers(S, size=N)
    cols = {k: [] for k in ("obs", "actions", "rewards", "terminations", "dones", "next_obs")}
    for _ in range(T):
        a = np.array([rng.choice(A, p=probs[x]) for x in s])
        nxt = np.array([rng.choice(S, p=P[x, y]) for x, y in zip(s, a)])
        done = rng.random(N) < 0.3
        term = done & (rng.random(N) < 0.5)
        for k, v in zip(cols, (s, a, rng.normal(size=N), term, done, nxt)):
            cols[k].append(v)
        s = np.where(done, rng.integers(S, size=N), nxt)
    c = {k: jnp.asarray(np.stack(v)) for k, v in cols.items()}
    return Batch(c["obs"], c["actions"], c["rewards"].astype(jnp.float64), c["terminations"], c["dones"],
                 c["next_obs"])


def tabular_heads(params, obs):
    q = params[obs]
    return boltzmann_log_probs(q, TAU), soft_value(q, TAU)


def hand_targets(q_table, b: Batch):
    """``G'_t`` (the n-step return of ``r - tau kl`` to the rollout's or episode's end) by loops."""
    q = np.asarray(q_table)
    v = TAU * np.log(np.exp(q / TAU).mean(-1))  # soft value, uniform prior
    logp = q / TAU - v[:, None] / TAU - np.log(A)  # log pi = log prior + (Q - V) / tau
    obs, act, rew = np.asarray(b.obs), np.asarray(b.actions), np.asarray(b.rewards)
    term, done, nxt = np.asarray(b.terminations), np.asarray(b.dones), np.asarray(b.next_obs)
    kl = logp[obs, act] + np.log(A)
    G = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            g = 0.0
            for k in range(t, T):
                g += GAMMA ** (k - t) * (rew[k, n] - TAU * kl[k, n])
                if done[k, n] or k == T - 1:
                    if not term[k, n]:
                        g += GAMMA ** (k - t + 1) * v[nxt[k, n]]
                    break
            G[t, n] = g
    return G, kl


def test_soft_q_gradient_is_tau_times_policy_gradient_plus_value_gradient():
    """Sec. 4: with Q = V + tau log(pi / prior), the n-step soft Q-learning gradient equals tau times the
    entropy-regularised policy gradient plus the value error's gradient; equally, A2C's in that
    parametrization with vf_coef = 1 / tau, times tau. Tabular Q on a random MDP, float64, to 1e-6."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        theta = jnp.asarray(rng.normal(size=(S, A)))
        batch = random_rollout(rng, theta)
        G, kl = hand_targets(theta, batch)
        obs, act = batch.obs, batch.actions
        delta = G - np.asarray(tabular_heads(theta, obs)[1])
        log_prior = -jnp.log(A)

        def hand_pg_and_value(p):
            log_pi, v = tabular_heads(p, obs)
            log_pi_taken = jnp.take_along_axis(log_pi, act[..., None], -1)[..., 0]
            return -TAU * jnp.mean(log_pi_taken * delta) + 0.5 * jnp.mean((v - G) ** 2)

        cfg = soft_q.Config(tau=TAU, gamma=GAMMA, gae_lambda=1.0)
        sq_loss = lambda p: soft_q.soft_q_loss(cfg, tabular_heads, p, batch, log_prior)[0]
        g_sq = jax.grad(sq_loss)(theta)
        np.testing.assert_allclose(g_sq, jax.grad(hand_pg_and_value)(theta), atol=1e-6, rtol=1e-6)

        # the loss is the squared soft Bellman error of Q itself: Q(s_t, a_t) - y_t, y_t = G'_t + tau kl_t
        y = G + TAU * kl
        np.testing.assert_allclose(sq_loss(theta), 0.5 * np.mean((np.asarray(theta)[obs, act] - y) ** 2), rtol=1e-9)

        a2c_cfg = a2c.Config(tau=TAU, gamma=GAMMA, gae_lambda=1.0, vf_coef=1.0 / TAU, parametrization="q")
        a2c_loss = lambda p: a2c.a2c_loss(a2c_cfg, tabular_heads, p, batch, log_prior)[0]
        np.testing.assert_allclose(TAU * jax.grad(a2c_loss)(theta), g_sq, atol=1e-6, rtol=1e-6)
        assert np.abs(g_sq).max() > 1e-2  # not trivially zero


def test_one_sample_kl_term_is_unbiased():
    """A2C's proper entropy puts ``log pi(a_t) - log prior(a_t)`` of the sampled action in the return:
    ``E_a[grad log pi(a) (log pi(a) - log prior(a))]`` is exactly the gradient of KL(pi || prior)."""
    logits = jnp.array([0.3, -1.2, 2.0, 0.1])
    log_prior = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    kl = lambda z: jnp.sum(jax.nn.softmax(z) * (jax.nn.log_softmax(z) - log_prior))
    pi = jax.nn.softmax(logits)
    grad_log_pi = jax.jacobian(jax.nn.log_softmax)(logits)  # [a, logits]
    estimate = jnp.sum(pi[:, None] * grad_log_pi * (jax.nn.log_softmax(logits) - log_prior)[:, None], 0)
    np.testing.assert_allclose(estimate, jax.grad(kl)(logits), atol=1e-6)


@pytest.fixture(scope="module")
def cartpole():
    from surrogate import envs
    return envs.make("CartPole-v1")


def test_soft_q_and_a2c_learn_the_same_parameters_on_cartpole(cartpole):
    """Sec. 4 and 6.3 on CartPole-v1 from one seed: n-step soft Q-learning, and A2C in the Q
    parametrization with vf_coef = 1/tau and Adam's epsilon and the clip norm scaled by 1/tau (its
    gradient is 1/tau times soft Q-learning's; Adam's step is invariant to that scale), take the same
    actions and end with the same parameters after 10 updates."""
    tau = 0.5
    sq = soft_q.Config(total_steps=10 * 16 * 5, tau=tau, anneal_lr=False)
    ac = a2c.Config(total_steps=sq.total_steps, num_envs=sq.num_envs, num_steps=sq.num_steps, gamma=sq.gamma,
                    gae_lambda=1.0, tau=tau, vf_coef=1.0 / tau, optimizer="adam", opt_eps=sq.adam_eps / tau,
                    max_grad_norm=sq.max_grad_norm / tau, learning_rate=sq.learning_rate, parametrization="q",
                    hidden=sq.hidden, activation=sq.activation)
    key = jax.random.PRNGKey(3)
    r_sq = soft_q.ALGO.train(sq.validate(), cartpole, key)
    r_ac = a2c.ALGO.train(ac.validate(), cartpole, key)
    first = lambda tree: jax.tree.map(lambda x: np.asarray(x)[0], tree)  # the one seed
    p_sq, p_ac = first(r_sq.state.algo.params), first(r_ac.state.algo.params)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), p_sq, soft_q.init_params(sq, cartpole, key))
    assert max(jax.tree.leaves(moved)) > 1e-3  # the 10 updates changed the parameters
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5), p_sq, p_ac)
    np.testing.assert_allclose(r_sq.history["episode_return_sum"], r_ac.history["episode_return_sum"])


def test_initial_kl_reference_is_zero_at_the_start(cartpole):
    """kl_reference="initial": before the first update the policy is its own reference, so every
    sampled KL term is 0 and the regularised targets are the plain ones."""
    cfg = a2c.Config(total_steps=40, num_envs=2, num_steps=20, kl_reference="initial", tau=0.5)
    state = a2c.init(cfg, cartpole, jax.random.PRNGKey(0))
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(20, 2, 4)), jnp.float32)
    batch = Batch(obs, jnp.ones((20, 2), jnp.int32), jnp.ones((20, 2)), jnp.zeros((20, 2), bool),
                  jnp.zeros((20, 2), bool), obs)
    prior = a2c.log_prior(cfg, cartpole, state, batch)
    heads = lambda p, o: a2c.heads(cfg, cartpole, p, o)
    with_kl = a2c.a2c_loss(cfg, heads, state.params, batch, prior)
    plain = a2c.a2c_loss(dataclasses.replace(cfg, tau=0.0), heads, state.params, batch, prior)
    np.testing.assert_allclose(with_kl[1]["kl"], 0.0, atol=1e-6)
    np.testing.assert_allclose(with_kl[0], plain[0], rtol=1e-6)


@pytest.mark.parametrize("algo", [soft_q, a2c], ids=["soft_q", "a2c"])
def test_default_config_solves_cartpole_for_4_of_4_seeds(cartpole, algo):
    cfg = algo.Config()
    result = algo.ALGO.train(cfg, cartpole, jax.random.PRNGKey(0), seeds=4)
    returns = [float(algo.ALGO.evaluate(cfg, cartpole, *algo.ALGO.seed_policy(cfg, result, i),
                                        jax.random.PRNGKey(100 + i), 20).mean()) for i in range(4)]
    assert min(returns) >= 475, returns


def test_bad_configs_are_refused(cartpole):
    from surrogate.errors import ConfigError

    with pytest.raises(ConfigError, match="tau > 0"):
        a2c.Config(parametrization="q", tau=0.0).validate()
    with pytest.raises(ConfigError, match="discrete"):
        from surrogate import envs
        soft_q.init(soft_q.Config(), envs.make("Pendulum-v1"), jax.random.PRNGKey(0))
