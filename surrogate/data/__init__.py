"""Datasets: few-shot classification tasks (``fewshot``) over embedded digits, Omniglot and Mini-ImageNet."""
from surrogate.data.fewshot import check_task_shape, load_fewshot, sample_tasks

__all__ = ["check_task_shape", "load_fewshot", "sample_tasks"]
