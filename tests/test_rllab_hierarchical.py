"""rllab's hierarchical tasks (Duan et al. 2016): food collection and maze with the point robot (JAX) and with the
Swimmer and Ant (MuJoCo, host). The references are rllab's own procedures written here a second time in plain
Python/NumPy (rll/rllab ``point_env.py``, ``gather_env.py`` ``get_readings``, ``maze_env.py`` and
``maze_env_utils.py`` rays), plus hand-computed cases."""
import functools
import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from surrogate import envs
from surrogate.envs import rllab_hierarchical as rh
from surrogate.envs import rllab_hierarchical_mujoco as rhm
from surrogate.errors import ConfigError, EnvNotFoundError

JAX_IDS = ("PointGather-rllab", "PointMaze-rllab")
HOST_IDS = tuple(rhm.IDS)
OFF = rh.POINT_COM_OFFSET
KEY = jax.random.key(0)


# --- rllab, a second time ------------------------------------------------------------------------------------------

def rllab_point_step(qpos, action):
    """``PointEnv.step`` behind ``normalize()`` (ctrlranges [-1, 1] and [-0.25, 0.25])."""
    lb, ub = np.array([-1.0, -0.25]), np.array([1.0, 0.25])
    action = np.clip(lb + (np.asarray(action, float) + 1.0) * 0.5 * (ub - lb), lb, ub)
    qpos = np.array(qpos, float)
    qpos[2] += action[1]
    ori = qpos[2]
    qpos[0] = np.clip(qpos[0] + math.cos(ori) * action[0], -7, 7)
    qpos[1] = np.clip(qpos[1] + math.sin(ori) * action[0], -7, 7)
    return qpos


def rllab_readings(objects, robot_x, robot_y, ori, n_bins=10, sensor_range=6.0, sensor_span=math.pi):
    """``GatherEnv.get_readings``; ``objects``: ``(x, y, typ)``, typ 0 apple, 1 bomb."""
    apple, bomb = np.zeros(n_bins), np.zeros(n_bins)
    for ox, oy, typ in sorted(objects, key=lambda o: (o[0] - robot_x) ** 2 + (o[1] - robot_y) ** 2)[::-1]:
        dist = ((oy - robot_y) ** 2 + (ox - robot_x) ** 2) ** 0.5
        if dist > sensor_range:
            continue
        angle = (math.atan2(oy - robot_y, ox - robot_x) - ori) % (2 * math.pi)
        angle = angle - 2 * math.pi if angle > math.pi else angle
        if abs(angle) > sensor_span * 0.5:
            continue
        (apple if typ == 0 else bomb)[int((angle + sensor_span * 0.5) / (sensor_span / n_bins))] = \
            1.0 - dist / sensor_range
    return apple, bomb


def rllab_rays(structure, scaling, robot_x, robot_y, ori, n_bins=20, sensor_range=10.0, sensor_span=math.pi):
    """``MazeEnv.get_current_obs``'s wall and goal readings, with ``line_intersect`` / ``ray_segment_intersect``."""
    ri, rj = next((i, j) for i, row in enumerate(structure) for j, c in enumerate(row) if c == "r")
    segments = []
    for i, row in enumerate(structure):
        for j, cell in enumerate(row):
            if cell == 1 or cell == "g":
                cx, cy = j * scaling - rj * scaling, i * scaling - ri * scaling
                x1, x2, y1, y2 = cx - scaling / 2, cx + scaling / 2, cy - scaling / 2, cy + scaling / 2
                segments += [(((x1, y1), (x2, y1)), cell), (((x2, y1), (x2, y2)), cell),
                             (((x2, y2), (x1, y2)), cell), (((x1, y2), (x1, y1)), cell)]
    wall, goal = np.zeros(n_bins), np.zeros(n_bins)
    for k in range(n_bins):
        theta = ori - sensor_span * 0.5 + (2 * k + 1) / (2 * n_bins) * sensor_span
        hits = []
        for ((xa, ya), (xb, yb)), cell in segments:
            dx1, dy1, dx, dy = math.cos(theta), math.sin(theta), xb - xa, yb - ya
            det = -dx1 * dy + dy1 * dx
            if abs(det) < 1e-8:
                continue
            r = (-dy * (xa - robot_x) + dx * (ya - robot_y)) / det
            s = (-dy1 * (xa - robot_x) + dx1 * (ya - robot_y)) / det
            if r >= 0 and 0 <= s <= 1:
                xi = (robot_x + r * dx1 + xa + s * dx) / 2
                yi = (robot_y + r * dy1 + ya + s * dy) / 2
                hits.append((((xi - robot_x) ** 2 + (yi - robot_y) ** 2) ** 0.5, cell))
        if hits:
            d, cell = sorted(hits, key=lambda h: h[0])[0]
            if d <= sensor_range:
                (wall if cell == 1 else goal)[k] = (sensor_range - d) / sensor_range
    return wall, goal


