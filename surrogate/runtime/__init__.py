"""How any algorithm is run: the contract (``Algorithm``), the JAX driver (one jitted scan, seeds
vmapped and sharded over host devices), the host driver, rollouts with an injected acting
function, evaluation and the compile cache."""
from surrogate.runtime.contract import EPISODE_KEYS, Algorithm, RunnerState
from surrogate.runtime.train import TrainResult, evaluate, seed_policy, state_template, train

__all__ = ["Algorithm", "RunnerState", "EPISODE_KEYS", "TrainResult", "train", "evaluate", "seed_policy",
           "state_template"]
