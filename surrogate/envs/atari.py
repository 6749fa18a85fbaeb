"""Atari 2600 games (the Arcade Learning Environment, ale-py 0.12.1, ROMs bundled) with the standard
preprocessing, as ``surrogate.envs.make("ALE/Pong-v5")`` (every ``ALE/*-v5`` id).

The preprocessing is Machado et al. 2018's and CleanRL's ``ppo_atari.py`` (itself OpenAI Baselines'
``atari_wrappers``, Mnih et al. 2015):

* up to 30 no-op actions at each reset (a random number, from the env's seeded generator);
* FIRE on reset for games whose minimal action set has it (``FireResetEnv``);
* each action repeated for 4 frames, the observation the pixel-wise max of the last two;
* 84x84 greyscale frames (area interpolation), the last 4 stacked: observations are NHWC ``uint8``
  ``(84, 84, 4)``, newest frame last, zeros before an episode's first frame (SB3's ``VecFrameStack``);
* ``repeat_action_probability = 0`` (no sticky actions): CleanRL's reported runs use the
  ``*NoFrameskip-v4`` ids, whose probability is 0 (``ALE/*-v5`` defaults to Machado et al.'s 0.25;
  pass ``make(id, repeat_action_probability=0.25)`` for that protocol);
* an episode is at most 108,000 frames (27,000 agent steps, 30 minutes of play: v5's limit).

Training and evaluation differ, as in CleanRL: the vector env from ``vector`` (training) gives the
sign of each reward (``ClipRewardEnv``) and marks a lost life as terminal (``EpisodicLifeEnv``: the
game goes on, the learner bootstraps nothing across it); ``eval_vector`` gives the game's rewards and
ends episodes only at game over. Either way the vector env records the game's own episodes, unclipped
and over all lives (``finished_episodes``: what ``gymnasium.wrappers.RecordEpisodeStatistics`` reports
under CleanRL's wrappers), and training runs log those (``runtime.rollout.host_rollout``), so the
returns in a run's metrics are game scores, comparable with published curves.

Two implementations of the same preprocessing (``implementation=``):

* ``"ale_vector"`` (default): ale-py's C++ ``AtariVectorEnv``, which steps and preprocesses the envs
  in threads; it runs with real episodes and unclipped rewards, and the life-loss terminals and the
  clipping are made here from its ``lives`` info (its own ``episodic_life=True`` resets the whole game
  at a life loss in 0.12.1, which is not the standard semantics);
* ``"gymnasium_async"``: ``gymnasium.vector.AsyncVectorEnv`` (one process per env) of
  ``AtariPreprocessing`` + FIRE reset + ``FrameStackObservation(padding_type="zero")``.

``benchmarks/atari_envs.py`` measures both; the C++ one was about 4x faster here (benchmarks/README.md).
They agree in shapes, dtypes and semantics, not bit for bit (the C++ env presses FIRE for one frame and
counts it among the no-ops; Gymnasium's wrapper for one agent step; their resize code differs):
``tests/test_atari.py`` checks what is meant to agree. At a life loss both let the game continue with
the agent's own actions (no FIRE press, unlike ``FireResetEnv`` after ``EpisodicLifeEnv``).
"""
from dataclasses import dataclass, field

import ale_py
import gymnasium as gym
import numpy as np

from surrogate.errors import ConfigError

gym.register_envs(ale_py)

FRAME_SKIP, NOOP_MAX, SCREEN, STACK, MAX_FRAMES = 4, 30, 84, 4, 108_000
IMPLEMENTATIONS = ("ale_vector", "gymnasium_async")
OPTIONS = {"implementation": "ale_vector", "repeat_action_probability": 0.0, "full_action_space": False,
           "num_threads": 0}


def atari_env_ids() -> list:
    """Every ``ALE/<Game>-v5`` id of ale-py's registry."""
    return sorted(k for k in gym.registry if k.startswith("ALE/") and k.endswith("-v5"))


