"""rllab's hierarchical tasks (Duan et al. 2016, "Benchmarking Deep Reinforcement Learning for Continuous Control",
sec. 3.3) with rllab's point robot, as gymnax environments: ``PointGather-rllab`` (food collection) and
``PointMaze-rllab``. The Swimmer and Ant versions (MuJoCo, host backend) are in ``rllab_hierarchical_mujoco``; the
sensors and the maze's geometry here serve both (every sensor function takes ``xp``: ``jax.numpy`` or ``numpy``).

From rll/rllab:

* the point robot (``rllab/envs/mujoco/point_env.py``, ``vendor/mujoco_models/point.xml``): a pose ``(x, y, theta)``
  (the model's ``qpos``) moved kinematically, no physics: ``theta += turn``, then ``x += cos(theta) forward``,
  ``y += sin(theta) forward``, each clipped to [-7, 7]. The actuators' ctrlranges are forward [-1, 1] and turn
  [-0.25, 0.25]; rllab's ``normalize()`` maps the agent's [-1, 1] onto them, so the action space here is
  ``Box(-1, 1, (2,))`` and the step scales it. Reset: ``MujocoEnv.reset_mujoco``, the pose N(0, 0.01^2) around 0.
  The tasks locate the robot by ``get_body_com("torso")``, the torso's centre of mass: the sphere (radius 0.5,
  density 100) and the arrow box (1 x 0.2 x 0.2 at 0.6 ahead) put it ``POINT_COM_OFFSET`` = 0.0426 ahead of
  ``(x, y)`` (checked with MuJoCo 4 on rllab's ``point.xml``). The maze's wall check uses ``(x, y)`` itself
  (``get_xy``), as rllab does.
* food collection (``rllab/envs/mujoco/gather/gather_env.py``, ``point_gather_env.py``): 8 apples then 8 bombs on
  distinct cells ``2 * np.random.randint(-3, 3)`` per coordinate, i.e. {-6, -4, ..., 4} (numpy's upper bound is
  exclusive, so the grid is not symmetric), none with ``x^2 + y^2 < 2^2`` (only the origin). rllab draws them by
  rejection, which is a uniform draw without replacement from the 35 allowed cells: so it is drawn here. An object
  closer than 1 (``catch_range``) to the robot's centre of mass is removed with +1 (apple) or -1 (bomb); the episode
  ends when none is left. Sensors (``get_readings``): 10 bins over a span of pi centred on the heading; an object at
  distance ``d <= 6`` (``sensor_range``) and relative angle ``a`` (wrapped to (-pi, pi], kept if ``|a| <= pi / 2``)
  lights bin ``int((a + pi / 2) / (pi / 10))`` with ``1 - d / 6``; the closest object of each kind wins its bin.
  Observation: the robot's own observation, then the 10 apple readings, then the 10 bomb readings. rllab's gather
  walls at +-7 (``walldist = activity_range + 1``) do not touch the point robot, which has no physics: its own
  clip at +-7 is what bounds it.
* maze (``rllab/envs/mujoco/maze/maze_env.py``, ``maze_env_utils.py``, ``point_maze_env.py``): the 5 x 5
  ``MAZE_STRUCTURE`` below, cell ``(i, j)`` centred at ``(j s, i s)`` minus the robot cell's centre (so the robot
  starts at the origin), ``s = MAZE_SIZE_SCALING`` = 3 for the point robot. ``MANUAL_COLLISION``: a step whose
  ``(x, y)`` lands inside a wall block (closed box) is undone in ``(x, y)`` (the turn stays). Reward 1 and the
  episode ends when the centre of mass is in the goal cell (closed box). Sensors: 20 rays at
  ``theta - pi / 2 + (2 k + 1) / 40 pi``; each finds the nearest crossing with the four edges of every wall and
  goal cell (``ray_segment_intersect``); if within range 10 it reads ``(10 - d) / 10`` in the wall or the goal
  readings, by the kind of cell it hit. Observation: the robot's own, 20 wall readings, 20 goal readings.

Horizon: 500 steps by default (the paper's "horizon 500" for all its tasks, 50k steps per iteration; rllab's envs
have none of their own); ``make(id, max_steps_in_episode=N)`` changes it.

Where these depart from rllab: the robot's own observation is its pose ``qpos = (x, y, theta)`` (theta unwrapped,
as MuJoCo's hinge keeps it). rllab's point robot returns MuJoCo's full state dump (``MujocoEnv._get_full_obs``:
qpos, qvel, com inertias and velocities, actuator, external and constraint forces, contact distances, com change);
for this kinematic model every entry but qpos is constant within an episode (qvel keeps its reset noise, ``dcom``
stays 0, no force acts), so only qpos is kept. Sensor bins are clipped to the last bin for an object exactly at
``+pi / 2`` (where rllab would index past its array). Arithmetic is float32 (rllab: float64).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from surrogate.errors import ConfigError

BIG = 1e6  # rllab's observation bound (mujoco_env.BIG)
HORIZON = 500

# point_env.py / point.xml
POINT_CTRL = (1.0, 0.25)  # ctrlrange of the forward and turn "actuators"
POINT_CLIP = 7.0
POINT_COM_OFFSET = 4.0 * 0.6 / (4.0 + 100.0 * 4.0 / 3.0 * math.pi * 0.5 ** 3)  # arrow mass x 0.6 / torso mass
RESET_QPOS_STD = 0.01  # MujocoEnv.reset_mujoco

# gather_env.py defaults
N_APPLES, N_BOMBS = 8, 8
GATHER_GRID = 2 * np.arange(-3, 3)  # 2 * np.random.randint(-activity_range / 2, activity_range / 2)
ROBOT_OBJECT_SPACING, CATCH_RANGE = 2.0, 1.0
GATHER_BINS, GATHER_RANGE, GATHER_SPAN = 10, 6.0, math.pi

# maze_env.py
MAZE_STRUCTURE = ((1, 1, 1, 1, 1),
                  (1, "r", 0, 0, 1),
                  (1, 1, 1, 0, 1),
                  (1, "g", 0, 0, 1),
                  (1, 1, 1, 1, 1))
MAZE_BINS, MAZE_RANGE, MAZE_SPAN = 20, 10.0, math.pi
POINT_MAZE_SCALING = 3.0  # point_maze_env.py MAZE_SIZE_SCALING


def gather_cells() -> np.ndarray:
    """The cells an object may take: ``[35, 2]``, the grid minus those closer than 2 to the start."""
    cells = np.array([(x, y) for x in GATHER_GRID for y in GATHER_GRID], np.float32)
    return cells[(cells ** 2).sum(1) >= ROBOT_OBJECT_SPACING ** 2]


def wrap_angle(angle, xp=jnp):
    """rllab's ``angle % (2 pi)``, then minus 2 pi above pi: into (-pi, pi]."""
    angle = xp.mod(angle, 2 * math.pi)
    return xp.where(angle > math.pi, angle - 2 * math.pi, angle)


