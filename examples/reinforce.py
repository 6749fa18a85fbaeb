"""A new algorithm through the contract: REINFORCE (Williams 1992) with a linear softmax policy."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from surrogate.core.advantages import discounted_returns
from surrogate.core.distributions import noise_from_bits
from surrogate.runtime import Algorithm


@dataclass(frozen=True)
class Config:
    env: str = "CartPole-v1"
    total_steps: int = 100_000
    num_envs: int = 8
    num_steps: int = 100  # steps per env and iteration
    learning_rate: float = 0.05
    gamma: float = 0.99

    def validate(self):
        return self


def init(config, env, key):  # parameters and Adam's state
    params = jnp.zeros((env.obs_shape[0], env.action_dim))
    return params, optax.adam(config.learning_rate).init(params)


def act(config, env, deterministic):
    def act_fn(params, obs, carry, bits):  # Gumbel-max sample of softmax(obs @ params), or its mode
        logits = obs @ params
        return (logits if deterministic else logits + noise_from_bits(bits, True)).argmax(-1), carry
    return act_fn


def learn(config, env, state, experience, key):  # one gradient step on -mean(log pi(a|s) (G - mean G))
    params, opt_state = state
    b = experience.batch
    returns = discounted_returns(b.rewards, b.terminations, b.dones, jnp.zeros_like(b.rewards), config.gamma)
    def loss(p):
        log_pi = jax.nn.log_softmax(b.obs @ p)
        taken = jnp.take_along_axis(log_pi, b.actions[..., None], -1)[..., 0]
        return -jnp.mean(taken * (returns - returns.mean()))
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = optax.adam(config.learning_rate).update(grads, opt_state)
    return (optax.apply_updates(params, updates), opt_state), {"loss": value}


REINFORCE = Algorithm("reinforce", Config, {}, ("loss",), init, policy=lambda config, state: state[0], act=act,
                      learn=learn, act_words=lambda config, env: env.action_dim)