@dataclass(frozen=True, eq=False)
class AtariEnv:
    """An ``ALE/<Game>-v5`` game with the standard preprocessing, on the host backend.

    ``kwargs``: ``implementation`` (``IMPLEMENTATIONS``), ``repeat_action_probability`` (0.0),
    ``full_action_space`` (False), ``num_threads`` (the C++ env's threads; 0: ale-py's choice)."""

    id: str
    kwargs: dict = field(default_factory=dict)
    backend: str = "host"
    obs_dtype = np.uint8  # the runtime keeps rollouts of uint8 frames (the CNN scales them)

    def __post_init__(self):
        unknown = sorted(set(self.kwargs) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"Unknown option(s) {unknown} for Atari env {self.id!r}; the options are "
                              f"{sorted(OPTIONS)}.")
        if self.options["implementation"] not in IMPLEMENTATIONS:
            raise ConfigError(f"implementation must be one of {IMPLEMENTATIONS}, got "
                              f"{self.options['implementation']!r}.")
        if not 0.0 <= self.options["repeat_action_probability"] <= 1.0:
            raise ConfigError(f"repeat_action_probability must be in [0, 1], got "
                              f"{self.options['repeat_action_probability']!r}.")

    @property
    def options(self) -> dict:
        return {**OPTIONS, **self.kwargs}

    @property
    def game(self) -> str:
        """ale-py's ROM name (``"pong"`` for ``ALE/Pong-v5``)."""
        return gym.spec(self.id).kwargs["game"]

    def vector(self, num_envs: int, seed: int) -> "AtariVector":
        """Training envs: clipped rewards, a lost life terminal; reset with seeds ``seed, seed + 1, ...``."""
        return self._vector(num_envs, seed, training=True)

    def eval_vector(self, num_envs: int, seed: int) -> "AtariVector":
        """Evaluation envs: the game's rewards, episodes end at game over (or the frame limit)."""
        return self._vector(num_envs, seed, training=False)

    def _vector(self, num_envs, seed, training):
        o = self.options
        if o["implementation"] == "ale_vector":
            raw = ale_py.vector_env.AtariVectorEnv(
                self.game, num_envs, num_threads=o["num_threads"], max_num_frames_per_episode=MAX_FRAMES,
                repeat_action_probability=o["repeat_action_probability"], full_action_space=o["full_action_space"],
                autoreset_mode="SameStep", img_height=SCREEN, img_width=SCREEN, grayscale=True, stack_num=STACK,
                frameskip=FRAME_SKIP, maxpool=True, noop_max=NOOP_MAX, episodic_life=False, life_loss_info=False,
                reward_clipping=False, use_fire_reset=True)
        else:
            # (the default "fork" context: "spawn" would re-run an unguarded __main__ in every worker)
            raw = gym.vector.AsyncVectorEnv([lambda: gymnasium_atari(self.id, o) for _ in range(num_envs)],
                                            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        venv = AtariVector(raw, num_envs, training)
        venv.reset(seed=seed)
        return venv

    def _single(self):
        if not hasattr(self, "_spaces"):
            env = gym.make(self.id, full_action_space=self.options["full_action_space"])
            space = gym.spaces.Box(0, 255, (SCREEN, SCREEN, STACK), np.uint8)
            object.__setattr__(self, "_spaces", (space, env.action_space, env.unwrapped.get_action_meanings()))
            env.close()
        return self._spaces

    def observation_space(self, params=None):
        return self._single()[0]

    def action_space(self, params=None):
        return self._single()[1]

    @property
    def action_meanings(self) -> list:
        return self._single()[2]

    discrete = True
    action_bounds = None

    @property
    def action_dim(self) -> int:
        return int(self.action_space().n)

    @property
    def obs_shape(self):
        return (SCREEN, SCREEN, STACK)

    @property
    def max_episode_steps(self) -> int:
        return MAX_FRAMES // FRAME_SKIP


class FireReset(gym.Wrapper):
    """Press FIRE after each reset (CleanRL's ``FireResetEnv``, for games that wait for it)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.env.unwrapped.get_action_meanings().index("FIRE"))
        if terminated or truncated:
            obs, info = self.env.reset()
        return obs, info


def gymnasium_atari(env_id: str, options: dict) -> gym.Env:
    """One env of the ``gymnasium_async`` implementation: observations ``(4, 84, 84)`` like ale-py's vector env."""
    env = gym.make(env_id, frameskip=1, repeat_action_probability=options["repeat_action_probability"],
                   full_action_space=options["full_action_space"], max_num_frames_per_episode=MAX_FRAMES)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SCREEN,
                                          terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)
    return gym.wrappers.FrameStackObservation(env, STACK, padding_type="zero")


