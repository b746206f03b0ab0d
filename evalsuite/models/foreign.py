"""Load any model file: evalsuite checkpoints, foreign state_dicts, TorchScript, torch.export, pickles.

``load_any_model`` returns a ``LoadedModel``: an eval-mode ``nn.Module`` taking [0, 1] images, a ``ModelCard``
(fields the file does not tell are None, dataset ``'unknown'``), boolean masks keyed by the returned model's
parameter names, the detected format, the file's sha256, the normalization applied and where it came from,
and a list of notes on what was inferred.

Normalization is never guessed. A model that carries its own (evalsuite checkpoints, state_dicts with
``normalize.*`` buffers, ``NormalizedModel``) keeps it (source ``checkpoint``). Any other file model gets,
in this order: the given ``mean``/``std``, none with ``normalize=False``, the caller's ``fallback`` (a named
dataset's standard statistics), else a UsageError listing the three choices. An in-memory module takes
[0, 1] images unless the caller gives ``mean``/``std``.

Safe by default: pickles are read with ``weights_only=True``. TorchScript and torch.export archives can run
code when loaded (torch.export rebuilds shapes with ``sympy.sympify``, i.e. ``eval``, and resolves operator
names by attribute lookup; torch itself refuses TorchScript under ``weights_only=True``), so both need
``trust=True`` (``--trust-checkpoint``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import types
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evalsuite.core.errors import CheckpointError, UsageError
from evalsuite.core.io import sha256_file
from evalsuite.models.checkpoint import ModelCard, is_evalsuite_checkpoint, model_from_payload, safe_load
from evalsuite.models.normalize import NormalizedModel
from evalsuite.models.zoo import MODELS

SOURCE_FORMATS = ("evalsuite", "state_dict", "torchscript", "export", "module")
NORM_FROM_CHECKPOINT = "checkpoint"
NORM_NONE = "none (model takes [0,1])"
NORM_GIVEN = "--mean/--std"
NORM_CHOICES = (
    "pass --mean/--std (the model's training statistics), --no-normalize (it takes [0,1] images itself) "
    "or --norm-stats DATASET (a dataset's standard statistics, e.g. cifar10)"
)
Fallback = tuple[tuple[float, ...], tuple[float, ...], str]
"""(mean, std, source): statistics to apply when the caller gave none and the model needs some."""
NESTING_KEYS = ("state_dict", "model", "net")
_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_PRUNABLE_NAMES = {"Conv1d", "Conv2d", "Conv3d", "Linear"}
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


@dataclass
class LoadedModel:
    """A model ready for evaluation and what is known about it."""

    model: nn.Module
    card: ModelCard
    masks: dict[str, torch.Tensor]
    source_format: str
    sha256: str | None
    notes: list[str] = field(default_factory=list)
    normalization: dict[str, Any] = field(default_factory=dict)
    """{"mean": [...] | None, "std": [...] | None, "source": one of checkpoint, --mean/--std,
    dataset:<name> standard statistics, none (model takes [0,1])}"""


def norm_record(mean: Sequence[float] | None, std: Sequence[float] | None, source: str) -> dict[str, Any]:
    """The ``normalization`` record: mean and std as float lists (or None) and their source."""
    return {
        "mean": [float(v) for v in mean] if mean is not None else None,
        "std": [float(v) for v in std] if std is not None else None,
        "source": source,
    }


def load_any_model(
    path_or_module: str | os.PathLike[str] | nn.Module,
    *,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    normalize: bool = True,
    trust: bool = False,
    norm_source: str = NORM_GIVEN,
    fallback: Fallback | None = None,
) -> LoadedModel:
    """Load a model file (or wrap an in-memory module) for evaluation on [0, 1] images [B, C, H, W].

    ``arch`` is needed only for bare state_dicts: a zoo name or user code ``file.py:callable`` /
    ``package.module:callable`` called as ``callable(**arch_kwargs)``. A model without its own normalization
    is wrapped in ``NormalizedModel(mean, std)`` (recorded with ``norm_source``), or in the ``fallback``
    statistics when no mean/std are given; ``normalize=False`` means it already takes [0, 1] images.
    ``trust=True`` allows arbitrary unpickling (full pickled modules); never use it on untrusted files.
    """
    ctx = _Ctx(
        arch=arch,
        arch_kwargs=dict(arch_kwargs or {}),
        num_classes=num_classes,
        input_shape=tuple(int(s) for s in input_shape) if input_shape is not None else None,
        mean=tuple(float(v) for v in mean) if mean is not None else None,
        std=tuple(float(v) for v in std) if std is not None else None,
        normalize=normalize,
        trust=trust,
        norm_source=norm_source,
        fallback=fallback,
    )
    if (ctx.mean is None) != (ctx.std is None):
        raise UsageError("pass both mean and std, or neither")
    if ctx.mean is not None and not normalize:
        raise UsageError("give mean/std or normalize=False (--no-normalize), not both")
    if isinstance(path_or_module, nn.Module):
        ctx.notes.append("given an in-memory module")
        if ctx.mean is None:
            # the house convention: a module handed over in Python takes [0, 1] images
            ctx.normalize = False
            ctx.fallback = None
        return _from_module(path_or_module, ctx, "module", None, where="<module>")

    path = Path(path_or_module)
    _check_file(path)
    digest = sha256_file(path)
    kind = _sniff_archive(path)
    if kind == "torchscript":
        return _from_torchscript(path, ctx, digest)
    if kind == "export":
        return _from_export(path, ctx, digest)
    obj = safe_load(path, trust=trust)
    if is_evalsuite_checkpoint(obj):
        return _from_evalsuite(obj, path, ctx, digest)
    if isinstance(obj, nn.Module):
        return _from_module(obj, ctx, "module", digest, where=str(path))
    if isinstance(obj, Mapping):
        found = _find_state_dict(obj, ctx.notes, str(path))
        if isinstance(found, nn.Module):
            return _from_module(found, ctx, "module", digest, where=str(path))
        extras = {
            k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, int | float | str | bool)
        }
        return _from_state_dict(found, path, ctx, digest, extras)
    raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a model, state_dict or checkpoint")


# --------------------------------------------------------------------------------------------- context


@dataclass
class _Ctx:
    arch: str | None
    arch_kwargs: dict[str, Any]
    num_classes: int | None
    input_shape: tuple[int, ...] | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    normalize: bool
    trust: bool
    norm_source: str = NORM_GIVEN
    fallback: Fallback | None = None
    notes: list[str] = field(default_factory=list)

    def explicit_request(self) -> str | None:
        """What the caller asked for in words, if anything (the fallback is not a request)."""
        if self.mean is not None:
            return self.norm_source
        return None if self.normalize else "--no-normalize"


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line[:limit]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a model file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")


def _sniff_archive(path: Path) -> str | None:
    """'torchscript', 'export' or None (anything else goes to torch.load)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            # torch.export archives carry a one-word 'archive_format' file saying 'pt2'
            fmt = [n for n in names if n.split("/", 1)[-1] == "archive_format"]
            if fmt and zf.read(fmt[0]).decode("utf-8", "replace").strip() == "pt2":
                return "export"
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if any(n.endswith("/constants.pkl") or "/code/__torch__/" in n for n in names):
        return "torchscript"
    return None


