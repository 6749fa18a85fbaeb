"""rllab's hierarchical tasks with the Swimmer and the Ant (Duan et al. 2016, sec. 3.3), as Gymnasium envs on the host
backend: ``SwimmerGather-rllab``, ``AntGather-rllab``, ``SwimmerMaze-rllab``, ``AntMaze-rllab`` (registered with
``gymnasium.register`` when ``surrogate.envs`` is imported; 500-step time limit).

Each wraps Gymnasium's ``Swimmer-v5`` / ``Ant-v5`` (their classes, built on a copy of their model file with the task's
walls added) and applies rllab's task logic, the same rules and sensors as the point-robot versions (module
docstring of ``surrogate.envs.rllab_hierarchical``, whose sensor and maze functions run here on NumPy):

* the robot: position = ``get_body_com("torso")`` (MuJoCo's ``subtree_com`` of the torso: the whole robot's centre
  of mass); heading = the Swimmer's root hinge ``qpos[2]`` (``swimmer_gather_env.py``, ``ORI_IND = 2``), the Ant's
  torso x axis projected on the floor (``ant_gather_env.py`` / ``ant_maze_env.py`` ``get_ori``: the quaternion
  rotation of (1, 0, 0), ``atan2`` of its y and x); its own observation as rllab's ``get_current_obs``: Swimmer
  ``[qpos, qvel, com]`` (13), Ant ``[qpos, qvel, clip(cfrc_ext, -1, 1), torso rotation matrix, com]`` (125).
  Reset as ``MujocoEnv.reset_mujoco``: ``qpos`` N(0, 0.01^2) and ``qvel`` N(0, 0.1^2) around the model's rest state.
* gather (``gather_env.py``): objects placed by rllab's own rejection loop (``np_random.integers(-3, 3) * 2``),
  the four walls of ``GatherEnv.__init__`` (boxes at +-7, half-size 7.5 x 0.5 x 1, ``conaffinity=1``); when the
  robot's own env ends the episode (the Ant's torso height leaves [0.2, 1], the same test in rllab's ``ant_env.py``
  and Gymnasium's ``Ant-v5``) the step gives -10 and ends it.
* maze (``maze_env.py``): every wall cell becomes a box geom of half-size ``(s/2, s/2, height s / 2)`` centred at
  ``height s / 2`` above the floor, cell size ``s`` and height from ``swimmer_maze_env.py`` (4, 0.5) and
  ``ant_maze_env.py`` (3, 2); for the Swimmer, ``MAZE_MAKE_CONTACTS``: explicit contact pairs between each of its
  geoms and each block, since its own geoms collide with nothing. The walls stop the robot physically.

Where these depart from rllab: the robots are Gymnasium v5's models, not rllab's. rllab's Swimmer steps 50 x 0.001 s
(Euler) with torques +-50; Gymnasium's 4 x 0.01 s (RK4) with gear 150, joint armature 0.1. rllab's Swimmer model
uses ``collision="predefined"`` (only explicit pairs collide), which MuJoCo 2+ no longer has; Gymnasium's Swimmer
geoms have ``contype = conaffinity = 0``, which gives the same result: it passes through the gather walls (as it did
in rllab) and is stopped by the maze blocks through the explicit pairs. The Ant's quaternion heading replaces the
``ORI_IND = 6`` (a quaternion component read as an angle) of one of rllab's versions of ``ant_gather_env.py``.
"""
import os
import tempfile
import xml.etree.ElementTree as ET

import gymnasium as gym
import numpy as np

from surrogate.envs.rllab_hierarchical import (BIG, CATCH_RANGE, GATHER_BINS, GATHER_GRID, HORIZON, MAZE_BINS,
                                               N_APPLES, N_BOMBS, RESET_QPOS_STD, ROBOT_OBJECT_SPACING,
                                               gather_readings, in_boxes, maze_geometry, ray_readings)
from surrogate.errors import ConfigError

RESET_QVEL_STD = 0.1  # MujocoEnv.reset_mujoco
GATHER_WALL_DISTANCE = 7.0  # activity_range + 1
FALL_REWARD = -10.0


def _swimmer_obs(data, torso):
    return np.concatenate([data.qpos, data.qvel, data.subtree_com[torso]])


