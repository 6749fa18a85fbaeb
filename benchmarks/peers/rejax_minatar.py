"""rejax 0.1.3's DQN on gymnax's Breakout-MinAtar at MinAtar's DQN config, training only. Runs in the peers'
venv (rejax 0.1.3 + gymnax 0.0.9).

  rejax_minatar.py NSEEDS [TOTAL [REPEATS]]

rejax 0.1.3's DQN has MLP Q-networks only (observations flattened, 64-64); here its agent is replaced by
MinAtar's Q-network (Young & Tian 2019: 3x3 conv with 16 channels, ReLU, dense 128, ReLU, linear), written
with Flax's ``nn.Conv`` as a rejax user would, wrapped in rejax's ``EpsilonGreedyPolicy``. MinAtar's
config: one env, replay 100k filled for 5000 steps, one update of batch 32 per step, learning rate 2.5e-4,
a hard target copy every 1000 steps (polyak 0), epsilon 1 -> 0.1 over 100k steps, gamma 0.99, no double Q.
rejax keeps its own Adam (gradient clip 10), 0.5 * squared TD error and float32 replay (ours: MinAtar's
centered RMSprop, Huber loss, uint8 replay); per step the work is the same networks on the same batches.
Evaluation is a no-op during the timed calls (eval_freq = total, skip_initial_evaluation, the callback
replaced). Compile = jit(...).lower(key).compile(); steps/s from REPEATS (2) warm calls after a warm-up
call. Prints one JSON line.
"""
import json
import os
import sys
import time
from importlib import metadata

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from rejax import DQN
from rejax.networks import EpsilonGreedyPolicy


class MinAtarQNetwork(nn.Module):
    action_dim: int
    hidden_layer_sizes: tuple = ()  # rejax passes its MLP sizes; unused
    activation: object = nn.relu

    @nn.compact
    def __call__(self, obs):
        x = nn.relu(nn.Conv(16, (3, 3), padding="VALID")(obs.astype(jnp.float32)))
        x = nn.relu(nn.Dense(128)(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.action_dim)(x)

    def take(self, obs, action):
        return jnp.take_along_axis(self(obs), action[:, None], axis=1).squeeze(1)


nseeds = int(sys.argv[1])
total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 2
cfg = dict(env="Breakout-MinAtar", num_envs=1, buffer_size=100_000, fill_buffer=5_000, batch_size=32,
           learning_rate=2.5e-4, num_epochs=1, total_timesteps=total, target_update_freq=1_000, polyak=0.0,
           eps_start=1.0, eps_end=0.1, exploration_fraction=min(1.0, 100_000 / total), gamma=0.99, ddqn=False,
           max_grad_norm=10.0, normalize_observations=False, eval_freq=total, skip_initial_evaluation=True)
algo = DQN.create(**cfg)
action_dim = algo.env.action_space(algo.env_params).n
algo = algo.replace(agent=EpsilonGreedyPolicy(MinAtarQNetwork)(action_dim=action_dim))
train_only = algo.replace(eval_callback=lambda algo, ts, rng: (jnp.zeros(1), jnp.zeros(1)))
key = jax.random.PRNGKey(0)
if nseeds == 1:
    fn, arg = jax.jit(train_only.train), key
else:
    fn, arg = jax.jit(jax.vmap(train_only.train)), jax.random.split(key, nseeds)
jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.zeros(())))  # backend start-up, not compile
t = time.perf_counter()
compiled = fn.lower(arg).compile()
compile_s = time.perf_counter() - t
times = []
for _ in range(1 + repeats):  # the first call is a warm-up
    t = time.perf_counter()
    jax.block_until_ready(compiled(arg))
    times.append(time.perf_counter() - t)
steps = int(np.ceil(cfg["eval_freq"] / cfg["num_envs"])) * cfg["num_envs"]
warm = times[1:]
print(json.dumps(dict(lib="rejax", algo="dqn", env=cfg["env"], nseeds=nseeds, total=total, steps_per_seed=steps,
    compile_s=round(compile_s, 3), first_call_s=times[0], warm_call_s=warm,
    sps_total_best=steps * nseeds / min(warm), sps_total_median=steps * nseeds / float(np.median(warm)),
    network="MinAtar Q-network (nn.Conv 3x3x16, dense 128)",
    versions={m: metadata.version(m) for m in ("rejax", "gymnax", "jax", "flax")}, devices=str(jax.devices()),
    load=os.getloadavg())), flush=True)