class AtariVector:
    """The runtime's vector-env interface (``envs.host_env.HostVectorEnv``) over either implementation.

    ``step(actions) -> (obs, reward, terminated, truncated, final_obs)``, same-step auto-reset, ``obs``
    NHWC ``uint8``. ``training``: rewards clipped to their sign and a lost life terminal (the game
    continues: ``obs`` is then the next frame, not a reset); otherwise the game's rewards and real
    episodes. ``finished_episodes()`` gives the game's episodes (unclipped score, agent steps) that ended
    since its last call, in either mode."""

    def __init__(self, raw, num_envs: int, training: bool):
        self.raw, self.num_envs, self.training = raw, num_envs, training
        self.obs = None
        self.lives = np.zeros(num_envs, np.int64)
        self.episode_return = np.zeros(num_envs, np.float64)
        self.episode_length = np.zeros(num_envs, np.int64)
        self.finished = [0.0, 0.0, 0]  # return sum, length sum, count

    def reset(self, seed: int | None = None):
        obs, info = self.raw.reset(seed=seed)
        self.obs = np.ascontiguousarray(obs.transpose(0, 2, 3, 1))
        self.lives[:] = info["lives"]
        self.episode_return[:] = 0
        self.episode_length[:] = 0
        return self.obs.copy(), {}

    def step(self, actions):
        n = self.num_envs
        obs, final_obs = np.empty_like(self.obs), np.empty_like(self.obs)
        reward, term, trunc = np.empty(n, np.float32), np.empty(n, bool), np.empty(n, bool)
        self.step_into(actions, obs, final_obs, reward, term, trunc)
        return obs, reward, term, trunc, final_obs

    def step_into(self, actions, obs, final_obs, reward, term, trunc):
        """``step`` writing into the caller's arrays (rows of its rollout buffers)."""
        o, r, te, tr, info = self.raw.step(np.asarray(actions, np.int64))
        te, tr = np.asarray(te, bool), np.asarray(tr, bool)
        done = te | tr
        np.copyto(obs, o.transpose(0, 2, 3, 1))
        np.copyto(final_obs, obs)
        if done.any():  # (Gymnasium's vector envs give an object array, ale-py's an array of frames)
            ended = info["final_obs"][done]
            final_obs[done] = np.stack(list(ended)).transpose(0, 2, 3, 1)
        self.episode_return += r
        self.episode_length += 1
        if done.any():
            self.finished[0] += float(self.episode_return[done].sum())
            self.finished[1] += float(self.episode_length[done].sum())
            self.finished[2] += int(done.sum())
            self.episode_return[done] = 0
            self.episode_length[done] = 0
        lives = np.asarray(info["lives"])
        if self.training:
            np.sign(r, out=reward, casting="unsafe")
            term[:] = te | ((lives < self.lives) & ~done)  # a lost life, the game going on
        else:
            reward[:] = r
            term[:] = te
        trunc[:] = tr
        self.lives[:] = lives
        self.obs = obs

    def finished_episodes(self):
        """``(return_sum, length_sum, count)`` of the game episodes that ended since the last call."""
        out, self.finished = tuple(self.finished), [0.0, 0.0, 0]
        return out

    def close(self):
        self.raw.close()
