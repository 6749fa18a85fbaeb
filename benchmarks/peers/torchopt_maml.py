"""MAML (second order) with torchopt 0.7.3 (``torchopt.MetaSGD``, torch CPU), timed for benchmarks/reptile.py
(peers venv). The same math as ``surrogate.meta`` MAML: per task, ``--inner-steps`` full-batch SGD steps of
``--inner-lr`` on the support set, differentiated through (``MetaSGD``), the query loss's gradient
averaged over the meta-batch, one Adam step of ``--outer-lr``; new tasks are sampled for every update.

  torchopt_maml.py --task sine --meta-batch 16 --inner-steps 5 --inner-lr 0.01 --shots 10 --query 10
  torchopt_maml.py --task omniglot --meta-batch 8 --inner-steps 1 --inner-lr 0.4 --shots 1 --query 5

``sine``: amplitude U(0.1, 5), phase U(0, 2 pi), x ~ U(-5, 5), MLP 1-64-64-1 tanh, mean squared error.
``omniglot``: 5-way tasks of random 28x28 images (the shape of Omniglot's), the 4 x [conv 3x3 64, batch norm
with batch statistics, ReLU, 2x2 max-pool] net with a linear head, cross-entropy. ``--warmup`` updates
run first (untimed); then ``--updates`` timed ones. Prints one JSON line.
"""
import argparse
import json
import math
import time
from importlib import metadata

import torch
import torch.nn.functional as F
import torchopt
from torch import nn


def sine_net(hidden):
    layers, width = [], 1
    for h in hidden:
        layers += [nn.Linear(width, h), nn.Tanh()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 1))


def conv_net(n_way, filters=64):
    layers, ch = [], 1
    for _ in range(4):
        layers += [nn.Conv2d(ch, filters, 3, padding=1), nn.BatchNorm2d(filters, track_running_stats=False, eps=1e-3),
                   nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True)]
        ch = filters
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * 2 * filters, n_way))


def sine_tasks(t, shots, query):
    amp = torch.empty(t, 1, 1).uniform_(0.1, 5.0)
    phase = torch.empty(t, 1, 1).uniform_(0, 2 * math.pi)
    x = torch.empty(t, shots + query, 1).uniform_(-5.0, 5.0)
    y = amp * torch.sin(x + phase)
    return x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:]


def image_tasks(t, n_way, shots, query):
    xs, xq = torch.rand(t, n_way * shots, 1, 28, 28), torch.rand(t, n_way * query, 1, 28, 28)
    ys = torch.arange(n_way).repeat_interleave(shots).expand(t, -1)
    yq = torch.arange(n_way).repeat_interleave(query).expand(t, -1)
    return xs, ys, xq, yq


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--task", choices=("sine", "omniglot"), default="sine")
    p.add_argument("--meta-batch", type=int, default=16)
    p.add_argument("--inner-steps", type=int, default=5)
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--outer-lr", type=float, default=1e-3)
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--query", type=int, default=10)
    p.add_argument("--n-way", type=int, default=5)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--updates", type=int, default=50)
    p.add_argument("--threads", default="default", help="torch threads: a number or 'default'")
    a = p.parse_args()
    if a.threads != "default":
        torch.set_num_threads(int(a.threads))
    torch.manual_seed(0)
    if a.task == "sine":
        net, loss_fn = sine_net(a.hidden), F.mse_loss
        sample = lambda: sine_tasks(a.meta_batch, a.shots, a.query)  # noqa: E731
    else:
        net, loss_fn = conv_net(a.n_way), F.cross_entropy
        sample = lambda: image_tasks(a.meta_batch, a.n_way, a.shots, a.query)  # noqa: E731
    meta_opt = torch.optim.Adam(net.parameters(), lr=a.outer_lr)
    inner_opt = torchopt.MetaSGD(net, lr=a.inner_lr)

    def meta_update():
        xs, ys, xq, yq = sample()
        net_state, opt_state = torchopt.extract_state_dict(net), torchopt.extract_state_dict(inner_opt)
        meta_opt.zero_grad()
        total = 0.0
        for i in range(a.meta_batch):
            for _ in range(a.inner_steps):
                inner_opt.step(loss_fn(net(xs[i]), ys[i]))
            query_loss = loss_fn(net(xq[i]), yq[i]) / a.meta_batch
            query_loss.backward()
            total += float(query_loss)
            torchopt.recover_state_dict(net, net_state)
            torchopt.recover_state_dict(inner_opt, opt_state)
        meta_opt.step()
        return total

    for _ in range(a.warmup):
        meta_update()
    t = time.perf_counter()
    for _ in range(a.updates):
        loss = meta_update()
    wall = time.perf_counter() - t
    print(json.dumps({"lib": "torchopt", "task": a.task, "updates": a.updates, "wall_s": wall,
                      "updates_per_s": a.updates / wall, "threads": torch.get_num_threads(), "last_query_loss": loss,
                      "meta_batch": a.meta_batch, "inner_steps": a.inner_steps, "shots": a.shots, "query": a.query,
                      "versions": {m: metadata.version(m) for m in ("torch", "torchopt")}}))


if __name__ == "__main__":
    main()
