"""rllab's Box2D basic tasks (Duan et al. 2016, "Benchmarking Deep Reinforcement Learning for Continuous
Control", sec. 3.1) as gymnax environments: cart-pole balancing, cart-pole swing-up, mountain car and acrobot
swing-up. The double inverted pendulum (a MuJoCo model) is in ``surrogate.envs.rllab_pendulum``.

Constants come from rll/rllab: ``rllab/envs/box2d/{cartpole,cartpole_swingup,mountain_car,double_pendulum}_env.py``
(reset ranges, rewards, termination), ``rllab/envs/box2d/models/{cartpole,mountain_car,double_pendulum}.xml.mako``
(bodies, densities, time steps, control limits) and ``box2d_env.py`` (frame skip, observation = the model's
``<state>`` list; pybox2d's default gravity (0, -10)). rllab wraps every env in ``normalize()``
(``rllab/envs/normalized_env.py``): the agent's action ``a`` is clipped to [-1, 1] and scaled to the control
limit, so here the action space is ``Box(-1, 1, (1,))`` and each env scales inside (cart-pole force ``10 a`` N,
mountain-car force ``a`` N, acrobot torque ``50 a`` N m). Observations are unbounded (rllab's ``Box(-1e6, 1e6)``).
Physical parameters live in each env's params dataclass, so the ``-SI`` variant (``rllab_partial``) redraws them.

Dynamics: each step is Box2D's (``b2World.Step``) written in generalised coordinates ``q`` (``box2d_step``): the
external forces change the bodies' velocities, the joints remove the velocity components they forbid (Box2D's
sequential impulses, taken as converged: an inelastic projection through the mass matrix), and the positions move
with the new velocities. Because the projection uses the bodies' velocities of the previous configuration, the
Lagrangian's centripetal and Coriolis forces appear to first order in the step and Box2D's numerical dissipation to
second order (a pole turning at w loses about (w dt)^2 of its kinetic energy per 0.05 s step): on rllab's
cart-pole model (pybox2d 2.3.10) swing-up trajectories under random forces stay within 0.03-0.16 of Box2D's over 40
steps (an exact Lagrangian integrator drifts 0.3-1.8 away) and agree to 1e-4 near upright; on its acrobot, under
random torques, within 0.03 for 6 steps and 0.2 for 40 (up to 9 rad/s; the motion is chaotic beyond). The test
``test_box2d_tasks_track_pybox2d_on_rllabs_models`` repeats these comparisons where ``Box2D`` is installed.

Where these depart from rllab's Box2D simulation:

* Box2D's position correction and its speed caps (2 m and pi/2 rad per step) are not modelled, nor rllab's reset
  glitches: its resets set the cart's (or links') state without the pole's centre (kept at rest where the model
  file put it, the cart-pole's cart 0.53 above its prismatic joint's line), so Box2D's first step reconciles them
  (cart-pole balancing: theta' 0.18 -> 0.31; swing-up: the angle can move by 0.5 rad); here the reset state is the
  nominal one. rllab's joint-connected bodies do not collide, so the cart-pole and acrobot have no contacts.
* The mountain car is a 0.4 x 0.2 box (density 5: 0.4 kg) that rests on its corners in Box2D, rocks and loses
  energy at each impact on the 200-segment track. Here it is a box whose centre slides on the smooth curve
  ``y = 1 - cos(2 pi x / w)`` (w = track width 4) turning with the slope, pushed along it (rllab's force is along
  the car's own x axis), with a viscous force ``-0.35 x'`` standing in for the impacts and its reported height
  0.17 above the curve (Box2D's mean). Both constants were fitted to pybox2d 2.3.10 on rllab's model, over starts
  x' in [-1, 1]: the pumping policy ``a = sign(x')`` takes 87.0 steps to the goal with mean return -59.0 here vs
  87.6 and -59.5 in Box2D (50 steps without the drag); ``a = 0.6 sign(x')`` (never reaches it) returns -359.0 vs
  -364.2, uniform random actions -413.0 vs -415.0. The curve continues past ``|x| = w / 2`` where Box2D's track
  ends (reachable only with ``-SI`` widths below 4).
* The acrobot's reward keeps rllab's ``get_tip_pos``, which mirrors the second link's horizontal offset
  (``x_joint - l sin(phi2)`` where the body's tip is at ``x_joint + l sin(phi2)``): it is what produced the paper's
  numbers, equals the true distance whenever the second link is vertical, and is 0 only with both links up.
"""
import math

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

