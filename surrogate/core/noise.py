"""Exploration noise for deterministic continuous-action policies.

The Ornstein-Uhlenbeck process (Uhlenbeck & Ornstein 1930) that DDPG adds to its actions for temporally
correlated exploration (Lillicrap et al. 2016, "Continuous control with deep reinforcement learning",
sec. 3 and sec. 7 "Experiment details": theta = 0.15, sigma = 0.2; rllab's ``OUStrategy``: theta 0.15,
sigma 0.3). ``dx = theta (mu - x) dt + sigma dW`` discretised with ``dt = 1`` as rllab does:

    x_{t+1} = x_t + theta (mu - x_t) + sigma eps_t,   eps_t ~ N(0, 1),

an AR(1) process with coefficient ``1 - theta``. Functions are pure and work on NumPy or JAX arrays.
"""


def ou_step(x, eps, theta: float, sigma: float, mu: float = 0.0):
    """One step of the discretised Ornstein-Uhlenbeck process: ``x + theta (mu - x) + sigma eps``
    (rllab's ``OUStrategy.evolve_state``; dt = 1). ``eps`` is standard normal, shaped like ``x``."""
    return x + theta * (mu - x) + sigma * eps


def ou_stationary_variance(theta: float, sigma: float) -> float:
    """The variance of ``ou_step``'s stationary distribution (mean ``mu``): the AR(1) process
    ``x' = (1 - theta) x + sigma eps`` has ``Var = sigma^2 / (1 - (1 - theta)^2) = sigma^2 / (theta (2 - theta))``.
    The continuous-time process has ``sigma^2 / (2 theta)``, the ``dt -> 0`` limit (0.300 vs 0.324 for
    rllab's theta 0.15, sigma 0.3); its lag-1 autocorrelation is ``1 - theta``."""
    return sigma**2 / (theta * (2.0 - theta))
