"""Networks: MLP, Nature CNN torso, and the actor-critic used by policy-gradient methods.

Orthogonal initialisation with the gains of the PPO reference implementation
(sqrt(2) hidden, 0.01 policy head, 1.0 value head; Andrychowicz et al. 2021 sec. 3.2).
"""
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


def orthogonal_np(rng, shape, scale: float) -> np.ndarray:
    """A random orthogonal matrix (Saxe et al. 2014) reshaped to ``shape``, times ``scale``: Q of the QR
    factorisation of a Gaussian matrix with the signs of ``diag(R)`` made positive (Mezzadri 2007), so
    Q is Haar-distributed. ``rng``: a NumPy ``Generator``, or a JAX key's data to seed one."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(np.asarray(rng, np.uint32).ravel())
    n_rows, n_cols = math.prod(shape) // shape[-1], shape[-1]
    q, r = np.linalg.qr(rng.standard_normal((max(n_rows, n_cols), min(n_rows, n_cols))))
    q = q * np.sign(np.diag(r))
    q = q.T if n_rows < n_cols else q
    return (scale * q).reshape(shape).astype(np.float32)


def orthogonal(scale: float = 1.0):
    """Orthogonal initialiser like ``jax.nn.initializers.orthogonal(scale)`` (same distribution, other
    draws), computed on the host by ``orthogonal_np`` through ``jax.pure_callback``.

    Written by hand for two measured reasons (benchmarks/README.md): compiling the Gaussian draws and a
    QR into the initialiser was more than half of a run's compile time, and jaxlib 0.10.2's
    batched LAPACK QR (what ``jax.nn.initializers.orthogonal`` calls under ``vmap``) deadlocks
    intermittently on CPU (its ``ParallelBatchMap`` waits on XLA's intra-op pool from a thread of
    that pool). Works under ``jit``, ``vmap`` (one call per seed) and ``eval_shape``.
    """

    def init(key, shape, dtype=jnp.float32):
        data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        out = jax.ShapeDtypeStruct(tuple(shape), jnp.float32)
        q = jax.pure_callback(lambda d: orthogonal_np(d, tuple(shape), scale), out, data,
                              vmap_method="sequential")
        return q.astype(dtype)

    return init


HIDDEN_GAIN, POLICY_GAIN, VALUE_GAIN = float(np.sqrt(2)), 0.01, 1.0


def dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    """Fully connected torso; ``out`` > 0 adds a linear head with gain ``out_gain``."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    out: int = 0
    out_gain: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act(dense(h, HIDDEN_GAIN)(x))
        if self.out:
            x = dense(self.out, self.out_gain)(x)
        return x


class NatureCNN(nn.Module):
    """Mnih et al. 2015 torso: conv 32x8/4, 64x4/2, 64x3/1, dense 512. Expects NHWC in [0, 255] or [0, 1]."""

    scale: float = 1.0 / 255.0

    @nn.compact
    def __call__(self, x):
        x = x.astype(jnp.float32) * self.scale
        init = orthogonal(np.sqrt(2))
        for feat, k, s in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            x = nn.relu(nn.Conv(feat, (k, k), (s, s), padding="VALID", kernel_init=init)(x))
        x = x.reshape(*x.shape[:-3], -1)
        return nn.relu(dense(512, np.sqrt(2))(x))