BIG = 1e6  # rllab's observation bound (box2d_env.BIG, mujoco_env.BIG)


def unit_action(action):
    """rllab's ``normalize()``: the agent's action clipped to [-1, 1] (times the control limit, by the caller)."""
    return jnp.clip(jnp.reshape(jnp.asarray(action, jnp.float32), ()), -1.0, 1.0)


def _solve(matrix, vector):
    """``matrix^-1 vector`` for the 1 x 1 and 2 x 2 mass matrices here (closed form: no LAPACK call per env)."""
    if matrix.shape == (1, 1):
        return vector / matrix[0, 0]
    (a, b), (c, d) = matrix
    return jnp.stack([d * vector[0] - b * vector[1], a * vector[1] - c * vector[0]]) / (a * d - b * c)


def box2d_step(poses, masses, body_forces, q, q_dot, dt, extra_force=0.0):
    """One Box2D step in generalised coordinates (module docstring). ``poses(q)``: each body's ``[x, y, angle]``
    (centre of mass), ``[n, 3]``; ``masses``: ``[n, 3]`` of (m, m, I about the centre); ``body_forces``: ``[n, 3]``
    forces and torques on the bodies (gravity included) at ``q``; ``extra_force``: further generalised forces.

    With ``J(q)`` the Jacobian of the poses and ``W`` the masses, the bodies' velocities ``J(q - dt q') q'`` (those
    of the previous configuration) take the impulse of the forces, and the joints project them onto the motions
    ``J(q) v`` they allow: ``J(q)^T W J(q) q'_new = J(q)^T W J(q - dt q') q' + dt (J(q)^T f + extra)``, then
    ``q_new = q + dt q'_new`` (semi-implicit Euler, Box2D's integrator)."""
    jacobian = lambda at: jax.jacfwd(poses)(at).reshape(-1, q.shape[0])
    weights = masses.reshape(-1)
    j_now, j_before = jacobian(q), jacobian(q - dt * q_dot)
    momentum = j_now.T @ (weights * (j_before @ q_dot)) + dt * (j_now.T @ body_forces.reshape(-1) + extra_force)
    q_dot = _solve(j_now.T @ (weights[:, None] * j_now), momentum)
    return q + dt * q_dot, q_dot


class RllabEnv(environment.Environment):
    """What the rllab tasks share: one normalised action in [-1, 1], an unbounded vector observation.

    ``limited_sensors``: the observation indices the ``-LS`` variant keeps (rllab's ``position_only``: the model's
    position states). ``system_id_ranges``: params field -> (low, high) that ``-SI`` redraws at every reset."""

    env_id: str = ""
    obs_dim: int = 0
    limited_sensors: tuple = ()
    system_id_ranges: dict = {}

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-BIG, BIG, (self.obs_dim,), jnp.float32)

    def _out(self, state, params, reward, done):
        return self.get_obs(state, params), state, jnp.asarray(reward, jnp.float32), done, {}


# --- cart-pole ----------------------------------------------------------------------------------------------------

@struct.dataclass
class CartPoleParams(environment.EnvParams):
    """cartpole.xml.mako: a 1 kg cart (density 1, 4/sqrt(12) x 3/sqrt(12)) and a 0.1 x 1 pole of density 1."""

    cart_mass: float = 1.0
    pole_length: float = 1.0
    pole_width: float = 0.1
    pole_density: float = 1.0
    gravity: float = 10.0
    force_scale: float = 10.0  # ctrllimit -10,10
    dt: float = 0.05
    max_steps_in_episode: int = 500


