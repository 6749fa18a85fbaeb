"""Hyperparameters of the supervised meta-learners, the paper's settings as defaults, and their checks.

``default_config(algo, data)`` is what ``surrogate train reptile|fomaml|maml --data ...`` starts from:

* classification, Reptile: Nichol et al. 2018, appendix (Omniglot 5-way): inner Adam (beta1 = 0) lr 1e-3,
  inner batch 10, 5 inner steps on 10 training shots per class, outer step 1.0 annealed linearly to 0,
  meta-batch 5, 100K meta-iterations, 50 inner steps at evaluation; Mini-ImageNet: 8 inner steps,
  15 training shots.
* classification, FOMAML and MAML: Finn et al. 2017 (Omniglot 5-way): one full-batch SGD step of lr 0.4
  on the support set, 15 query samples per class, meta-batch 32, Adam 1e-3, 60K meta-iterations,
  3 inner steps at evaluation. (Mini-ImageNet: 5 steps of lr 0.01, meta-batch 4, 10 steps at evaluation.)
* sine (every algorithm): the reptile-sinewaves demo's inner loop (SGD lr 0.02, minibatches of 10,
  32 steps at evaluation on 10 points) with 10 support and 10 query points per task; Reptile's outer step
  0.1 annealed, MAML's and FOMAML's Adam 1e-3.
"""
from dataclasses import dataclass, replace
from typing import Literal

from surrogate.errors import ConfigError

ALGOS = ("reptile", "fomaml", "maml")
DATA_HELP = "sine, digits, omniglot:PATH or miniimagenet:PATH"


@dataclass(frozen=True)
class Config:
    """One meta-training run. For ``--data sine`` a "shot" is a support point (``n_way`` is unused)."""

    data: str = "digits"
    """sine | digits | omniglot:PATH | miniimagenet:PATH"""
    n_way: int = 5
    k_shot: int = 1
    """support samples per class at evaluation (the K of K-shot)"""
    train_shots: int = 0
    """support samples per class while meta-training (0: k_shot); the Reptile paper trains with 10 on Omniglot"""
    n_query: int = 15
    """query samples per class while meta-training (FOMAML/MAML's outer loss; Reptile ignores them)"""
    eval_query: int = 1
    """query samples per class at evaluation (the Reptile code's one; transduction batches them)"""
    inner_optimizer: Literal["sgd", "adam"] = "adam"
    inner_lr: float = 1e-3
    inner_steps: int = 5
    inner_batch: int = 10
    """minibatch of the inner loop (0, or >= the support set: full batch)"""
    eval_inner_steps: int = 50
    meta_batch: int = 5
    outer_optimizer: Literal["sgd", "adam"] = "sgd"
    outer_lr: float = 1.0
    anneal: bool = True
    """outer step annealed linearly to 0 over training"""
    serial: bool = False
    """Reptile only: one outer update per task (Algorithm 1) instead of the meta-batch's mean (Algorithm 2)"""
    meta_iterations: int = 100_000
    eval_tasks: int = 1000
    filters: int = 64
    hidden: tuple[int, ...] = (64, 64)
    """sine only: the MLP's hidden layers"""

    @property
    def shots(self) -> int:
        return self.train_shots or self.k_shot

    def kind(self) -> str:
        return data_kind(self.data)

    def validate(self, algo: str) -> "Config":
        self.kind()
        if algo not in ALGOS and algo != "pretrain":
            raise ConfigError(f"Unknown meta-learner {algo!r}. Available: {', '.join(ALGOS)}.")
        for name in ("n_way", "k_shot", "n_query", "eval_query", "inner_steps", "eval_inner_steps",
                     "meta_batch", "meta_iterations", "eval_tasks", "filters"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}.")
        for name, zero in (("train_shots", "k_shot"), ("inner_batch", "full batch")):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0: {zero}), got {getattr(self, name)}.")
        for name in ("inner_lr", "outer_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}.")
        if self.serial and algo != "reptile":
            raise ConfigError(f"--serial is Reptile's Algorithm 1; {algo} has no serial form. Drop --serial.")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}.")
        return self

    def check_data(self, split: str, num_classes: int, per_class: int) -> None:
        """``ConfigError`` naming the fix when a split cannot hold this run's tasks."""
        shots = self.shots if split == "train" else self.k_shot
        query = self.n_query if split == "train" else self.eval_query
        if self.n_way > num_classes:
            raise ConfigError(f"n_way {self.n_way} is larger than the {num_classes} classes of {self.data}'s "
                              f"{split} split. Use --n-way {num_classes} or fewer.")
        if shots + query > per_class:
            what = "--train-shots/--k-shot + --n-query" if split == "train" else "--k-shot + --eval-query"
            raise ConfigError(f"{what} = {shots} + {query} is more than the {per_class} examples per class of "
                              f"{self.data}'s {split} split. Lower them to at most {per_class} together.")


def data_kind(data: str) -> str:
    """``sine``, ``digits``, ``omniglot`` or ``miniimagenet``; ``ConfigError`` for anything else."""
    kind, sep, path = data.partition(":")
    if kind in ("sine", "digits") and not sep:
        return kind
    if kind in ("omniglot", "miniimagenet") and sep and path:
        return kind
    raise ConfigError(f"Unknown --data {data!r}. Use {DATA_HELP} (PATH: the dataset's folder).")


def default_config(algo: str, data: str = "digits") -> Config:
    """The paper's settings for ``algo`` on ``data`` (module docstring)."""
    kind = data_kind(data)
    if algo not in ALGOS and algo != "pretrain":
        raise ConfigError(f"Unknown meta-learner {algo!r}. Available: {', '.join(ALGOS)}.")
    if kind == "sine":
        c = Config(data=data, n_way=1, k_shot=10, n_query=10, eval_query=100, inner_optimizer="sgd", inner_lr=0.02,
                   inner_steps=5, inner_batch=10, eval_inner_steps=32, meta_batch=5, meta_iterations=30_000,
                   eval_tasks=1000)
        if algo == "reptile":
            return replace(c, outer_optimizer="sgd", outer_lr=0.1, meta_batch=1)
        return replace(c, outer_optimizer="adam", outer_lr=1e-3, anneal=False)
    if algo == "reptile":
        c = Config(data=data, train_shots=10)
        if kind == "miniimagenet":
            c = replace(c, train_shots=15, inner_steps=8)
        return c
    c = Config(data=data, n_query=15, inner_optimizer="sgd", inner_lr=0.4, inner_steps=1, inner_batch=0,
               eval_inner_steps=3, meta_batch=32, outer_optimizer="adam", outer_lr=1e-3, anneal=False,
               meta_iterations=60_000)
    if kind == "miniimagenet":
        c = replace(c, inner_lr=0.01, inner_steps=5, eval_inner_steps=10, meta_batch=4)
    return c
