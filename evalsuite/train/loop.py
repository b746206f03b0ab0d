"""Dense and masked training, one loop for both.

A dense and a sparse run with the same seed are a paired experiment: the same initial weights (the
weight-init stream is ``torch.manual_seed(seed)``; masks come from their own generator afterwards)
and the same data order and augmentation (each epoch's permutation and crops come from generators
seeded by ``(seed, epoch)``, never from a stream carried across epochs). That also makes ``--resume``
exact: restoring weights, optimizer and scheduler at an epoch boundary is all the state there is.

Under ``torchrun`` each rank takes every ``world_size``-th example of the epoch's permutation and the
per-rank batch is ``batch_size / world_size``; gradients are averaged by DDP before they are masked.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.core.device import device_name, pick_device
from evalsuite.core.errors import CheckpointError, DataError, UsageError
from evalsuite.core.provenance import provenance
from evalsuite.data import ImageSet, load_dataset, stratified_subset, to_float_images
from evalsuite.models.checkpoint import (
    ModelCard,
    checkpoint_payload,
    load_checkpoint,
    safe_load,
    save_checkpoint,
    save_payload,
)
from evalsuite.models.zoo import create_model
from evalsuite.sparsity import MaskedParameters, SchemeContext, check_density, prune_at_init
from evalsuite.sparsity.schemes import DATA_SCHEMES, needs_data
from evalsuite.train.augment import random_crop_flip
from evalsuite.train.datainfo import DatasetInfo, dataset_info
from evalsuite.train.recipe import Recipe, default_arch, resolve_recipe

log = logging.getLogger(__name__)

RESUME_FORMAT = "evalsuite-resume"


@dataclass(frozen=True)
class InitSpec:
    """What fixes a network at initialization: architecture, sparsity and seeds."""

    dataset: str
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    scheme: str = "dense"
    density: float = 1.0
    seed: int = 0
    mask_seed: int | None = None
    data_root: str | None = None
    download: bool = False

    def resolved_arch(self) -> str:
        """``arch``, or the dataset's default architecture when it is None."""
        return self.arch or default_arch(self.dataset)


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator for one (seed, epoch, stream): 0 = data order, 1 = augmentation."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _scheme_batch(train: ImageSet, mask_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten examples per class, seeded by the mask seed, as GraSP's code samples them."""
    sub = stratified_subset(train, min(len(train), 10 * train.num_classes), seed=mask_seed)
    return sub.images(), sub.y


def _scheme_train_set(spec: InitSpec, scheme: str) -> ImageSet:
    try:
        return load_dataset(spec.dataset, "train", spec.data_root, spec.download)
    except DataError as e:
        raise DataError(
            f"--sparse-init {scheme}: SNIP/GraSP ratios need the training data (--data-root/--download): {e}"
        ) from e


def init_model(
    spec: InitSpec, train: ImageSet | None = None
) -> tuple[nn.Module, ModelCard, dict[str, torch.Tensor]]:
    """Build the randomly pruned network at initialization (or its dense twin at density 1).

    ``train`` is read only by the data-driven schemes (snip, grasp); every other scheme needs the
    dataset's metadata alone, so no image is loaded for cifar10/cifar100/svhn when ``train`` is None.
    """
    density = check_density(spec.density)
    scheme = "dense" if density == 1.0 else spec.scheme
    if scheme == "dense" and density != 1.0:
        raise UsageError(f"--sparse-init dense keeps every weight; got --density {density}")
    arch = spec.resolved_arch()
    if needs_data(scheme) and train is None:
        train = _scheme_train_set(spec, scheme)
    info = (
        DatasetInfo.of(train)
        if train is not None
        else dataset_info(spec.dataset, spec.data_root, spec.download)
    )
    mask_seed = spec.seed if spec.mask_seed is None else spec.mask_seed
    torch.manual_seed(spec.seed)
    model = create_model(arch, info.num_classes, info.mean, info.std, info.input_shape[0], **spec.arch_kwargs)
    ctx = None
    if scheme in DATA_SCHEMES:
        assert train is not None
        # score a copy, so the scoring pass does not touch the BN statistics of the paired init
        ctx = SchemeContext(model=copy.deepcopy(model), batch=_scheme_batch(train, mask_seed))
    example = torch.zeros(1, *info.input_shape)
    rng = torch.get_rng_state()
    plan = prune_at_init(model, example, scheme, density, mask_seed, ctx)
    torch.set_rng_state(rng)  # scoring (snip, grasp) must not shift the global stream of the paired twin
    sparsity = plan.card()
    if spec.scheme != scheme:
        sparsity["requested_scheme"] = spec.scheme
    card = ModelCard(
        arch=arch,
        arch_kwargs=dict(spec.arch_kwargs),
        num_classes=info.num_classes,
        input_shape=info.input_shape,
        mean=tuple(info.mean),
        std=tuple(info.std),
        dataset=spec.dataset,
        sparsity=sparsity,
        seed=spec.seed,
        provenance=provenance(device="cpu"),
    )
    masks = {k: v for k, v in plan.masks.items() if not bool(v.all())}
    return model, card, masks


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 512
) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy on ``data`` in eval mode."""
    was = model.training
    model.eval()
    correct = torch.zeros((), device=device)
    loss = torch.zeros((), device=device, dtype=torch.float64)
    for start in range(0, len(data), batch_size):
        x = data.images(slice(start, start + batch_size)).to(device)
        y = data.y[start : start + batch_size].to(device)
        logits = model(x).float()
        correct += (logits.argmax(1) == y).sum()
        loss += F.cross_entropy(logits, y, reduction="sum").double()
    model.train(was)
    n = len(data)
    return {"test_accuracy": float(correct) / n, "test_loss": float(loss) / n, "test_examples": n}


@dataclass
class TrainOptions:
    """How to run (not what is learned): device, precision, output paths, subsets, progress."""

    out: Path
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    resume: bool = False
    limit_train: int | None = None
    limit_test: int | None = None
    progress: bool = False
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None

    @property
    def log_path(self) -> Path:
        """The JSON-lines training log next to ``out``: ``<stem>.log.jsonl``."""
        return self.out.with_name(self.out.stem + ".log.jsonl")

    @property
    def resume_path(self) -> Path:
        """The resume file next to ``out``: ``<stem>.resume.pt``."""
        return self.out.with_name(self.out.stem + ".resume.pt")


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def maybe_init_distributed(device: torch.device) -> None:
    """Join the process group torchrun describes (WORLD_SIZE > 1); no-op otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def _same_job(a: ModelCard, b: ModelCard, where: Path) -> None:
    for key in ("arch", "num_classes", "dataset", "input_shape", "seed"):
        if getattr(a, key) != getattr(b, key):
            raise CheckpointError(
                f"{where}: resume state is for {key}={getattr(b, key)!r}, this run has {getattr(a, key)!r}"
            )
    if a.sparsity.get("mask_hash") != b.sparsity.get("mask_hash"):
        raise CheckpointError(
            f"{where}: resume state has different masks (sparsity scheme, density or mask seed)"
        )