# --- conformance ---------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _rollout(env_id, horizon=25, steps=60, num_envs=2):
    """Random actions (beyond [-1, 1]: clipped) through ``make(id).step`` with auto-reset; compiled once per id."""
    env = envs.make(env_id, max_steps_in_episode=horizon)

    def run(key):
        k0, k1 = jax.random.split(key)
        obs0, state = jax.vmap(env.reset)(jax.random.split(k0, num_envs))

        def body(state, t):
            ka, ks = jax.random.split(jax.random.fold_in(k1, t))
            actions = jax.random.uniform(ka, (num_envs, 2), minval=-1.5, maxval=1.5)
            obs, state, reward, done, info = jax.vmap(env.step)(jax.random.split(ks, num_envs), state, actions)
            return state, (obs, reward, done, info["terminated"], info["truncated"], info["final_observation"])

        return obs0, jax.lax.scan(body, state, jnp.arange(steps))[1]

    run = jax.jit(run)
    return env, run, jax.tree.map(np.asarray, run(KEY))


@pytest.mark.parametrize("env_id", JAX_IDS)
def test_jax_conformance(env_id):
    default = envs.make(env_id)
    dim = 23 if "Gather" in env_id else 43
    assert default.id == env_id and default.backend == "jax" and default.max_episode_steps == 500
    assert not default.discrete and default.action_dim == 2 and default.action_bounds == (-1.0, 1.0)
    assert default.obs_shape == (dim,) and env_id in envs.list_envs()["jax"]

    env, run, (obs0, (obs, reward, done, terminated, truncated, final)) = _rollout(env_id)
    assert env.id == f"{env_id}[max_steps=25]" and env.max_episode_steps == 25
    again = run(KEY)
    np.testing.assert_array_equal(obs, np.asarray(again[1][0]))  # deterministic under a fixed key
    np.testing.assert_array_equal(obs0, np.asarray(again[0]))
    assert not np.array_equal(np.asarray(run(jax.random.key(1))[1][0]), obs)
    assert obs.dtype == np.float32 and reward.dtype == np.float32 and obs.shape == (60, 2, dim)
    length = np.zeros(2, int)
    for t in range(60):
        length += 1
        np.testing.assert_array_equal(truncated[t], length >= 25)  # truncated exactly at the horizon
        length[done[t]] = 0
    np.testing.assert_array_equal(done, terminated | truncated)
    # auto-reset: after an end the pose is back near the origin, the final observation is where the episode ended
    assert np.abs(obs[done][:, :2]).max() < 0.1 and np.abs(final[done][:, :2]).max() > 0.1
    readings = obs[..., 3:]
    assert readings.min() >= 0 and readings.max() <= 1 and readings.max() > 0


def test_bad_ids_and_options_fail_clearly():
    with pytest.raises(EnvNotFoundError, match="PointGather-rllab"):
        envs.make("PointGathr-rllab")
    with pytest.raises(ConfigError, match="max_steps_in_episode"):
        envs.make("PointMaze-rllab", max_steps_in_episode=0)
    with pytest.raises(ConfigError, match="swimmer, ant"):
        rhm.RllabGather(robot="snake")
    with pytest.raises(ConfigError, match="goal"):
        rh.maze_geometry(3.0, ((1, 1), (1, "r")))


# --- the point robot -----------------------------------------------------------------------------------------------

