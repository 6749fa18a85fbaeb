"""Supervised meta-learning: Reptile (serial and batched), first-order MAML and MAML (Nichol, Achiam &
Schulman 2018, "On First-Order Meta-Learning Algorithms"; Finn, Abbeel & Levine 2017) on sine-wave
regression and N-way K-shot classification.

    from surrogate.meta import Config, default_config, make_trainer
    trainer = make_trainer("reptile", default_config("reptile", "sine"))
"""
from surrogate.meta.config import ALGOS, Config, default_config
from surrogate.meta.train import evaluate, make_trainer, train_in_dir

__all__ = ["ALGOS", "Config", "default_config", "evaluate", "make_trainer", "train_in_dir"]
