"""surrogate: a reference implementation of the policy-gradient / Q-learning research line in JAX."""
from surrogate._jax_setup import setup as _setup

_setup()

__version__ = "0.1.0"