def test_point_step_matches_rllab():
    rng = np.random.default_rng(0)
    poses = rng.uniform(-8, 8, (200, 3)) * np.array([1, 1, 0.5])
    actions = rng.uniform(-2, 2, (200, 2))
    got = np.asarray(jax.vmap(rh.point_move)(jnp.asarray(poses, jnp.float32), jnp.asarray(actions, jnp.float32)))
    want = np.stack([rllab_point_step(p, a) for p, a in zip(poses, actions)])
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got[:, :2]).max() == 7.0  # the +-7 clip is reached


def test_point_com_is_mujocos():
    """rllab's point.xml in MuJoCo: the torso's centre of mass sits POINT_COM_OFFSET ahead of (x, y)."""
    mujoco = pytest.importorskip("mujoco")
    xml = """<mujoco><compiler inertiafromgeom="true" angle="degree"/><default><geom density="100"/></default>
      <worldbody><body name="torso"><geom type="sphere" size="0.5" pos="0 0 0.5"/>
      <geom type="box" size="0.5 0.1 0.1" pos="0.6 0 0.5"/><joint type="slide" axis="1 0 0"/>
      <joint type="slide" axis="0 1 0"/><joint type="hinge" axis="0 0 1"/></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    data.qpos[:] = [1.0, -2.0, 0.7]
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(rh.point_com(np.array([1.0, -2.0, 0.7]), xp=np), data.subtree_com[1][:2], atol=1e-12)


# --- gather --------------------------------------------------------------------------------------------------------

def _gather_obs(pose, objects, kinds):
    """The JAX env's readings for hand-placed objects (``kinds``: True for apples)."""
    apple, bomb = rh.gather_readings(rh.point_com(jnp.asarray(pose, jnp.float32)), pose[2],
                                     jnp.asarray(objects, jnp.float32), jnp.ones(len(objects), bool),
                                     jnp.asarray(kinds))
    return np.asarray(apple), np.asarray(bomb)


def test_gather_sensors_on_hand_placed_objects():
    ahead = lambda d, angle=0.0: (OFF + d * math.cos(angle), d * math.sin(angle))  # from the centre of mass
    apple, bomb = _gather_obs([0, 0, 0], [ahead(3.0)], [True])
    np.testing.assert_allclose(apple, np.eye(10)[5] * 0.5, atol=1e-6)  # middle bin, 1 - 3/6
    assert not bomb.any()
    for far_or_aside in ([ahead(6.5)], [ahead(3.0, math.pi)], [ahead(3.0, 1.7)], [ahead(3.0, -1.7)]):
        assert not _gather_obs([0, 0, 0], far_or_aside, [True])[0].any()
    apple, bomb = _gather_obs([0, 0, 0], [ahead(4.0), ahead(2.0), ahead(3.0, math.pi / 4)], [True, True, False])
    np.testing.assert_allclose(apple, np.eye(10)[5] * (1 - 2 / 6), atol=1e-6)  # the closest object wins its bin
    np.testing.assert_allclose(bomb, np.eye(10)[7] * 0.5, atol=1e-6)  # 45 degrees left: bin int(7.5)
    # heading pi / 2 turns the view: an apple 0.1 rad left of straight up reads in the middle bin
    com = np.array([0.0, OFF])
    apple, _ = _gather_obs([0, 0, math.pi / 2], [com + 3 * np.array([-math.sin(0.1), math.cos(0.1)])], [True])
    np.testing.assert_allclose(apple, np.eye(10)[5] * 0.5, atol=1e-6)


def test_gather_sensors_match_rllab_on_random_scenes():
    rng = np.random.default_rng(1)
    for _ in range(100):
        objects = rng.choice(rh.gather_cells(), 16, replace=False).astype(float)
        alive = rng.random(16) < 0.7
        x, y, ori = rng.uniform(-7, 7), rng.uniform(-7, 7), rng.uniform(-10, 10)
        want = rllab_readings([(ox, oy, int(k >= 8)) for k, (ox, oy) in enumerate(objects) if alive[k]], x, y, ori)
        got = rh.gather_readings(np.array([x, y]), ori, objects, alive, np.arange(16) < 8, xp=np)
        np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), atol=1e-12)
        got32 = rh.gather_readings(jnp.array([x, y]), ori, jnp.asarray(objects), jnp.asarray(alive),
                                   jnp.arange(16) < 8)
        np.testing.assert_allclose(np.concatenate(got32), np.concatenate(want), atol=1e-5)