def train_model(
    model: nn.Module,
    card: ModelCard,
    masks: dict[str, torch.Tensor],
    recipe: Recipe,
    opts: TrainOptions,
    train_set: ImageSet,
    test_set: ImageSet,
) -> ModelCard:
    """Train ``model`` (masked by ``masks``) with ``recipe``; write the checkpoint to ``opts.out``."""
    device = pick_device(opts.device)
    maybe_init_distributed(device)
    rank, world = _dist()
    if recipe.batch_size % world:
        raise UsageError(f"batch size {recipe.batch_size} is not divisible by the {world} processes")
    if train_set.num_classes != card.num_classes:
        raise UsageError(
            f"model has {card.num_classes} classes but {train_set.name} has {train_set.num_classes}"
        )
    expected = tuple(card.input_shape) if card.input_shape is not None else None
    if train_set.input_shape != expected:
        raise UsageError(f"model expects inputs {expected}, {train_set.name} has {train_set.input_shape}")
    if opts.limit_train:
        train_set = stratified_subset(train_set, opts.limit_train, seed=card.seed or 0)
    if opts.limit_test:
        test_set = stratified_subset(test_set, opts.limit_test, seed=0)
    use_amp = device.type == "cuda" if opts.amp is None else opts.amp
    channels_last = device.type == "cuda" if opts.channels_last is None else opts.channels_last

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    masked = MaskedParameters(model, masks)
    masked.apply()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(
        params,
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(recipe.milestones), gamma=recipe.gamma)
    if rank == 0:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
    start_epoch = 0
    if opts.resume:
        start_epoch = _load_resume(opts.resume_path, model, card, opt, sched, recipe)
        masked.apply()
    elif rank == 0 and opts.log_path.exists():
        opts.log_path.unlink()

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    x_all = train_set.x.to(device)
    y_all = train_set.y.to(device)
    n = len(train_set)
    per_rank = recipe.batch_size // world
    seed = card.seed or 0
    amp_dtype = torch.bfloat16
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.perf_counter()
        net.train()
        # layers that draw from the global RNG (dropout) get a per-(seed, epoch, rank) stream too
        torch.manual_seed(epoch_generator(seed, epoch, 1000 + rank).initial_seed())
        perm = torch.randperm(n, generator=epoch_generator(seed, epoch, 0))
        # every rank must take the same number of steps: drop the last n % world examples of the epoch
        perm = perm[: n - n % world][rank::world]
        aug_gen = epoch_generator(seed, epoch, 1 + rank)
        steps = math.ceil(len(perm) / per_rank)
        # a final batch of one breaks batch norm in training mode; fold it into the previous one
        if steps > 1 and len(perm) % per_rank == 1:
            steps -= 1
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        bar = _progress(opts.progress and rank == 0, steps, f"epoch {epoch + 1}/{recipe.epochs}")
        for step in range(steps):
            idx = perm[step * per_rank : (step + 1) * per_rank if step < steps - 1 else len(perm)].to(device)
            x = to_float_images(x_all[idx])
            y = y_all[idx]
            if recipe.augment == "crop_flip":
                x = random_crop_flip(x, recipe.crop_padding, aug_gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            masked.mask_grads()
            opt.step()
            masked.after_step(opt)
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == steps - 1:
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{float(correct) / seen:.3f}")
        if bar is not None:
            bar.close()
        if world > 1:
            # DDP broadcasts rank 0's buffers before each forward, so after the last step every rank holds BN
            # statistics updated by its own shard of the batch: all take rank 0's (the ones it saves)
            for buf in model.buffers():
                torch.distributed.broadcast(buf, src=0)
        lr = opt.param_groups[0]["lr"]
        sched.step()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": float(loss_sum) / max(seen, 1),
            "train_accuracy": float(correct) / max(seen, 1),
        }
        record.update(evaluate_accuracy(model, test_set, device))
        record["seconds"] = round(time.perf_counter() - t0, 3)
        if rank == 0:
            with open(opts.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            save_payload(
                opts.resume_path,
                checkpoint_payload(
                    model,
                    card,
                    masks,
                    resume={
                        "format": RESUME_FORMAT,
                        "epoch": epoch + 1,
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "recipe": recipe.to_dict(),
                    },
                ),
            )
            if opts.progress:
                log.info(
                    "epoch %d: loss %.4f train acc %.4f test acc %.4f",
                    epoch + 1,
                    record["train_loss"],
                    record["train_accuracy"],
                    record["test_accuracy"],
                )
        if opts.on_epoch_end is not None:
            opts.on_epoch_end(epoch + 1, record)

    final: dict[str, Any] = evaluate_accuracy(model, test_set, device)
    if test_set.subset:
        final["test_subset"] = test_set.subset
    if train_set.subset:
        final["train_subset"] = train_set.subset
    card.recipe = recipe.to_dict()
    card.metrics = final
    card.provenance = provenance(
        device=device_name(device),
        amp=bool(use_amp),
        channels_last=bool(channels_last),
        world_size=world,
    )
    model.to("cpu").to(memory_format=torch.contiguous_format)
    if rank == 0:
        save_checkpoint(opts.out, model, card, masks)
        opts.resume_path.unlink(missing_ok=True)
    return card


def _load_resume(
    path: Path,
    model: nn.Module,
    card: ModelCard,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    recipe: Recipe,
) -> int:
    if not path.exists():
        raise CheckpointError(
            f"--resume: no resume state at {path} (the run finished, or never completed an epoch)"
        )
    obj = safe_load(path)
    state = obj.get("resume") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path}: not an evalsuite resume state")
    saved = ModelCard.from_dict(obj["card"])
    _same_job(card, saved, path)
    if state.get("recipe") != recipe.to_dict():
        old, new = state.get("recipe") or {}, recipe.to_dict()
        diff = ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(new) if old.get(k) != new.get(k))
        raise CheckpointError(
            f"{path}: the run was started with another recipe ({diff}); resume with the same flags"
        )
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in obj["state_dict"].items()})
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    log.info("resuming from %s after epoch %d", path, state["epoch"])
    return int(state["epoch"])


