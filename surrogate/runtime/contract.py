"""The algorithm contract: what every algorithm gives the runtime, and what the runtime carries.

An algorithm is one ``Algorithm`` value, registered by name in ``surrogate.algos``. It owns its state
(any pytree: parameters, optimiser states, a replay buffer, target parameters, a population, ...)
and says how to act and how to learn; the runtime collects experience with its acting function and
turns the two into a training iteration (``runtime.iteration``), then into a whole run: one jitted
``lax.scan`` with seeds vmapped and sharded on JAX envs, a Python env loop around a jitted ``learn``
on host envs. One iteration is

    params = policy(config, state)                            # what acting needs
    experience = collect(env, act(config, env, False), params)  # runtime: a rollout, or whole episodes
    state, metrics = learn(config, env, state, experience, key)

Collecting is the runtime's, not the algorithm's, so that the same algorithm runs on host envs,
whose steps cannot be traced (rejax's ``train_iteration`` and PureJaxRL's ``make_train`` trace the
env inside the iteration, which only JAX envs allow).
"""
from typing import Any, Callable, NamedTuple


class Algorithm(NamedTuple):
    """One algorithm, as the drivers, the CLI, run directories, checkpoints and evaluation see it."""

    name: str
    Config: type
    """frozen dataclass with ``env``, ``total_steps``, ``num_envs``, ``validate()``; for ``collect="steps"``
    also ``num_steps`` (steps per env per iteration) and optionally ``normalize_obs``,
    ``normalize_reward``, ``gamma`` (the runtime's normalisers)"""
    presets: dict
    metrics: tuple
    """names of the metrics ``learn`` returns (columns of metrics.csv, TensorBoard tags)"""
    init: Callable
    """``(config, env, key) -> state``, called on the host with a concrete key (NumPy is allowed)"""
    policy: Callable
    """``(config, state) -> params`` that ``act`` takes (``collect="episodes"``: a batch of candidates)"""
    act: Callable
    """``(config, env, deterministic) -> act``, ``act(params, obs, carry, bits) -> (action, carry)``:
    ``obs`` normalised, ``carry`` the recurrent state (``()`` if none; every leaf ``[num_envs, ...]``;
    the runtime zeroes it at episode ends, so ``initial_carry`` must be zeros), ``bits`` this step's uint32 random words ``[..., act_words]``
    (in place of a key: a key costs a threefry call per step, the rollout draws all its bits at once)"""
    learn: Callable
    """``(config, env, state, experience, key) -> (state, {metric: value})``"""
    act_words: Callable = lambda config, env: 0
    """uint32 words of randomness ``act`` takes per env and step"""
    initial_carry: Callable = lambda config, env, num_envs: ()
    """zeros of the recurrent state of ``num_envs`` envs"""
    collect: str = "steps"
    """"steps": ``config.num_steps`` steps of ``config.num_envs`` envs that continue across iterations
    (``runtime.rollout.Experience``); "episodes": one whole episode per candidate of ``policy``
    (``runtime.rollout.Episodes``)"""
    final_policy: Callable | None = None
    """``(config, state) -> params`` to evaluate; default ``policy``"""
    host_act: Callable | None = None
    """optional ``(config, env, params, obs_stats, rng) -> act_np(raw_obs, carry) -> (action, carry)``:
    a NumPy policy for host rollouts (a jitted call per step costs about half a MuJoCo step)"""
    num_iterations: Callable = lambda config: max(1, config.total_steps // (config.num_envs * config.num_steps))
    steps_per_iteration: Callable = lambda config, env: config.num_envs * config.num_steps
    """env steps per seed and iteration (the x axis of learning curves)"""
    host_update: Callable | None = None
    """optional ``(config, env) -> update | None``, ``update(state, experience, key) -> (state, metrics)``:
    ``learn`` for host runs as a Python loop around jitted pieces (None: jit ``learn`` whole). For CNN
    updates: XLA:CPU runs a convolution's gradient ~15x slower inside a loop (a ``scan`` over minibatches)
    than at a program's top level (benchmarks/README.md, Atari)"""

    def evaluated_policy(self, config, state):
        return (self.final_policy or self.policy)(config, state)

    # Shorthands for ``surrogate.runtime``'s functions: ``ppo.ALGO.train(ppo.Config(), env, key, seeds=4)``.
    def train(self, config, env, key, **kwargs):
        from surrogate.runtime.train import train
        return train(self, config, env, key, **kwargs)

    def evaluate(self, config, env, params, obs_stats, key, episodes: int = 20):
        from surrogate.runtime.train import evaluate
        return evaluate(self, config, env, params, obs_stats, key, episodes)

    def seed_policy(self, config, result, i: int):
        from surrogate.runtime.train import seed_policy
        return seed_policy(self, config, result, i)

    def state_template(self, config, env, key, seeds: int):
        from surrogate.runtime.train import state_template
        return state_template(self, config, env, key, seeds)


class RunnerState(NamedTuple):
    """Everything a JAX-env run carries from one iteration to the next (and checkpoints)."""

    algo: Any  # the algorithm's own state
    env: Any  # runtime.rollout.EnvCarry ("steps"), () otherwise
    key: Any
    iteration: Any  # int32 count of iterations done


EPISODE_KEYS = ("episode_return_sum", "episode_length_sum", "episode_count")
