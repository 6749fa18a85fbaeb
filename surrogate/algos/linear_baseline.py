"""rllab's linear feature baseline on a rollout (``core.baselines``): advantages from the fit of the previous
batch, then a refit on this batch's returns, in rllab's order (``rllab/sampler/base.py``,
``BaseSampler.process_samples``: predict, GAE, then ``baseline.fit``). Used by TRPO/TNPG/VPG with
``baseline="linear"``, by RWR, and (its features) by REPS.

Where rllab's paths are whole episodes, our rollouts cut episodes at the batch boundary (envs continue
across iterations). There the return is bootstrapped with the baseline's prediction at the next
observation (its step index one more): rllab's convention of a value of 0 after the last step applies
only at real episode ends (and at time-limit truncations with ``bootstrap_truncation=False``, rllab's
treatment of its horizon; with True they bootstrap from the prediction too).
"""
import jax.numpy as jnp
import numpy as np

from surrogate.algos.actor_critic import Learner, UpdateData, model_input
from surrogate.core.advantages import discounted_returns, gae
from surrogate.core.baselines import fit_linear, linear_features, num_features, predict_linear
from surrogate.core.distributions import make_dist
from surrogate.core.networks import ActorCritic


def init_coeffs(env):
    """Zero coefficients: rllab's baseline predicts 0 before its first fit."""
    return np.zeros(num_features(int(np.prod(env.obs_shape))), np.float32)


def features(learner: Learner, experience):
    """``(phi(s_t), phi(s_{t+1}))`` of a rollout, ``[T, N, F]``: the features of the observations the
    policy sees (raw ones unless ``normalize_obs``) at their index within the episode."""
    batch, obs_stats = experience
    obs = model_input(learner.spec, obs_stats, batch.obs)
    next_obs = model_input(learner.spec, obs_stats, batch.next_obs)
    steps = jnp.asarray(batch.episode_steps)
    return linear_features(obs, steps), linear_features(next_obs, steps + 1)


def advantages_and_returns(config, coeffs, phi, next_phi, batch):
    """GAE(gamma, lambda) advantages with the baseline as the value function (rllab's default lambda 1:
    discounted return minus baseline) and the discounted returns the baseline is refitted to, both
    bootstrapped from the baseline's prediction where the rollout cuts an episode."""
    values, next_values = predict_linear(coeffs, phi), predict_linear(coeffs, next_phi)
    terminal = batch.terminations if config.bootstrap_truncation else batch.dones
    advantages, _ = gae(batch.rewards, values, next_values, terminal, batch.dones, config.gamma, config.gae_lambda)
    returns = discounted_returns(batch.rewards, terminal, batch.dones, next_values, config.gamma)
    return values, advantages, returns


def prepare(config, learner: Learner, params, coeffs, experience):
    """``actor_critic.prepare`` with the linear baseline: flattened ``UpdateData`` (``old_values``: the
    baseline's predictions, ``targets``: the discounted returns) and the features ``[T * N, F]`` to refit on."""
    batch, obs_stats = experience
    obs = model_input(learner.spec, obs_stats, batch.obs)
    dist_params = learner.network.apply(params, obs, method=ActorCritic.policy)
    old_log_probs = make_dist(dist_params, learner.discrete).log_prob(batch.actions)
    phi, next_phi = features(learner, experience)
    values, advantages, returns = advantages_and_returns(config, coeffs, phi, next_phi, batch)
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    data = UpdateData(*map(flat, (obs, batch.actions, old_log_probs, values, advantages, returns)))
    return data, flat(phi)


def fit(phi, returns, reg_coeff: float = 1e-5):
    """``LinearFeatureBaseline.fit`` on this batch; returns ``(coeffs, 0.5 mean squared error of the new
    fit)`` (the ``value_loss`` metric)."""
    coeffs = fit_linear(phi, returns, reg_coeff)
    return coeffs, 0.5 * jnp.mean(jnp.square(predict_linear(coeffs, phi) - returns))


def feature_differences(phi, next_phi, dones):
    """REPS's ``phi(s') - phi(s)`` (``rllab/algos/reps.py``: each path's features with a zero row appended,
    differenced): ``phi(s') = 0`` after an episode's last step; where the rollout cuts an episode,
    ``phi(s')`` is the features of the next observation, which the next batch continues from."""
    return next_phi * (1.0 - dones.astype(phi.dtype))[..., None] - phi