def _progress(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


@dataclass(frozen=True)
class TrainJob:
    """``evalsuite train``: either an InitSpec (build and prune) or a ``from_init`` checkpoint."""

    init: InitSpec | None
    recipe_overrides: dict[str, Any]
    options: TrainOptions
    from_init: Path | None = None
    trust_checkpoint: bool = False
    test_data: str | None = None
    data_root: str | None = None
    download: bool = False


def run_training(job: TrainJob) -> ModelCard:
    """Build (or load) the initialized network, train it, write the checkpoint; returns its card."""
    model: nn.Module
    if job.from_init is not None:
        model, card, masks = load_checkpoint(job.from_init, trust=job.trust_checkpoint)
        dataset = card.dataset
        if job.init is not None and job.init.dataset not in (None, "", dataset):
            raise UsageError(f"--from {job.from_init} was initialized for {dataset}, not {job.init.dataset}")
        root = job.init.data_root if job.init else job.data_root
        download = job.init.download if job.init else job.download
        train_set = load_dataset(dataset, "train", root, download)
    elif job.init is not None:
        dataset = job.init.dataset
        train_set = load_dataset(dataset, "train", job.init.data_root, job.init.download)
        model, card, masks = init_model(job.init, train_set)
        root, download = job.init.data_root, job.init.download
    else:
        raise UsageError("train needs --dataset (with --arch etc.) or --from INIT.pt")
    test_set = load_dataset(job.test_data or dataset, "test", root, download)
    recipe, note = resolve_recipe(dataset, job.recipe_overrides)
    if note:
        log.info("%s", note)
    return train_model(model, card, masks, recipe, job.options, train_set, test_set)