@struct.dataclass
class CartPoleState(environment.EnvState):
    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array  # Box2D's pole angle: counter-clockwise from upright, the top at x - l sin(theta)
    theta_dot: jax.Array
    time: int


def cartpole_bodies(params: CartPoleParams):
    """``(poses, masses)`` of the cart and the pole (hinged at its bottom end on the cart), ``q = [x, theta]``."""
    m = params.pole_density * params.pole_length * params.pole_width
    h = 0.5 * params.pole_length
    poses = lambda q: jnp.stack([jnp.stack([q[0], 0.0, 0.0]),
                                 jnp.stack([q[0] - h * jnp.sin(q[1]), h * jnp.cos(q[1]), q[1]])])
    inertia = m * (params.pole_length ** 2 + params.pole_width ** 2) / 12.0
    return poses, jnp.array([[params.cart_mass, params.cart_mass, 0.0], [m, m, inertia]])


class CartPoleBalancing(RllabEnv):
    """``cartpole_env.py``: reward ``10 - (1 - cos theta) - 1e-5 F^2`` while alive, 0 on the step that ends it;
    done when ``|x| > 2.4`` or ``|theta| > 0.2``; reset uniform in +-5% of (2.4, 4, 0.2, 4);
    obs [x, x', theta, theta']."""

    env_id = "CartPoleBalancing-rllab"
    obs_dim = 4
    limited_sensors = (0, 2)
    system_id_ranges = {"pole_length": (0.5, 1.5)}  # pole_height + (rand - 0.5) * pole_height, density kept
    max_cart_pos = 2.4
    max_pole_angle = 0.2

    @property
    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def reset_bounds(self):
        bounds = 0.05 * jnp.array([2.4, 4.0, 0.2, 4.0])
        return -bounds, bounds

    def reset_env(self, key, params):
        low, high = self.reset_bounds()
        x, x_dot, theta, theta_dot = jax.random.uniform(key, (4,), jnp.float32, low, high)
        state = CartPoleState(time=0, x=x, x_dot=x_dot, theta=theta, theta_dot=theta_dot)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot]).astype(jnp.float32)

    def is_terminated(self, state, params):
        return jnp.logical_or(jnp.abs(state.x) > self.max_cart_pos, jnp.abs(state.theta) > self.max_pole_angle)

    def advance(self, state, action, params):
        """One Box2D step (``dt``) under the force ``force_scale * a`` on the cart; returns the state and the force."""
        force = params.force_scale * unit_action(action)
        poses, masses = cartpole_bodies(params)
        forces = jnp.stack([jnp.stack([force, -masses[0, 0] * params.gravity, 0.0]),
                            jnp.stack([0.0, -masses[1, 0] * params.gravity, 0.0])])
        q, q_dot = box2d_step(poses, masses, forces, jnp.stack([state.x, state.theta]),
                              jnp.stack([state.x_dot, state.theta_dot]), params.dt)
        return state.replace(x=q[0], x_dot=q_dot[0], theta=q[1], theta_dot=q_dot[1], time=state.time + 1), force

    def step_env(self, key, state, action, params):
        state, force = self.advance(state, action, params)
        done = self.is_terminated(state, params)
        alive = 1.0 - done.astype(jnp.float32)
        return self._out(state, params, alive * (10.0 - (1.0 - jnp.cos(state.theta)) - 1e-5 * force ** 2), done)


class CartPoleSwingUp(CartPoleBalancing):
    """``cartpole_swingup_env.py`` (same model): reward ``cos theta``, -100 and done when ``|x| > 3``; reset x
    U[-1, 1], x' U[-2, 2], theta U[pi - 1, pi + 1], theta' U[-3, 3]; the angle is observed unwrapped."""

    env_id = "CartPoleSwingUp-rllab"
    max_cart_pos = 3.0

    def reset_bounds(self):
        return jnp.array([-1.0, -2.0, math.pi - 1.0, -3.0]), jnp.array([1.0, 2.0, math.pi + 1.0, 3.0])

    def is_terminated(self, state, params):
        return jnp.abs(state.x) > self.max_cart_pos

    def step_env(self, key, state, action, params):
        state, _ = self.advance(state, action, params)
        done = self.is_terminated(state, params)
        return self._out(state, params, jnp.where(done, -100.0, jnp.cos(state.theta)), done)