# ----------------------------------------------------------------------------------------- the formats


def _from_evalsuite(obj: dict[str, Any], path: Path, ctx: _Ctx, digest: str) -> LoadedModel:
    model, card, masks = model_from_payload(obj, str(path))
    if ctx.arch is not None or ctx.arch_kwargs:
        ctx.notes.append(f"ignored arch: the evalsuite checkpoint says {card.arch!r}")
    _note_ignored(ctx, card.mean, card.std)
    return LoadedModel(
        model,
        card,
        masks,
        "evalsuite",
        digest,
        ctx.notes,
        norm_record(card.mean, card.std, NORM_FROM_CHECKPOINT),
    )


def _note_ignored(ctx: _Ctx, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
    """A model that carries its own normalization keeps it; say so when the caller asked for another."""
    asked = ctx.explicit_request()
    same = (
        ctx.mean is not None
        and tuple(ctx.mean) == tuple(mean or ())
        and tuple(ctx.std or ()) == tuple(std or ())
    )
    if asked is not None and not same:
        ctx.notes.append(f"ignored {asked}: the model carries its own normalization")


def _from_state_dict(
    sd: dict[str, torch.Tensor], path: Path, ctx: _Ctx, digest: str, extras: dict[str, Any]
) -> LoadedModel:
    where = str(path)
    sd = _strip_wrapper_prefixes(sd, ctx.notes)
    sd, masks = _fold_prune_masks(sd, ctx.notes)

    # a NormalizedModel state_dict carries its normalization; the net inside is what we build
    stored_norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    if "normalize.mean" in sd and "normalize.std" in sd:
        stored_norm = (
            tuple(float(v) for v in sd.pop("normalize.mean").flatten()),
            tuple(float(v) for v in sd.pop("normalize.std").flatten()),
        )
    if ctx.arch is None:
        raise UsageError(
            f"{where}: a bare state_dict needs an architecture: pass arch (a zoo name, file.py:callable "
            "or package.module:callable)"
        )
    net, num_classes, in_channels = _build_arch(ctx, sd, where)
    sd, masks = _match_keys(net, sd, masks, ctx.notes, stored_norm is not None)
    _load_strict(net, sd, where, ctx.arch)

    if not masks:
        masks = _zero_masks(net, _prunable_names(net))
        if masks:
            ctx.notes.append(f"mask read from exact zeros in {len(masks)} layers")
    if stored_norm is not None:
        ctx.notes.append("normalization read from the state_dict's normalize buffers")
        _note_ignored(ctx, *stored_norm)
        mean: tuple[float, ...] | None
        std: tuple[float, ...] | None
        mean, std = stored_norm
        model: nn.Module = _wrap(net, mean, std)
        record = norm_record(mean, std, NORM_FROM_CHECKPOINT)
    else:
        model, record = _apply_norm(net, ctx, where)
        mean, std = _tuple(record["mean"]), _tuple(record["std"])
    prefix = "net." if isinstance(model, NormalizedModel) else ""
    masks = {prefix + k: v for k, v in masks.items()}
    model.eval()
    shape = ctx.input_shape
    card = _card(
        ctx.arch,
        num_classes if num_classes is not None else ctx.num_classes,
        shape,
        mean,
        std,
        ctx.arch_kwargs,
        masks,
        _prunable_names(model),
        model,
        {"source_format": "state_dict", "source_path": where, "sha256": digest, "checkpoint_extras": extras},
    )
    if in_channels is not None and shape is None:
        ctx.notes.append(f"built with in_channels={in_channels}")
    return LoadedModel(model, card, masks, "state_dict", digest, ctx.notes, record)


def _from_module(
    module: nn.Module, ctx: _Ctx, source: str, digest: str | None, where: str, arch_name: str | None = None
) -> LoadedModel:
    """A ready module (pickled, TorchScript or exported): masks from zeros, optional normalization."""
    if ctx.arch is not None:
        ctx.notes.append(f"ignored arch {ctx.arch!r}: the file holds the whole model")
    prunable = _prunable_names(module)
    masks = _zero_masks(module, prunable)
    if masks:
        ctx.notes.append(f"mask read from exact zeros in {len(masks)} layers")
    name = arch_name or type(module).__name__
    model: nn.Module = module
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    if isinstance(module, NormalizedModel):
        mean = tuple(float(v) for v in module.normalize.mean.flatten())
        std = tuple(float(v) for v in module.normalize.std.flatten())
        ctx.notes.append("already a NormalizedModel: kept its own mean/std")
        _note_ignored(ctx, mean, std)
        name = arch_name or type(module.net).__name__
        record = norm_record(mean, std, NORM_FROM_CHECKPOINT)
    else:
        model, record = _apply_norm(module, ctx, where)
        mean, std = _tuple(record["mean"]), _tuple(record["std"])
        if model is not module:
            masks = {"net." + k: v for k, v in masks.items()}
            prunable = ["net." + k for k in prunable]
    model.eval()
    classes = ctx.num_classes if ctx.num_classes is not None else _last_linear_out(model.named_parameters())
    card = _card(
        name,
        classes,
        ctx.input_shape,
        mean,
        std,
        ctx.arch_kwargs if ctx.arch is None else {},
        masks,
        prunable,
        model,
        {"source_format": source, "source_path": where, "sha256": digest},
    )
    return LoadedModel(model, card, masks, source, digest, ctx.notes, record)


def _refuse_untrusted_archive(path: Path, kind: str, ctx: _Ctx) -> None:
    if not ctx.trust:
        raise CheckpointError(
            f"{path}: {kind} archives can run code when loaded; "
            "if you trust this file, pass --trust-checkpoint"
        )


def _from_torchscript(path: Path, ctx: _Ctx, digest: str) -> LoadedModel:
    _refuse_untrusted_archive(path, "TorchScript", ctx)
    try:
        with warnings.catch_warnings():
            # torch deprecates TorchScript; the user's file is what it is
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # any failure of a corrupt archive is the user's file, not a bug
        raise CheckpointError(f"{path}: unreadable TorchScript archive ({_first_line(e)})") from None
    ctx.notes.append("TorchScript archive: architecture from the archive's code")
    name = getattr(module, "original_name", None) or "module"
    return _from_module(module, ctx, "torchscript", digest, str(path), arch_name=f"torchscript:{name}")


def _from_export(path: Path, ctx: _Ctx, digest: str) -> LoadedModel:
    _refuse_untrusted_archive(path, "torch.export", ctx)
    try:
        with _quiet("torch.export", "torch._export"), open(path, "rb") as f:
            ep = torch.export.load(f)
    except Exception as e:  # see _from_torchscript
        raise CheckpointError(f"{path}: unreadable torch.export archive ({_first_line(e)})") from None
    prunable = _export_prunable(ep)
    training_ops = _export_training_ops(ep)
    try:
        module = ep.module()
    except Exception as e:  # see _from_torchscript
        raise CheckpointError(
            f"{path}: torch.export archive has no runnable module ({_first_line(e)})"
        ) from None
    # the exported graph fixed train/eval behaviour at export time, and its module refuses .train()/.eval();
    # let the flags follow so wrappers can call .eval(), without pretending the graph changed
    module.train = types.MethodType(_flag_only_train, module)  # type: ignore[method-assign]
    module.eval = types.MethodType(lambda self: self.train(False), module)  # type: ignore[method-assign]
    ctx.notes.append("torch.export archive: architecture from the exported graph")
    if training_ops:
        ctx.notes.append(
            f"exported in training mode ({', '.join(sorted(training_ops))}): batch statistics used"
        )
    loaded = _from_module(module, ctx, "export", digest, str(path), arch_name="export")
    if prunable is not None:
        # only weights that feed a conv/linear op in the graph are prunable; the name heuristic may overreach
        prefix = "net." if isinstance(loaded.model, NormalizedModel) and module is not loaded.model else ""
        keep = {prefix + n for n in prunable}
        loaded.masks = {k: v for k, v in loaded.masks.items() if k in keep}
    return loaded


def _flag_only_train(self: nn.Module, mode: bool = True) -> nn.Module:
    for m in self.modules():
        m.training = mode
    return self


# ---------------------------------------------------------------------------------- state_dict handling


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _find_state_dict(
    obj: Mapping[str, Any], notes: list[str], where: str, depth: int = 0
) -> dict[str, torch.Tensor] | nn.Module:
    """The state_dict inside ``obj``: itself, or under 'state_dict'/'model'/'net', nested at most twice."""
    if _is_tensor_dict(obj):
        return dict(obj)
    if depth < 2:
        for key in NESTING_KEYS:
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                notes.append(f"pickled module found under {key!r}")
                return inner
            if isinstance(inner, Mapping):
                with contextlib.suppress(CheckpointError):
                    found = _find_state_dict(inner, notes, where, depth + 1)
                    notes.insert(0, f"state_dict found under {key!r}")
                    return found
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if depth == 0 and tensors:
        dropped = sorted(str(k) for k in obj if k not in tensors)
        notes.append(f"ignored non-tensor entries {dropped[:5]}")
        return tensors
    raise CheckpointError(
        f"{where}: no state_dict found (top-level keys: {', '.join(map(str, list(obj)[:8]))}; "
        f"looked under {', '.join(NESTING_KEYS)})"
    )


def _strip_wrapper_prefixes(sd: dict[str, torch.Tensor], notes: list[str]) -> dict[str, torch.Tensor]:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix) :]: v for k, v in sd.items()}
                notes.append(f"stripped {prefix!r} prefix")
                changed = True
    return sd