def _ant_obs(data, torso):
    return np.concatenate([data.qpos, data.qvel, np.clip(data.cfrc_ext, -1, 1).ravel(), data.xmat[torso],
                           data.subtree_com[torso]])


def _ant_heading(data, torso):
    rotation = data.xmat[torso]  # row-major 3 x 3: the x axis is its first column
    return float(np.arctan2(rotation[3], rotation[0]))


ROBOTS = {  # Gymnasium env class, model file, own observation, heading, maze cell size and height, explicit contacts
    "swimmer": dict(env="swimmer_v5:SwimmerEnv", xml="swimmer.xml", obs=_swimmer_obs,
                    heading=lambda data, torso: float(data.qpos[2]), maze_scaling=4.0, maze_height=0.5,
                    maze_contacts=True),
    "ant": dict(env="ant_v5:AntEnv", xml="ant.xml", obs=_ant_obs, heading=_ant_heading, maze_scaling=3.0,
                maze_height=2.0, maze_contacts=False),
}


def _box(parent, name, pos, size):
    ET.SubElement(parent, "geom", dict(name=name, type="box", pos=" ".join(f"{v:g}" for v in pos),
                                       size=" ".join(f"{v:g}" for v in size), contype="1", conaffinity="1",
                                       condim="3", rgba="0.4 0.4 0.4 1"))


def gather_walls(root, robot):
    """``GatherEnv.__init__``'s four walls around the activity area."""
    d, world = GATHER_WALL_DISTANCE, root.find("worldbody")
    for i, (pos, size) in enumerate([((0, -d, 0), (d + 0.5, 0.5, 1)), ((0, d, 0), (d + 0.5, 0.5, 1)),
                                     ((-d, 0, 0), (0.5, d + 0.5, 1)), ((d, 0, 0), (0.5, d + 0.5, 1))]):
        _box(world, f"wall{i + 1}", pos, size)


def maze_blocks(root, robot):
    """``MazeEnv.__init__``'s blocks, one per wall cell, and for the Swimmer the contact pairs with its geoms."""
    s, height = robot["maze_scaling"], robot["maze_height"]
    walls, world = maze_geometry(s)[0], root.find("worldbody")
    names = []
    for k, (x1, x2, y1, y2) in enumerate(walls):
        names.append(f"block_{k}")
        _box(world, names[-1], ((x1 + x2) / 2, (y1 + y2) / 2, height / 2 * s), (s / 2, s / 2, height / 2 * s))
    if robot["maze_contacts"]:
        geoms = root.find(".//body[@name='torso']").iter("geom")
        contact = ET.SubElement(root, "contact")
        for g, geom in enumerate(geoms):
            geom.set("name", geom.get("name") or f"robot_geom_{g}")
            for block in names:
                ET.SubElement(contact, "pair", geom1=geom.get("name"), geom2=block)


def build_robot(robot, add_walls):
    """Gymnasium's robot env on its model file with ``add_walls(root, robot)`` applied."""
    import importlib

    from gymnasium.envs.mujoco import mujoco_env
    module, cls = robot["env"].split(":")
    env_cls = getattr(importlib.import_module(f"gymnasium.envs.mujoco.{module}"), cls)
    tree = ET.parse(os.path.join(os.path.dirname(mujoco_env.__file__), "assets", robot["xml"]))
    add_walls(tree.getroot(), robot)
    with tempfile.TemporaryDirectory() as tmp:  # the model is compiled on construction; the file can go
        path = os.path.join(tmp, robot["xml"])
        tree.write(path)
        return env_cls(xml_file=path)