# --- mountain car -------------------------------------------------------------------------------------------------

@struct.dataclass
class MountainCarParams(environment.EnvParams):
    """mountain_car.xml.mako: a 0.4 x 0.2 box of density 5 on the track ``1 - cos(2 pi x / track_width)``."""

    car_mass: float = 0.4
    car_length: float = 0.4
    car_thickness: float = 0.2
    centre_height: float = 0.17  # the car's centre above the track: Box2D's mean (module docstring)
    drag: float = 0.35  # N s / m, for Box2D's rocking losses (module docstring)
    track_width: float = 4.0
    gravity: float = 10.0
    force_scale: float = 1.0  # ctrllimit -1,1
    dt: float = 0.05
    goal_position: float = 0.6
    max_position: float = 2.0
    height_bonus: float = 1.0
    max_steps_in_episode: int = 500


@struct.dataclass
class MountainCarState(environment.EnvState):
    x: jax.Array
    x_dot: jax.Array
    time: int


def track_height(params: MountainCarParams, x):
    return 1.0 - jnp.cos(2.0 * jnp.pi * x / params.track_width)


def track_slope(params: MountainCarParams, x):
    k = 2.0 * jnp.pi / params.track_width
    return k * jnp.sin(k * x)


class MountainCar(RllabEnv):
    """``mountain_car_env.py``: reward ``-1 + height`` every step; done at ``x >= 0.6`` or ``|x| >= 2``; reset at
    the bottom with x' U(-1, 1); obs [x, x']."""

    env_id = "MountainCar-rllab"
    obs_dim = 2
    limited_sensors = (0,)
    system_id_ranges = {"track_width": (3.0, 5.0)}  # 4 + U(-1, 1)

    @property
    def default_params(self) -> MountainCarParams:
        return MountainCarParams()

    def reset_env(self, key, params):
        state = MountainCarState(time=0, x=jnp.zeros((), jnp.float32),
                                 x_dot=jax.random.uniform(key, (), jnp.float32, -1.0, 1.0))
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.stack([state.x, state.x_dot]).astype(jnp.float32)

    def is_terminated(self, state, params):
        return jnp.logical_or(state.x >= params.goal_position, jnp.abs(state.x) >= params.max_position)

    def step_env(self, key, state, action, params):
        force = params.force_scale * unit_action(action)
        poses = lambda q: jnp.stack([q[0], track_height(params, q[0]), jnp.arctan(track_slope(params, q[0]))])[None]
        m = params.car_mass
        masses = jnp.array([[m, m, m * (params.car_length ** 2 + params.car_thickness ** 2) / 12.0]])
        angle = jnp.arctan(track_slope(params, state.x))
        forces = jnp.stack([force * jnp.cos(angle), force * jnp.sin(angle) - m * params.gravity, 0.0])[None]
        q, q_dot = box2d_step(poses, masses, forces, state.x[None], state.x_dot[None], params.dt,
                              -params.drag * state.x_dot[None])
        state = state.replace(x=q[0], x_dot=q_dot[0], time=state.time + 1)
        height = track_height(params, state.x) + params.centre_height
        return self._out(state, params, -1.0 + params.height_bonus * height, self.is_terminated(state, params))


# --- acrobot ------------------------------------------------------------------------------------------------------

@struct.dataclass
class AcrobotParams(environment.EnvParams):
    """double_pendulum.xml.mako: two 0.1-wide links of density 5, torque on the second joint only."""

    link_length: float = 1.0
    link_width: float = 0.1
    link_density: float = 5.0
    gravity: float = 10.0
    torque_scale: float = 50.0  # ctrllimit -50,50
    dt: float = 0.01
    max_steps_in_episode: int = 500