def test_gather_objects_placement():
    env = rh.PointGather()
    states = jax.vmap(lambda k: env.reset_env(k, env.default_params)[1])(jax.random.split(KEY, 200))
    objects = np.asarray(states.objects)
    assert objects.shape == (200, 16, 2) and set(np.unique(objects)) == {-6, -4, -2, 0, 2, 4}
    assert ((objects ** 2).sum(-1) >= 4).all()  # never on the start
    assert all(len({tuple(o) for o in scene}) == 16 for scene in objects)  # distinct cells
    assert np.abs(np.asarray(states.pose)).max() < 0.1 and states.alive.all()


def _gather_state(objects, alive=None, pose=(0.0, 0.0, 0.0)):
    alive = np.ones(16, bool) if alive is None else alive
    return rh.GatherState(pose=jnp.asarray(pose, jnp.float32), objects=jnp.asarray(objects, jnp.float32),
                          alive=jnp.asarray(alive), time=0)


def test_collecting_apples_and_bombs():
    env = rh.PointGather()
    params = env.default_params
    far = np.array([[-6.0, -6.0]] * 16)
    apple, bomb = far.copy(), far.copy()
    apple[0], bomb[8] = (1.5, 0.0), (1.5, 0.0)  # reached by one step forward (the centre of mass at 1.04)
    obs, state, reward, done, _ = env.step_env(KEY, _gather_state(apple), jnp.array([1.0, 0.0]), params)
    assert float(reward) == 1.0 and not bool(state.alive[0]) and int(state.alive.sum()) == 15 and not bool(done)
    assert float(env.step_env(KEY, state, jnp.array([0.0, 0.0]), params)[2]) == 0.0  # gone: no second reward
    _, state, reward, done, _ = env.step_env(KEY, _gather_state(bomb), jnp.array([1.0, 0.0]), params)
    assert float(reward) == -1.0 and not bool(state.alive[8])
    _, _, reward, _, _ = env.step_env(KEY, _gather_state(apple), jnp.array([0.4, 0.0]), params)
    assert float(reward) == 0.0  # 1.5 - 0.44 > catch range 1
    last = np.eye(16, dtype=bool)[3]  # the last object left: collecting it ends the episode
    _, _, reward, done, _ = env.step_env(KEY, _gather_state(np.where(last[:, None], (1.5, 0.0), far), last),
                                         jnp.array([1.0, 0.0]), params)
    assert float(reward) == 1.0 and bool(done)


def test_gather_episode_ends_through_make_step():
    env = envs.make("PointGather-rllab")
    last = np.eye(16, dtype=bool)[0]
    state = _gather_state(np.where(last[:, None], (1.5, 0.0), -6.0), last)
    obs, new_state, reward, done, info = env.step(KEY, state, jnp.array([1.0, 0.0]))
    assert bool(done) and bool(info["terminated"]) and float(reward) == 1.0
    assert bool(new_state.alive.all()) and int(new_state.time) == 0  # auto-reset: 16 fresh objects


# --- maze ----------------------------------------------------------------------------------------------------------

def _rays(x, y, ori):
    """The JAX env's readings with the centre of mass at (x, y)."""
    env = rh.PointMaze()
    pose = jnp.array([x - OFF * math.cos(ori), y - OFF * math.sin(ori), ori], jnp.float32)
    obs = np.asarray(env.get_obs(rh.MazeState(pose=pose, time=0)))
    return obs[3:23], obs[23:]