class RllabMujocoTask(gym.Env):
    """A robot in Gymnasium's MuJoCo model with a task's sensors (``n_bins`` x 2) after its own observation."""

    metadata = {"render_modes": []}
    n_bins = 0

    def __init__(self, robot: str = "swimmer"):
        if robot not in ROBOTS:
            raise ConfigError(f"Unknown robot {robot!r}: use one of {', '.join(ROBOTS)}.")
        self.robot = ROBOTS[robot]
        self.inner = build_robot(self.robot, self.add_walls)
        self.model, self.data = self.inner.model, self.inner.data
        self.torso = self.model.body("torso").id
        self.action_space = self.inner.action_space
        dim = len(self.robot["obs"](self.data, self.torso)) + 2 * self.n_bins
        self.observation_space = gym.spaces.Box(-BIG, BIG, (dim,), np.float64)

    def add_walls(self, root, robot):
        raise NotImplementedError

    def sensors(self, com, heading):
        raise NotImplementedError

    def com(self):
        return self.data.subtree_com[self.torso][:2].copy()

    def heading(self):
        return self.robot["heading"](self.data, self.torso)

    def observe(self):
        readings = self.sensors(self.com(), self.heading())
        return np.concatenate([self.robot["obs"](self.data, self.torso), *readings])

    def reset_robot(self):
        """``MujocoEnv.reset_mujoco``: the rest state plus N(0, 0.01^2) on qpos and N(0, 0.1^2) on qvel."""
        import mujoco
        mujoco.mj_resetData(self.model, self.data)
        qpos = self.inner.init_qpos + RESET_QPOS_STD * self.np_random.standard_normal(self.model.nq)
        qvel = self.inner.init_qvel + RESET_QVEL_STD * self.np_random.standard_normal(self.model.nv)
        self.inner.set_state(qpos, qvel)

    def close(self):
        self.inner.close()


class RllabGather(RllabMujocoTask):
    """``GatherEnv`` around the robot: observation ``[own, 10 apple, 10 bomb readings]``."""

    n_bins = GATHER_BINS
    is_apple = np.arange(N_APPLES + N_BOMBS) < N_APPLES

    def add_walls(self, root, robot):
        gather_walls(root, robot)

    def sensors(self, com, heading):
        return gather_readings(com, heading, self.objects, self.alive, self.is_apple, xp=np)

    def place_objects(self):
        """``GatherEnv.reset``'s loop: distinct cells ``2 randint(-3, 3)``, none closer than 2 to the origin."""
        objects = []
        while len(objects) < N_APPLES + N_BOMBS:
            x, y = (int(v) * 2 for v in self.np_random.integers(-3, 3, size=2))
            if x * x + y * y >= ROBOT_OBJECT_SPACING ** 2 and (x, y) not in objects:
                objects.append((x, y))
        return np.array(objects, np.float64)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.objects, self.alive = self.place_objects(), np.ones(N_APPLES + N_BOMBS, bool)
        self.reset_robot()
        return self.observe(), {}

    def step(self, action):
        fell = self.inner.step(np.asarray(action, np.float64))[2]
        if fell:
            return self.observe(), FALL_REWARD, True, False, {}
        caught = self.alive & (((self.objects - self.com()) ** 2).sum(1) < CATCH_RANGE ** 2)
        reward = float(caught[self.is_apple].sum() - caught[~self.is_apple].sum())
        self.alive = self.alive & ~caught
        return self.observe(), reward, not self.alive.any(), False, {}


class RllabMaze(RllabMujocoTask):
    """``MazeEnv`` around the robot: observation ``[own, 20 wall, 20 goal readings]``; 1 and the end at the goal."""

    n_bins = MAZE_BINS

    def add_walls(self, root, robot):
        _, self.goal, self.segments, self.segment_is_goal = maze_geometry(robot["maze_scaling"])
        maze_blocks(root, robot)

    def sensors(self, com, heading):
        return ray_readings(com, heading, self.segments, self.segment_is_goal, xp=np)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.reset_robot()
        return self.observe(), {}

    def step(self, action):
        done = self.inner.step(np.asarray(action, np.float64))[2]
        obs = self.observe()
        at_goal = bool(in_boxes(self.com(), self.goal, xp=np))
        return obs, float(at_goal), bool(done or at_goal), False, {}


IDS = {"SwimmerGather-rllab": ("RllabGather", "swimmer"), "AntGather-rllab": ("RllabGather", "ant"),
       "SwimmerMaze-rllab": ("RllabMaze", "swimmer"), "AntMaze-rllab": ("RllabMaze", "ant")}


def register():
    """Register the four ids with Gymnasium (once), with rllab's 500-step horizon."""
    for env_id, (cls, robot) in IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"{__name__}:{cls}", max_episode_steps=HORIZON,
                         kwargs={"robot": robot})


register()