@struct.dataclass
class AcrobotState(environment.EnvState):
    phi1: jax.Array  # Box2D body angles, counter-clockwise from hanging down (absolute, as rllab observes them)
    phi2: jax.Array
    omega1: jax.Array
    omega2: jax.Array
    time: int


def acrobot_bodies(params: AcrobotParams):
    """``(poses, masses)`` of the two links, ``q = [phi1, phi2]``: link 1 hinged at the origin, link 2 at its end."""
    length, a = params.link_length, 0.5 * params.link_length
    m = params.link_density * params.link_width * length
    poses = lambda q: jnp.stack([
        jnp.stack([a * jnp.sin(q[0]), -a * jnp.cos(q[0]), q[0]]),
        jnp.stack([length * jnp.sin(q[0]) + a * jnp.sin(q[1]), -length * jnp.cos(q[0]) - a * jnp.cos(q[1]), q[1]])])
    inertia = m * (length ** 2 + params.link_width ** 2) / 12.0
    return poses, jnp.array([[m, m, inertia], [m, m, inertia]])


def acrobot_tip_distance(params: AcrobotParams, phi1, phi2):
    """rllab's ``-reward``: ``|| tip - (0, 2 l) ||`` with ``get_tip_pos``'s mirrored second link (module docstring)."""
    length = params.link_length
    tip_x = length * jnp.sin(phi1) - length * jnp.sin(phi2)
    tip_y = -length * jnp.cos(phi1) - length * jnp.cos(phi2)
    return jnp.sqrt(tip_x ** 2 + (tip_y - 2.0 * length) ** 2)


class AcrobotSwingUp(RllabEnv):
    """``double_pendulum_env.py`` (PILCO's double pendulum): reward ``-|| tip - (0, 2 l) ||``, never terminates;
    reset hanging down, angles N(0, 0.1^2), angular velocities N(0, 0.01^2); the torque ``50 a`` acts on the second
    joint (+ on link 2, - on link 1), two 0.01 s Box2D steps per action (``frame_skip`` 2);
    obs [sin phi1, cos phi1, phi1', sin phi2, cos phi2, phi2']."""

    env_id = "AcrobotSwingUp-rllab"
    obs_dim = 6
    limited_sensors = (0, 1, 3, 4)
    system_id_ranges = {"link_length": (0.5, 1.5)}  # (rand - 0.5) + 1, both links
    frame_skip = 2

    @property
    def default_params(self) -> AcrobotParams:
        return AcrobotParams()

    def reset_env(self, key, params):
        phi1, phi2, omega1, omega2 = jax.random.normal(key, (4,), jnp.float32) * jnp.array([0.1, 0.1, 0.01, 0.01])
        state = AcrobotState(time=0, phi1=phi1, phi2=phi2, omega1=omega1, omega2=omega2)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.stack([jnp.sin(state.phi1), jnp.cos(state.phi1), state.omega1,
                          jnp.sin(state.phi2), jnp.cos(state.phi2), state.omega2]).astype(jnp.float32)

    def is_terminated(self, state, params):
        return jnp.zeros((), bool)

    def step_env(self, key, state, action, params):
        torque = params.torque_scale * unit_action(action)
        poses, masses = acrobot_bodies(params)
        weight = masses[0, 0] * params.gravity
        forces = jnp.stack([jnp.stack([0.0, -weight, -torque]), jnp.stack([0.0, -weight, torque])])
        substep = lambda _, qs: box2d_step(poses, masses, forces, *qs, params.dt)
        q, q_dot = jax.lax.fori_loop(0, self.frame_skip, substep, (jnp.stack([state.phi1, state.phi2]),
                                                                   jnp.stack([state.omega1, state.omega2])))
        state = state.replace(phi1=q[0], phi2=q[1], omega1=q_dot[0], omega2=q_dot[1], time=state.time + 1)
        return self._out(state, params, -acrobot_tip_distance(params, state.phi1, state.phi2),
                         self.is_terminated(state, params))