def _fold_prune_masks(
    sd: dict[str, torch.Tensor], notes: list[str]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """torch.nn.utils.prune stores ``x_orig`` and ``x_mask``: fold ``x = x_orig * x_mask``, keep the mask."""
    out = dict(sd)
    masks: dict[str, torch.Tensor] = {}
    for key in sd:
        if not key.endswith("_orig"):
            continue
        base = key[: -len("_orig")]
        mask_key = base + "_mask"
        if mask_key not in sd or base in sd:
            continue
        orig, mask = sd[key], sd[mask_key]
        if orig.shape != mask.shape:
            raise CheckpointError(
                f"prune mask {mask_key!r} has shape {tuple(mask.shape)}, weight {tuple(orig.shape)}"
            )
        out[base] = orig * mask.to(orig.dtype)
        masks[base] = mask.bool()
        del out[key], out[mask_key]
    if masks:
        notes.append(f"folded {len(masks)} torch.nn.utils.prune masks")
    return out, masks


def _match_keys(
    net: nn.Module,
    sd: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    notes: list[str],
    from_wrapper: bool,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Strip the NormalizedModel 'net.' prefix when the keys are a wrapper's and the arch is bare."""
    expected = set(net.state_dict())
    if set(sd) <= expected or not all(k.startswith("net.") for k in sd):
        return sd, masks
    stripped = {k[4:]: v for k, v in sd.items()}
    if len(set(stripped) & expected) > len(set(sd) & expected):
        if not from_wrapper:
            notes.append("stripped 'net.' prefix (a NormalizedModel state_dict)")
        return stripped, {k[4:] if k.startswith("net.") else k: v for k, v in masks.items()}
    return sd, masks


def _load_strict(net: nn.Module, sd: dict[str, torch.Tensor], where: str, arch: str | None) -> None:
    expected = net.state_dict()
    # BatchNorm fills a missing num_batches_tracked itself (old checkpoints lack it)
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [k for k in sd if k in expected and tuple(sd[k].shape) != tuple(expected[k].shape)]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
    if problems:
        hint = _shortcut_hint(missing, unexpected, mismatched)
        raise CheckpointError(f"{where}: weights do not fit arch {arch!r}: {'; '.join(problems)}{hint}")
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        msg = " ".join(str(e).split())
        raise CheckpointError(f"{where}: weights do not fit arch {arch!r} ({msg[:300]})") from None


def _shortcut_hint(missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str]) -> str:
    """CIFAR ResNets come with parameter-free (A) or 1x1-conv (B) shortcuts; the keys tell which fits."""

    def has(keys: Sequence[str]) -> bool:
        return any("shortcut" in k.split(".") for k in keys)

    if has(missing) and not has(unexpected):
        return """; the file has no shortcut weights: try --arch-kwargs '{"shortcut": "A"}'"""
    if has(unexpected) and not has(missing):
        return """; the file has 1x1-conv shortcuts: try --arch-kwargs '{"shortcut": "B"}'"""
    if has(missing) or has(unexpected) or has(mismatched):
        return '; shortcut weights differ: try --arch-kwargs \'{"shortcut": "A"}\' (parameter-free) or "B"'
    return ""


# --------------------------------------------------------------------------------------- architectures


def _build_arch(
    ctx: _Ctx, sd: Mapping[str, torch.Tensor], where: str
) -> tuple[nn.Module, int | None, int | None]:
    """(bare network, num_classes if known, in_channels passed to a zoo factory)."""
    assert ctx.arch is not None
    kwargs = dict(ctx.arch_kwargs)
    if ":" in ctx.arch:
        factory = _import_callable(ctx.arch)
        try:
            net = factory(**kwargs)
        except Exception as e:  # user code: any failure is a usage problem, shown in one line
            raise UsageError(
                f"arch {ctx.arch!r}({kwargs}) failed: {type(e).__name__}: {_first_line(e)}"
            ) from None
        if not isinstance(net, nn.Module):
            raise UsageError(f"arch {ctx.arch!r} returned a {type(net).__name__}, not an nn.Module")
        classes = ctx.num_classes if ctx.num_classes is not None else _last_linear_out(sd.items())
        return net, classes, None

    factory = MODELS.get(ctx.arch)
    classes = kwargs.pop("num_classes", None) or ctx.num_classes
    if classes is None:
        classes = _last_linear_out(sd.items())
        if classes is None:
            raise UsageError(f"{where}: cannot infer num_classes for arch {ctx.arch!r}; pass num_classes")
        ctx.notes.append(f"num_classes={classes} inferred from the last linear weight")
    in_channels = kwargs.pop("in_channels", None)
    if in_channels is None:
        if ctx.input_shape is not None:
            in_channels = ctx.input_shape[0]
        elif ctx.mean is not None:
            in_channels = len(ctx.mean)
        else:
            in_channels = next((int(v.shape[1]) for v in sd.values() if v.ndim == 4), None)
            if in_channels is not None:
                ctx.notes.append(f"in_channels={in_channels} inferred from the first conv weight")
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    try:
        net = factory(num_classes=int(classes), **kwargs)
    except TypeError as e:
        raise UsageError(f"model {ctx.arch!r}: bad arguments {kwargs}: {e}") from None
    return net, int(classes), in_channels


def _import_callable(spec: str) -> Any:
    """``path/to/file.py:name`` or ``package.module:name`` -> the object."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise UsageError(f"arch {spec!r}: expected file.py:callable or package.module:callable")
    if target.endswith(".py") or "/" in target or os.sep in target:
        file = Path(target)
        if not file.is_file():
            raise UsageError(f"arch {spec!r}: no such file {file}")
        mod_name = f"evalsuite_user_arch_{abs(hash(str(file.resolve())))}"
        try:
            mod_spec = importlib.util.spec_from_file_location(mod_name, file)
            if mod_spec is None or mod_spec.loader is None:
                raise ImportError(f"cannot import {file}")
            module = importlib.util.module_from_spec(mod_spec)
            # registered so classes defined there can be found by name (dataclasses, pickling)
            sys.modules[mod_name] = module
            mod_spec.loader.exec_module(module)
        except BaseException as e:  # a SystemExit in user code must not end the run either
            sys.modules.pop(mod_name, None)
            if isinstance(e, KeyboardInterrupt):
                raise
            raise UsageError(
                f"arch {spec!r}: importing {file} failed: {type(e).__name__}: {_first_line(e)}"
            ) from None
    else:
        try:
            module = importlib.import_module(target)
        except BaseException as e:  # as for a file above
            if isinstance(e, KeyboardInterrupt):
                raise
            raise UsageError(
                f"arch {spec!r}: importing {target} failed: {type(e).__name__}: {_first_line(e)}"
            ) from None
    obj = getattr(module, name, None)
    if obj is None or not callable(obj):
        own = sorted(
            n
            for n, v in vars(module).items()
            if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        )
        raise UsageError(
            f"arch {spec!r}: {target} has no callable {name!r} (available: {', '.join(own) or 'none'})"
        )
    return obj


def _apply_norm(net: nn.Module, ctx: _Ctx, where: str) -> tuple[nn.Module, dict[str, Any]]:
    """Wrap a model without its own normalization: given mean/std, else none, else the fallback."""
    if ctx.mean is not None and ctx.std is not None:
        return _wrap(net, ctx.mean, ctx.std), norm_record(ctx.mean, ctx.std, ctx.norm_source)
    if not ctx.normalize:
        return net, norm_record(None, None, NORM_NONE)
    if ctx.fallback is not None:
        mean, std, source = ctx.fallback
        return _wrap(net, mean, std), norm_record(mean, std, source)
    raise UsageError(f"{where}: the model's input normalization is unknown: {NORM_CHOICES}")


def _tuple(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return tuple(values) if values is not None else None


def _wrap(net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> NormalizedModel:
    try:
        return NormalizedModel(net, mean, std)
    except ValueError as e:
        raise UsageError(f"bad normalization: {e}") from None


# ------------------------------------------------------------------------------------------------ masks


def _prunable_names(model: nn.Module) -> list[str]:
    """Conv and linear weights by module type; TorchScript modules keep the type as ``original_name``."""
    names = []
    for prefix, mod in model.named_modules():
        kind = type(mod).__name__ if not isinstance(mod, torch.jit.ScriptModule) else mod.original_name
        if isinstance(mod, _PRUNABLE) or kind in _PRUNABLE_NAMES:
            w = getattr(mod, "weight", None)
            if isinstance(w, torch.Tensor):
                names.append(f"{prefix}.weight" if prefix else "weight")
    if not names and not any(isinstance(m, _PRUNABLE) for m in model.modules()):
        # exported graphs lose module types: matrices and kernels named *weight are the best guess
        names = [n for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2]
    return names


def _zero_masks(model: nn.Module, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """``param != 0`` for the named weights that hold at least one exact zero."""
    params = dict(model.named_parameters())
    masks = {}
    for n in names:
        p = params.get(n)
        if p is not None:
            m = p.detach() != 0
            if not bool(m.all()):
                masks[n] = m.cpu()
    return masks


def _last_linear_out(items: Iterator[tuple[str, torch.Tensor]] | Any) -> int | None:
    out = None
    for k, v in items:
        if k.endswith("weight") and v.ndim == 2:
            out = int(v.shape[0])
    return out


def _card(
    arch: str,
    num_classes: int | None,
    input_shape: tuple[int, ...] | None,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    arch_kwargs: dict[str, Any],
    masks: Mapping[str, torch.Tensor],
    prunable: Sequence[str],
    model: nn.Module,
    provenance: dict[str, Any],
) -> ModelCard:
    """A card with None where the file is silent (num_classes, input_shape, mean/std), dataset 'unknown'."""
    sparsity: dict[str, Any] = {}
    if masks:
        params = dict(model.named_parameters())
        names = [n for n in prunable if n in params] or list(masks)
        total = sum(params[n].numel() for n in names if n in params)
        kept = sum(int(masks[n].sum()) if n in masks else params[n].numel() for n in names if n in params)
        sparsity = {
            "scheme": "unknown",
            "realized_density": kept / total if total else None,
            "layers_masked": len(masks),
        }
    return ModelCard(
        arch=arch,
        num_classes=num_classes,
        input_shape=input_shape,
        mean=mean,
        std=std,
        dataset="unknown",
        arch_kwargs=dict(arch_kwargs),
        sparsity=sparsity,
        provenance=provenance,
    )


# ------------------------------------------------------------------------------------- torch.export


def _export_prunable(ep: Any) -> set[str] | None:
    """Parameter names that feed a conv or linear op as their weight, read from the exported graph."""
    try:
        to_param = dict(ep.graph_signature.inputs_to_parameters)
        names = set()
        for node in ep.graph.nodes:
            target = str(getattr(node, "target", ""))
            if node.op == "call_function" and ("conv" in target or "linear" in target) and len(node.args) > 1:
                w = node.args[1]
                if getattr(w, "name", None) in to_param:
                    names.add(to_param[w.name])
        return names
    except Exception:  # graph internals vary across torch versions; fall back to names
        return None


def _export_training_ops(ep: Any) -> set[str]:
    found = set()
    with contextlib.suppress(Exception):
        for node in ep.graph.nodes:
            target = str(getattr(node, "target", ""))
            if node.op != "call_function":
                continue
            if target.startswith("aten.batch_norm") and len(node.args) > 5 and node.args[5] is True:
                found.add("batch_norm")
            elif "dropout" in target and len(node.args) > 2 and node.args[2] is True:
                found.add("dropout")
            elif (
                "_native_batch_norm_legit_functional" in target
                or target == "aten._native_batch_norm_legit.default"
            ):
                found.add("batch_norm")
    return found


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """torch.export logs whole tracebacks on a failed load; our one-line error says it instead."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for lg, _ in saved:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)
