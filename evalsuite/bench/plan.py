"""``evalsuite bench plan SUITE``: a study suite's jobs, their count and an estimate of their cost.

The cost is counted, not guessed: for each distinct network (architecture, its kwargs, the dataset's input
shape and classes) ``torch.utils.flop_counter.FlopCounterMode`` counts the FLOPs of one forward pass of
one image. A training epoch costs about 3 forward passes (forward + backward) per training image: masked
training runs dense kernels, so a sparse net costs what its dense twin costs. The battery costs one
forward per test and OOD image plus, per attack and eps, one forward and backward per attack step.
With ``measure=True`` the wall time of a few real training steps of each network on the chosen device
turns FLOPs into hours on this machine (an estimate: data loading and evaluation are not timed).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from evalsuite.bench.grid import Plan, expand
from evalsuite.bench.runner import Overrides, _eval_data, _rel, battery_config
from evalsuite.bench.suite import Suite
from evalsuite.core.errors import UsageError

# Training-set sizes of the registered datasets (torchvision's train splits; digits' stored split)
TRAIN_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257}
TEST_SIZES = {"cifar10": 10_000, "cifar100": 10_000, "svhn": 26_032}


def plan_suite(
    suite: Suite,
    ov: Overrides | None = None,
    revision: str | bool | None = True,
    code: str | bool | None = True,
) -> Plan:
    """The suite's ``[grid]`` expanded into jobs, with the command line's overrides applied to each."""
    if suite.grid is None:
        raise UsageError(f"suite {suite.name} has no [grid]: it lists models (use bench run)")
    ov = ov or Overrides()
    base = suite.path.parent
    grid = dict(suite.grid)
    if isinstance(grid.get("dataset"), str):
        grid["dataset"] = _rel(grid["dataset"], base)
    elif isinstance(grid.get("dataset"), list):
        grid["dataset"] = [_rel(d, base) if isinstance(d, str) else d for d in grid["dataset"]]
    if "train" in grid and isinstance(grid["train"], dict) and "test_data" in grid["train"]:
        grid["train"] = {**grid["train"], "test_data": _rel(str(grid["train"]["test_data"]), base)}
    cfg = battery_config(suite, ov)
    data, ood = _eval_data(suite, ov)
    eval_data: dict[str, Any] = {
        "id": data,
        "ood": ood,
        "root": ov.data_root or suite.data.get("root"),
        "download": ov.download or bool(suite.data.get("download", False)),
    }
    battery = dict(suite.battery)
    if ov.limit is not None:
        battery["limit"] = ov.limit
    extra: dict[str, Any] = {}
    if ov.epochs is not None:
        extra["epochs"] = ov.epochs
    if ov.limit_train is not None:
        extra["limit_train"] = ov.limit_train
    if ov.train_data is not None:
        extra["dataset"] = ov.train_data
    if ov.test_data is not None:
        extra["test_data"] = ov.test_data
    return expand(
        grid,
        suite=suite.name,
        eval_data=eval_data,
        battery=battery,
        battery_identity=cfg.identity(),
        where=f"{suite.path} [grid]",
        train_extra=extra,
        revision=revision,
        code=code,
    )


@dataclass(frozen=True)
class NetCost:
    """One distinct network of a plan: its FLOPs per image (forward) and, when measured, seconds per image
    of a training step on the device."""

    arch: str
    arch_kwargs: dict[str, Any]
    dataset: str
    params: int
    flops_per_image: int
    train_s_per_image: float | None = None


@dataclass(frozen=True)
class CostEstimate:
    """What a plan costs: jobs, epochs, FLOPs (train and battery), and hours where measured."""

    jobs: int
    epochs: int
    train_flops: float
    eval_flops: float
    nets: tuple[NetCost, ...]
    train_hours: float | None
    device: str | None

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"{self.jobs} jobs, {self.epochs} training epochs in all",
            f"training ~{self.train_flops / 1e15:.3g} PFLOP, battery ~{self.eval_flops / 1e15:.3g} PFLOP "
            "(counted: forward FLOPs per image x images x passes)",
        ]
        for n in self.nets:
            kw = ",".join(f"{k}={v}" for k, v in n.arch_kwargs.items())
            timed = f", {n.train_s_per_image * 1e3:.3g} ms/img train step" if n.train_s_per_image else ""
            out.append(
                f"  {n.arch}{'(' + kw + ')' if kw else ''} on {n.dataset}: {n.params:,} params, "
                f"{n.flops_per_image / 1e6:.3g} MFLOP/img{timed}"
            )
        if self.train_hours is not None:
            out.append(
                f"estimated training time: {self.train_hours:.3g} {self.device} hours "
                "(measured step time x epochs x images; evaluation not included)"
            )
        else:
            out.append("no time estimate (pass --measure to time a few training steps on this device)")
        return out


def _sizes(spec: str, limit_train: int | None) -> tuple[int, int]:
    """(training images, test images) of a dataset spec; read from disk for anything not registered."""
    from evalsuite.data import load_dataset

    name = spec.partition(":")[0] if ":" in spec else spec
    if name in TRAIN_SIZES:
        n_train, n_test = TRAIN_SIZES[name], TEST_SIZES[name]
    else:
        n_train, n_test = len(load_dataset(spec, "train")), len(load_dataset(spec, "test"))
    return (min(n_train, limit_train) if limit_train else n_train), n_test


def estimate(plan: Plan, measure: bool = False, device: str = "auto") -> CostEstimate:
    """Count the plan's cost (see the module docstring); ``measure`` times training steps on ``device``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from evalsuite.core.device import pick_device
    from evalsuite.models.zoo import create_model
    from evalsuite.train.datainfo import dataset_info
    from evalsuite.train.recipe import default_arch

    dev = pick_device(device)
    nets: dict[str, NetCost] = {}
    train_flops = eval_flops = 0.0
    hours = 0.0
    for job in plan.jobs:
        t = job.train
        dataset = str(t["dataset"])
        arch = t.get("arch") or default_arch(dataset)
        kw = dict(t.get("arch_kwargs", {}))
        key = repr((arch, sorted(kw.items()), dataset))
        if key not in nets:
            info = dataset_info(dataset)
            model = create_model(arch, info.num_classes, info.mean, info.std, info.input_shape[0], **kw)
            model.eval()
            x = torch.zeros(1, *info.input_shape)
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model(x)
            per_s = _time_steps(model, info.input_shape, info.num_classes, dev) if measure else None
            nets[key] = NetCost(
                arch=arch,
                arch_kwargs=kw,
                dataset=dataset,
                params=sum(p.numel() for p in model.parameters()),
                flops_per_image=int(counter.get_total_flops()),
                train_s_per_image=per_s,
            )
        net = nets[key]
        n_train, n_test = _sizes(dataset, t.get("limit_train"))
        epochs = int(job.identity["train"]["recipe"]["epochs"])
        train_flops += 3.0 * net.flops_per_image * n_train * epochs
        limit = job.battery.get("limit")
        n_eval = min(n_test, int(limit)) if limit else n_test
        steps = _attack_passes(job.battery)
        n_ood = len(job.eval.get("ood") or ()) or 2
        eval_flops += net.flops_per_image * n_eval * (1 + n_ood + 3 * steps)
        if net.train_s_per_image is not None:
            hours += net.train_s_per_image * n_train * epochs / 3600.0
    return CostEstimate(
        jobs=len(plan.jobs),
        epochs=count_epochs(plan),
        train_flops=train_flops,
        eval_flops=eval_flops,
        nets=tuple(nets.values()),
        train_hours=hours if measure else None,
        device=str(dev) if measure else None,
    )