def test_maze_rays_hit_walls_at_the_right_distances():
    """From the start cell's centre facing +x (cell size 3: walls at y = -1.5, at y = 1.5 for x < 4.5, at x = 7.5)."""
    wall, goal = _rays(0.0, 0.0, 0.0)
    angle = lambda k: -math.pi / 2 + (2 * k + 1) * math.pi / 40
    np.testing.assert_allclose(wall[9], 1 - 7.5 / math.cos(angle(9)) / 10, atol=1e-5)  # the far wall x = 7.5
    np.testing.assert_allclose(wall[10], wall[9], atol=1e-5)
    np.testing.assert_allclose(wall[8], 1 - 1.5 / abs(math.sin(angle(8))) / 10, atol=1e-5)  # the floor y = -1.5
    np.testing.assert_allclose(wall[0], 1 - 1.5 / abs(math.sin(angle(0))) / 10, atol=1e-5)
    np.testing.assert_allclose(wall[11], 1 - 7.5 / math.cos(angle(11)) / 10, atol=1e-5)  # through the gap
    np.testing.assert_allclose(wall[19], 1 - 1.5 / math.sin(angle(19)) / 10, atol=1e-5)
    assert not goal.any()
    wall, goal = _rays(6.0, 6.0, math.pi)  # in the last corridor, facing the goal cell (its edge at x = 1.5)
    np.testing.assert_allclose(goal[9:11], 1 - 4.5 / math.cos(math.pi / 40) / 10, atol=1e-5)
    assert wall[9:11].sum() == 0 and wall[0] > 0  # the corridor's upper wall on the right of the heading


def test_maze_rays_match_rllab_on_random_poses():
    env = rh.PointMaze()
    rng = np.random.default_rng(2)
    poses = rng.uniform([-1.5, -1.5, -4], [7.5, 7.5, 4], (200, 3))
    free = [p for p in poses if not rh.in_boxes(p[:2], np.concatenate([env.walls, env.goal[None]]), xp=np)]
    assert len(free) >= 40
    for x, y, ori in free[:40]:  # where the robot can be (inside a block, rays meet coincident edges: a tie)
        want = np.concatenate(rllab_rays(rh.MAZE_STRUCTURE, 3.0, x, y, ori))
        got = rh.ray_readings(np.array([x, y]), ori, env.segments.astype(float), env.segment_is_goal, xp=np)
        np.testing.assert_allclose(np.concatenate(got), want, atol=1e-9)
        got32 = rh.ray_readings(jnp.array([x, y]), ori, jnp.asarray(env.segments), jnp.asarray(env.segment_is_goal))
        np.testing.assert_allclose(np.concatenate(got32), want, atol=1e-4)


def test_walls_stop_the_point_robot():
    env = rh.PointMaze()
    state = rh.MazeState(pose=jnp.array([0.0, 1.0, math.pi / 2], jnp.float32), time=0)
    _, new, reward, done, _ = env.step_env(KEY, state, jnp.array([1.0, 0.4]), env.default_params)
    np.testing.assert_allclose(np.asarray(new.pose), [0.0, 1.0, math.pi / 2 + 0.1], atol=1e-6)  # turned, not moved
    _, new, _, _, _ = env.step_env(KEY, state, jnp.array([0.4, 0.0]), env.default_params)
    np.testing.assert_allclose(np.asarray(new.pose), [0.0, 1.4, math.pi / 2], atol=1e-6)  # free space: moves
    assert float(reward) == 0.0 and not bool(done)


def test_maze_goal_gives_one_and_ends():
    env = envs.make("PointMaze-rllab")
    state = rh.MazeState(pose=jnp.array([2.5, 6.0, math.pi], jnp.float32), time=7)
    _, inner, reward, done, _ = env.env.step_env(KEY, state, jnp.array([0.9, 0.0]), env.default_params)
    assert float(reward) == 0.0 and not bool(done)  # the centre of mass at x = 1.56: not yet in the goal cell
    obs, new, reward, done, info = env.step(KEY, inner, jnp.array([0.3, 0.0]))
    assert float(reward) == 1.0 and bool(done) and bool(info["terminated"]) and not bool(info["truncated"])
    assert int(new.time) == 0 and np.abs(np.asarray(new.pose)).max() < 0.1  # auto-reset to the start