def gather_readings(origin, ori, objects, alive, is_apple, n_bins=GATHER_BINS, sensor_range=GATHER_RANGE,
                    sensor_span=GATHER_SPAN, xp=jnp):
    """``GatherEnv.get_readings``: ``(apple, bomb)`` readings ``[n_bins]`` each seen from ``origin`` heading ``ori``;
    ``objects [n, 2]``, ``alive``/``is_apple [n]``. A bin reads ``1 - d / range`` of its closest object of a kind."""
    delta = objects - origin
    dist = xp.sqrt((delta ** 2).sum(-1))
    angle = wrap_angle(xp.arctan2(delta[:, 1], delta[:, 0]) - ori, xp)
    half = 0.5 * sensor_span
    seen = alive & (dist <= sensor_range) & (xp.abs(angle) <= half)
    bins = xp.clip(xp.floor((angle + half) / (sensor_span / n_bins)), 0, n_bins - 1)
    lit = seen[:, None] & (bins[:, None] == xp.arange(n_bins)[None, :])  # [n, n_bins]
    intensity = (1.0 - dist / sensor_range)[:, None]
    reading = lambda kind: xp.where(lit & kind[:, None], intensity, 0.0).max(0)
    return reading(is_apple), reading(~is_apple)


def maze_geometry(scaling, structure=MAZE_STRUCTURE):
    """The maze in the robot's start frame (``maze_env.py``): ``(walls [B, 4], goal [4], segments [S, 2, 2],
    segment_is_goal [S])``; boxes as ``(min x, max x, min y, max y)``, segments the four edges of every wall and
    goal cell in rllab's order (row by row; bottom, right, top, left)."""
    robot = [(i, j) for i, row in enumerate(structure) for j, c in enumerate(row) if c == "r"]
    if len(robot) != 1:
        raise ConfigError("A maze structure needs exactly one robot cell 'r'.")
    ri, rj = robot[0]
    walls, goals, segments, is_goal = [], [], [], []
    for i, row in enumerate(structure):
        for j, cell in enumerate(row):
            if cell not in (1, "g"):
                continue
            cx, cy = (j - rj) * scaling, (i - ri) * scaling
            x1, x2, y1, y2 = cx - 0.5 * scaling, cx + 0.5 * scaling, cy - 0.5 * scaling, cy + 0.5 * scaling
            (goals if cell == "g" else walls).append((x1, x2, y1, y2))
            segments += [((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))]
            is_goal += [cell == "g"] * 4
    if len(goals) != 1:
        raise ConfigError("A maze structure needs exactly one goal cell 'g'.")
    return (np.array(walls, np.float32), np.array(goals[0], np.float32), np.array(segments, np.float32),
            np.array(is_goal))


