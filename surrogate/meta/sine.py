"""The paper's toy problem: few-shot regression of sine waves (Nichol, Achiam & Schulman 2018, Section 6.1,
Figure 1; John Schulman's reptile-sinewaves demo): a task is y = a sin(x + b) with amplitude a ~ U(0.1, 5),
phase b ~ U(0, 2 pi), inputs x ~ U(-5, 5); the model is an MLP 1-64-64-1 (tanh, as the demo) trained with
mean squared error.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

X_RANGE = (-5.0, 5.0)


class MLP(nn.Module):
    """1-64-64-1 with tanh hidden units (the demo's network; the paper's figure used ReLU)."""
    hidden: tuple = (64, 64)

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = jnp.tanh(nn.Dense(h)(x))
        return nn.Dense(1)(x)


def init(key, hidden=(64, 64)):
    return MLP(hidden).init(key, jnp.zeros((1, 1)))


def apply(params, x):
    """The MLP whose parameters are ``params`` (any hidden sizes: read from the parameters' shapes)."""
    layers = params["params"]
    hidden = tuple(layers[f"Dense_{i}"]["kernel"].shape[1] for i in range(len(layers) - 1))
    return MLP(hidden).apply(params, x)


def loss_fn(params, x, y):
    """Mean squared error of the MLP on ``x [B, 1]``, ``y [B, 1]``."""
    return jnp.mean((apply(params, x) - y) ** 2)


def sample_functions(key, num_tasks: int):
    """``(amplitude, phase)``, each ``[num_tasks]``."""
    ka, kp = jax.random.split(key)
    return (jax.random.uniform(ka, (num_tasks,), minval=0.1, maxval=5.0),
            jax.random.uniform(kp, (num_tasks,), minval=0.0, maxval=2 * jnp.pi))


def sample_tasks(key, num_tasks: int, n_support: int, n_query: int):
    """``(x_support [T, n_support, 1], y_support, x_query [T, n_query, 1], y_query)``; support and query points
    of a task are independent draws of x ~ U(-5, 5) on the same sine wave."""
    kf, kx = jax.random.split(key)
    amp, phase = sample_functions(kf, num_tasks)
    x = jax.random.uniform(kx, (num_tasks, n_support + n_query, 1), minval=X_RANGE[0], maxval=X_RANGE[1])
    y = amp[:, None, None] * jnp.sin(x + phase[:, None, None])
    return x[:, :n_support], y[:, :n_support], x[:, n_support:], y[:, n_support:]