class Im2colConv(nn.Module):
    """``nn.Conv(features, (k, k), padding=padding)`` (stride 1, odd ``k`` for ``"SAME"``) as one matmul of
    the ``k * k`` shifted views concatenated on the channel axis (im2col): the same parameters
    (``kernel [k, k, C, F]``, ``bias``) and outputs (tests check both against ``nn.Conv``). Measured on
    XLA:CPU: a DQN gradient step of batch 32 on MinAtar inside ``lax.scan`` took ~5 ms with ``nn.Conv`` and
    ~0.7 ms this way (benchmarks/README.md, "MinAtar DQN"); vmapped over per-task weights (MAML's
    meta-batch), where ``nn.Conv`` becomes a grouped convolution, 5 tasks' gradients of the few-shot conv
    net took 10.9 ms instead of 19.1 ms on 8x8 images and 129 ms instead of 191 ms on 28x28."""

    features: int
    kernel_size: int = 3
    kernel_init: object = nn.initializers.lecun_normal()
    padding: str = "VALID"

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.padding not in ("VALID", "SAME"):
            raise ValueError(f"Im2colConv padding must be 'VALID' or 'SAME', got {self.padding!r}.")
        if self.padding == "SAME":
            pad = [(0, 0)] * (x.ndim - 3) + [(k // 2, k // 2), (k // 2, k // 2), (0, 0)]
            x = jnp.pad(x, pad)
        h, w = x.shape[-3] - k + 1, x.shape[-2] - k + 1
        patches = jnp.concatenate([x[..., i:i + h, j:j + w, :] for i in range(k) for j in range(k)], axis=-1)
        return patches @ kernel.reshape(-1, self.features) + bias


class MinAtarCNN(nn.Module):
    """Young & Tian 2019 (MinAtar) torso, as in their DQN and actor-critic code: one 3x3 conv with 16
    channels, stride 1, no padding (10x10 -> 8x8), ReLU, flatten, dense ``hidden`` (128) with ReLU.
    Expects NHWC observations (MinAtar's 0/1 channels). The convolution is ``Im2colConv`` (``nn.Conv``'s
    parameters and outputs, ~7x faster in a training step here)."""

    hidden: int = 128

    @nn.compact
    def __call__(self, x):
        x = x.astype(jnp.float32)
        x = nn.relu(Im2colConv(16, kernel_init=orthogonal(np.sqrt(2)), name="Conv_0")(x))
        x = x.reshape(*x.shape[:-3], -1)
        return nn.relu(dense(self.hidden, np.sqrt(2))(x))


TORSOS = {"nature_cnn": NatureCNN, "minatar_cnn": MinAtarCNN}


class ActorCritic(nn.Module):
    """Policy and value function.

    ``network="mlp"``: separate actor and critic MLPs (as in the PPO paper's MuJoCo setup).
    ``network="nature_cnn"`` / ``"minatar_cnn"``: one shared CNN torso (``TORSOS``) with two linear heads
    (Atari / MinAtar).
    Discrete policies return logits; continuous ones a mean and a state-independent log-std.
    """

    action_dim: int
    discrete: bool
    network: str = "mlp"
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0
    obs_ndim: int = 1

    def setup(self):
        if self.network in TORSOS:
            self.torso = TORSOS[self.network]()
            self.pi_head = dense(self.action_dim, POLICY_GAIN)
            self.v_head = dense(1, VALUE_GAIN)
        else:
            self.actor = MLP(self.hidden, self.activation, self.action_dim, POLICY_GAIN)
            self.critic = MLP(self.hidden, self.activation, 1, VALUE_GAIN)
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,))

    def _features(self, obs):
        """MLPs see observations flattened (``obs_ndim`` trailing axes form one sample)."""
        if self.network in TORSOS or self.obs_ndim == 1:
            return obs
        return obs.reshape(*obs.shape[: obs.ndim - self.obs_ndim], -1)

    def policy(self, obs):
        """Distribution parameters: ``logits`` or ``(mean, log_std)``."""
        if self.network in TORSOS:
            out = self.pi_head(self.torso(obs))
        else:
            out = self.actor(self._features(obs))
        if self.discrete:
            return out
        return out, jnp.broadcast_to(self.log_std, out.shape)

    def value(self, obs):
        if self.network in TORSOS:
            return self.v_head(self.torso(obs))[..., 0]
        return self.critic(self._features(obs))[..., 0]

    def __call__(self, obs):
        """``(policy(obs), value(obs))``; a shared CNN torso runs once (through ``policy`` and ``value``
        XLA merges the two torsos forward but not backward: 13 convolutions in the Nature CNN's
        gradient instead of 8, ~1.9x slower, benchmarks/README.md)."""
        if self.network not in TORSOS:
            return self.policy(obs), self.value(obs)
        features = self.torso(obs)
        out = self.pi_head(features)
        if not self.discrete:
            out = (out, jnp.broadcast_to(self.log_std, out.shape))
        return out, self.v_head(features)[..., 0]