def count_epochs(plan: Plan) -> int:
    """Total training epochs of the plan (each job's resolved recipe)."""
    return sum(int(j.identity["train"]["recipe"]["epochs"]) for j in plan.jobs)


def _attack_passes(battery: dict[str, Any]) -> int:
    """Forward+backward passes per image that the battery's attacks make (PGD steps x restarts per eps,
    one for FGSM); the battery's defaults when the suite does not set them."""
    from evalsuite.battery import BatteryConfig

    cfg = BatteryConfig(
        **{
            k: v
            for k, v in {
                "checks": battery.get("checks"),
                "attacks": battery.get("attacks"),
                "pgd_steps": battery.get("pgd_steps"),
                "pgd_restarts": battery.get("pgd_restarts"),
            }.items()
            if v is not None
        }
    )
    if "robust" not in cfg.checks:
        return 0
    return sum(max(1, c.steps) * max(1, c.restarts) for c in cfg.attack_configs())


def _time_steps(model: Any, shape: tuple[int, ...], classes: int, device: Any, batch: int = 128) -> float:
    """Seconds per image of a training step (forward, backward, SGD) on ``device``, median of 5 after
    2 warm-up steps."""
    import torch
    import torch.nn.functional as F

    model = model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, *shape, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    times = []
    for i in range(7):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] / batch


def axis_summary(plan: Plan) -> list[str]:
    """One line per axis: its values and how many jobs take each."""
    out = []
    names: list[str] = []
    for j in plan.jobs:
        names.extend(k for k in j.axes if k not in names)
    for name in names:
        counts = Counter(repr(j.axes.get(name)) for j in plan.jobs)
        vals = ", ".join(f"{v} ({n})" for v, n in counts.items())
        out.append(f"  {name}: {vals}")
    dense = sum(1 for j in plan.jobs if j.dense)
    out.append(f"  dense twins: {dense}; sparse jobs: {len(plan.jobs) - dense}")
    return out
