"""A deterministic actor ``mu(s)`` and a critic ``Q(s, a)`` for continuous actions, as plain MLPs.

DDPG's networks (Lillicrap et al. 2016, "Continuous control with deep reinforcement learning", sec. 7):
ReLU hidden layers, a tanh actor output in ``[-1, 1]^A``, a linear critic output, the action entering the
critic at a chosen layer (the paper: the second). Parameters are ``{"Dense_i": {"kernel", "bias"}}`` drawn
in NumPy (nothing compiled); the forward passes run on NumPy or JAX arrays (``xp``), so the same actor
acts in a host rollout without a jitted call per step.
"""
import numpy as np


def init_mlp(rng: np.random.Generator, fan_ins, fan_outs, final_init: float) -> dict:
    """Weights and biases ``U(-1/sqrt(f), 1/sqrt(f))``, ``f`` the fan-in (also PyTorch's ``Linear`` init),
    the output layer's ``U(-final_init, final_init)`` (sec. 7: 3e-3; ``final_init = 0``: fan-in as the rest)."""
    out = {}
    for i, (a, b) in enumerate(zip(fan_ins, fan_outs)):
        bound = final_init if i == len(fan_outs) - 1 and final_init > 0 else 1.0 / np.sqrt(a)
        out[f"Dense_{i}"] = {"kernel": rng.uniform(-bound, bound, (a, b)).astype(np.float32),
                             "bias": rng.uniform(-bound, bound, b).astype(np.float32)}
    return out


def critic_fan_ins(obs_dim: int, action_dim: int, hidden, action_layer: int) -> list:
    """The input widths of the critic's layers: ``[obs_dim, *hidden]`` plus ``action_dim`` at ``action_layer``."""
    ins = [obs_dim, *hidden]
    ins[action_layer] += action_dim
    return ins


def actor_apply(params: dict, obs, xp=np):
    """``mu(s)`` in ``[-1, 1]^A``: ReLU hidden layers, a tanh output."""
    x, n = obs, len(params)
    for i in range(n):
        x = x @ params[f"Dense_{i}"]["kernel"] + params[f"Dense_{i}"]["bias"]
        x = xp.maximum(x, 0.0) if i < n - 1 else xp.tanh(x)
    return x


def critic_apply(params: dict, obs, action, action_layer: int, xp=np):
    """``Q(s, a)`` ``[...]``: ReLU hidden layers, a linear output; ``a`` joins the input of layer
    ``action_layer`` (0: with ``s``; the paper: 1, "actions were not included until the 2nd hidden layer")."""
    x, n = obs, len(params)
    for i in range(n):
        if i == action_layer:
            x = xp.concatenate([x, action], axis=-1)
        x = x @ params[f"Dense_{i}"]["kernel"] + params[f"Dense_{i}"]["bias"]
        x = xp.maximum(x, 0.0) if i < n - 1 else x
    return x[..., 0]