def in_boxes(point, boxes, xp=jnp):
    """Whether ``point`` lies in any of ``boxes [B, 4]`` (closed), as ``_is_in_collision`` and the goal test."""
    boxes = boxes.reshape(-1, 4)
    return ((boxes[:, 0] <= point[0]) & (point[0] <= boxes[:, 1])
            & (boxes[:, 2] <= point[1]) & (point[1] <= boxes[:, 3])).any()


def ray_readings(origin, ori, segments, is_goal, n_bins=MAZE_BINS, sensor_range=MAZE_RANGE, sensor_span=MAZE_SPAN,
                 xp=jnp):
    """``MazeEnv.get_current_obs``'s rays: ``(wall, goal)`` readings ``[n_bins]``. Ray ``k`` leaves ``origin`` at
    ``ori - span / 2 + (2 k + 1) / (2 n) span``; the nearest edge it crosses (``line_intersect`` with ``r >= 0``,
    ``0 <= s <= 1``; parallel below 1e-8) gives ``(range - d) / range`` to the kind of its cell, if ``d <= range``."""
    theta = ori - 0.5 * sensor_span + (2 * xp.arange(n_bins) + 1) / (2 * n_bins) * sensor_span
    dx1, dy1 = xp.cos(theta)[:, None], xp.sin(theta)[:, None]  # unit direction: r is the distance
    start, edge = segments[:, 0], segments[:, 1] - segments[:, 0]
    dx, dy = edge[None, :, 0], edge[None, :, 1]
    wx, wy = (start - origin)[None, :, 0], (start - origin)[None, :, 1]
    det = -dx1 * dy + dy1 * dx
    valid = xp.abs(det) >= 1e-8
    det = xp.where(valid, det, 1.0)
    r = (-dy * wx + dx * wy) / det
    s = (-dy1 * wx + dx1 * wy) / det
    dist = xp.where(valid & (r >= 0) & (s >= 0) & (s <= 1), r, xp.inf)  # [n_bins, S]
    nearest = xp.argmin(dist, axis=1)
    d = dist.min(1)
    reading = xp.where(d <= sensor_range, (sensor_range - d) / sensor_range, 0.0)
    goal = is_goal[nearest]
    return xp.where(goal, 0.0, reading), xp.where(goal, reading, 0.0)


def point_move(pose, action):
    """``PointEnv.step`` after ``normalize()``: ``action`` in [-1, 1]^2 (clipped) scaled to (forward, turn)."""
    forward, turn = jnp.clip(jnp.asarray(action, jnp.float32).reshape(2), -1.0, 1.0) * jnp.array(POINT_CTRL)
    theta = pose[2] + turn
    x = jnp.clip(pose[0] + jnp.cos(theta) * forward, -POINT_CLIP, POINT_CLIP)
    y = jnp.clip(pose[1] + jnp.sin(theta) * forward, -POINT_CLIP, POINT_CLIP)
    return jnp.stack([x, y, theta])


def point_com(pose, xp=jnp):
    """``get_body_com("torso")``'s ``(x, y)``: ``POINT_COM_OFFSET`` ahead of the pose."""
    return xp.stack([pose[0] + POINT_COM_OFFSET * xp.cos(pose[2]), pose[1] + POINT_COM_OFFSET * xp.sin(pose[2])])


@struct.dataclass
class HierParams(environment.EnvParams):
    max_steps_in_episode: int = HORIZON


@struct.dataclass
class GatherState(environment.EnvState):
    pose: jax.Array  # [3] x, y, theta (the point's qpos)
    objects: jax.Array  # [16, 2] apples first
    alive: jax.Array  # [16] not yet collected
    time: int