# --- MuJoCo robots (host) ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env_id", HOST_IDS)
def test_host_conformance(env_id):
    env = envs.make(env_id)
    own = 13 if "Swimmer" in env_id else 125
    dim = own + (20 if "Gather" in env_id else 40)
    assert env.backend == "host" and env.obs_shape == (dim,) and env.max_episode_steps == 500
    assert env.action_dim == (2 if "Swimmer" in env_id else 8) and env_id in envs.list_envs()["host"]
    first = [gym.make(env_id) for _ in range(2)]
    obs = [e.reset(seed=3)[0] for e in first]
    np.testing.assert_array_equal(*obs)  # deterministic under a seed
    actions = np.random.default_rng(0).uniform(-1, 1, (5, env.action_dim))
    for a in actions:
        steps = [e.step(a) for e in first]
        np.testing.assert_array_equal(steps[0][0], steps[1][0])
    short = gym.make(env_id, max_episode_steps=3)
    short.reset(seed=0)
    ends = [short.step(np.zeros(env.action_dim))[2:4] for _ in range(3)]
    assert ends[-1] == (False, True) and not any(any(e) for e in ends[:-1])  # truncated at the horizon
    venv = env.vector(2, seed=0)
    o, r, term, trunc, final = venv.step(np.zeros((2, env.action_dim), np.float32))
    assert o.shape == (2, dim) and np.isfinite(o).all()
    venv.close()


def test_host_gather_collects_and_senses():
    env = gym.make("SwimmerGather-rllab").unwrapped
    env.reset(seed=0)
    com, left = env.com(), env.heading() + 0.05  # just left of the heading: the middle bin, not on its edge
    env.objects = np.array([[-6.0, -6.0]] * 16)
    env.objects[0] = com + 0.5 * np.array([math.cos(left), math.sin(left)])  # an apple within reach
    env.objects[9] = com + 3.0 * np.array([math.cos(left), math.sin(left)])  # a bomb three ahead
    obs = env.observe()
    assert obs[13 + 5] > 0.9 and abs(obs[23 + 5] - 0.5) < 1e-9  # apple and bomb in the middle bins
    _, reward, terminated, truncated, _ = env.step(np.zeros(2))
    assert reward == 1.0 and not env.alive[0] and env.alive[1:].all() and not terminated


def test_ant_fall_gives_minus_ten():
    env = gym.make("AntGather-rllab").unwrapped
    env.reset(seed=0)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    qpos[2] = 1.5  # torso above the healthy range [0.2, 1]
    env.inner.set_state(qpos, qvel)
    _, reward, terminated, _, _ = env.step(np.zeros(8))
    assert reward == -10.0 and terminated


@pytest.mark.parametrize("env_id", ["SwimmerMaze-rllab", "AntMaze-rllab"])
def test_host_maze_walls_are_physical_and_goal_ends(env_id):
    mujoco = pytest.importorskip("mujoco")
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    s = env.robot["maze_scaling"]
    blocks = [k for k in range(env.model.ngeom) if (env.model.geom(k).name or "").startswith("block_")]
    assert len(blocks) == 18
    np.testing.assert_allclose(env.model.geom("block_0").size[:2], [s / 2, s / 2])
    qpos = env.data.qpos.copy()
    qpos[1] = -s / 2  # the robot across the start cell's lower edge: touching a block
    env.inner.set_state(qpos, env.data.qvel)
    mujoco.mj_forward(env.model, env.data)
    touching = {int(c.geom1) for c in env.data.contact[:env.data.ncon]} | \
        {int(c.geom2) for c in env.data.contact[:env.data.ncon]}
    assert touching & set(blocks)
    qpos[:2] = 0.0, 2 * s  # the robot in the goal cell
    env.inner.set_state(qpos, env.data.qvel)
    _, reward, terminated, _, _ = env.step(np.zeros(env.action_space.shape))
    assert reward == 1.0 and terminated


def test_swimmer_passes_through_gather_walls_like_rllab():
    """rllab's Swimmer collides only through predefined pairs, and the gather walls have none."""
    mujoco = pytest.importorskip("mujoco")
    env = gym.make("SwimmerGather-rllab").unwrapped
    env.reset(seed=0)
    qpos = env.data.qpos.copy()
    qpos[0] = 7.0
    env.inner.set_state(qpos, env.data.qvel)
    mujoco.mj_forward(env.model, env.data)
    assert env.data.ncon == 0