def mlp_params_np(network: ActorCritic, rng: np.random.Generator, obs_shape) -> dict:
    """What ``network.init`` gives an MLP ``ActorCritic`` (same structure, shapes and distribution:
    orthogonal kernels with the modules' gains, zero biases, ``log_std_init``), drawn in NumPy.

    Written by hand so that a run's initialiser compiles no network code; a test checks it against
    ``network.init`` layer by layer."""
    def mlp(sizes, out_gain):
        gains = [HIDDEN_GAIN] * (len(sizes) - 2) + [out_gain]
        return {f"Dense_{i}": {"kernel": orthogonal_np(rng, (a, b), g), "bias": np.zeros(b, np.float32)}
                for i, (a, b, g) in enumerate(zip(sizes[:-1], sizes[1:], gains))}

    sizes = [math.prod(obs_shape[len(obs_shape) - network.obs_ndim:]), *network.hidden]
    params = {"actor": mlp([*sizes, network.action_dim], POLICY_GAIN), "critic": mlp([*sizes, 1], VALUE_GAIN)}
    if not network.discrete:
        params["log_std"] = np.full(network.action_dim, network.log_std_init, np.float32)
    return {"params": params}


ACTOR_KEYS = ("actor", "log_std")


def split_params(params):
    """``(actor part, critic part)`` of an MLP ``ActorCritic``'s parameters (they share nothing)."""
    p = params["params"]
    return ({k: v for k, v in p.items() if k in ACTOR_KEYS}, {k: v for k, v in p.items() if k not in ACTOR_KEYS})


def join_params(actor, critic):
    return {"params": {**actor, **critic}}


def _elu_(x):
    x[...] = np.where(x > 0, x, np.expm1(x))


def _swish_(x):
    x /= 1.0 + np.exp(-x)


# in place on a float32 array: the rollout's policy allocates nothing per step
NUMPY_ACTIVATIONS_ = {"tanh": lambda x: np.tanh(x, out=x), "relu": lambda x: np.maximum(x, 0.0, out=x),
                      "elu": _elu_, "swish": _swish_}


def numpy_policy(params, activation: str, shift=None, scale=None, clip: float = 10.0):
    """NumPy mirror of ``ActorCritic.policy``'s first output for MLP networks, for host rollouts.

    Returns ``f(obs[N, ...]) -> logits`` or the Gaussian mean (a fresh array), equal to the Flax
    module's output up to float rounding. With ``shift`` and ``scale`` the observations are first
    normalised as ``clip((obs - shift) * scale, -clip, clip)`` (``normalize`` with frozen statistics).
    A jitted call's dispatch costs about half a MuJoCo step, this a small fraction of it
    (benchmarks/README.md): the normalised input is written into a preallocated buffer with a trailing
    1, each layer is one product with ``[kernel; bias]`` into the next such buffer (``np.dot`` for one
    row), activations are in place.
    """
    act = NUMPY_ACTIVATIONS_[activation]
    p = params["params"]
    names = sorted(p["actor"], key=lambda k: int(k.split("_")[1]))
    layers = [np.vstack([np.asarray(p["actor"][k]["kernel"], np.float32),
                         np.asarray(p["actor"][k]["bias"], np.float32)[None]]) for k in names]
    shift = None if shift is None else np.asarray(shift, np.float32)
    scale = None if scale is None else np.asarray(scale, np.float32)
    plans = {}  # batch size -> (first input's view, [(input, kernel, output view)], last input)

    def plan(n):
        inputs = [np.ones((n, w.shape[0]), np.float32) for w in layers]  # last column: the 1 for the bias
        # np.dot into a C-contiguous output (one row: one env) costs about half of np.matmul's dispatch
        product = np.dot if n == 1 else np.matmul
        steps = [(product, x, w, h[:, :-1]) for x, w, h in zip(inputs, layers[:-1], inputs[1:])]
        return inputs[0][:, :-1], steps, inputs[-1]

    def forward(obs):
        n = obs.shape[0]
        if n not in plans:
            plans[n] = plan(n)
        first, steps, last = plans[n]
        if shift is None:
            first[...] = obs.reshape(n, -1)
        else:
            np.subtract(obs.reshape(n, -1), shift, out=first)
            np.multiply(first, scale, out=first)
            np.minimum(np.maximum(first, -clip, out=first), clip, out=first)
        for product, x, w, hidden in steps:
            product(x, w, out=hidden)
            act(hidden)
        return np.dot(last, layers[-1])

    return forward