@struct.dataclass
class MazeState(environment.EnvState):
    pose: jax.Array
    time: int


class PointTask(environment.Environment):
    """What the two point-robot tasks share: a 2-D action in [-1, 1], an unbounded vector observation."""

    env_id, obs_dim = "", 0

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def default_params(self) -> HierParams:
        return HierParams()

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-BIG, BIG, (self.obs_dim,), jnp.float32)

    @staticmethod
    def reset_pose(key):
        return RESET_QPOS_STD * jax.random.normal(key, (3,), jnp.float32)


class PointGather(PointTask):
    """``PointGatherEnv`` (module docstring): observation ``[x, y, theta, 10 apple, 10 bomb readings]``."""

    env_id, obs_dim = "PointGather-rllab", 3 + 2 * GATHER_BINS
    is_apple = np.arange(N_APPLES + N_BOMBS) < N_APPLES

    def reset_env(self, key, params):
        key_objects, key_pose = jax.random.split(key)
        cells = jnp.asarray(gather_cells())
        picked = jax.random.choice(key_objects, cells.shape[0], (N_APPLES + N_BOMBS,), replace=False)
        state = GatherState(pose=self.reset_pose(key_pose), objects=cells[picked],
                            alive=jnp.ones(N_APPLES + N_BOMBS, bool), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        apple, bomb = gather_readings(point_com(state.pose), state.pose[2], state.objects, state.alive,
                                      jnp.asarray(self.is_apple))
        return jnp.concatenate([state.pose, apple, bomb]).astype(jnp.float32)

    def is_terminated(self, state, params):
        return ~state.alive.any()

    def step_env(self, key, state, action, params):
        pose = point_move(state.pose, action)
        com = point_com(pose)
        caught = state.alive & (((state.objects - com) ** 2).sum(1) < CATCH_RANGE ** 2)
        reward = jnp.where(caught, jnp.where(jnp.asarray(self.is_apple), 1.0, -1.0), 0.0).sum()
        state = state.replace(pose=pose, alive=state.alive & ~caught, time=state.time + 1)
        return self.get_obs(state), state, reward, self.is_terminated(state, params), {}


class PointMaze(PointTask):
    """``PointMazeEnv`` (module docstring): observation ``[x, y, theta, 20 wall, 20 goal readings]``."""

    env_id, obs_dim = "PointMaze-rllab", 3 + 2 * MAZE_BINS

    def __init__(self, scaling: float = POINT_MAZE_SCALING):
        self.walls, self.goal, self.segments, self.segment_is_goal = maze_geometry(scaling)

    def reset_env(self, key, params):
        state = MazeState(pose=self.reset_pose(key), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        wall, goal = ray_readings(point_com(state.pose), state.pose[2], jnp.asarray(self.segments),
                                  jnp.asarray(self.segment_is_goal))
        return jnp.concatenate([state.pose, wall, goal]).astype(jnp.float32)

    def is_terminated(self, state, params):
        return in_boxes(point_com(state.pose), jnp.asarray(self.goal))

    def step_env(self, key, state, action, params):
        pose = point_move(state.pose, action)
        blocked = in_boxes(pose[:2], jnp.asarray(self.walls))
        pose = jnp.where(blocked, jnp.stack([state.pose[0], state.pose[1], pose[2]]), pose)
        state = state.replace(pose=pose, time=state.time + 1)
        done = self.is_terminated(state, params)
        return self.get_obs(state), state, done.astype(jnp.float32), done, {}


TASKS = {cls.env_id: cls for cls in (PointGather, PointMaze)}
IDS = tuple(TASKS)


def is_hierarchical(env_id: str) -> bool:
    return env_id in TASKS


def make(env_id: str, max_steps_in_episode: int | None = None):
    """``(id, gymnax env, params)``; ``max_steps_in_episode`` overrides the 500-step horizon and is then named in
    the returned id."""
    if env_id not in TASKS:
        raise ConfigError(f"Unknown rllab hierarchical task {env_id!r}: use one of {', '.join(IDS)}.")
    horizon = HORIZON if max_steps_in_episode is None else int(max_steps_in_episode)
    if horizon < 1:
        raise ConfigError(f"max_steps_in_episode must be >= 1, got {max_steps_in_episode!r}.")
    name = env_id if horizon == HORIZON else f"{env_id}[max_steps={horizon}]"
    env = TASKS[env_id]()
    return name, env, env.default_params.replace(max_steps_in_episode=horizon)
