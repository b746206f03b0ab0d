"""evalsuite checkpoints: one file of plain data, loadable with ``torch.load(path, weights_only=True)``.

Layout (``format_version`` 1)::

    {
      "format": "evalsuite-checkpoint", "format_version": 1,
      "state_dict": {name: tensor},            # NormalizedModel keys: normalize.mean/std, net.*
      "masks": {param name: bool tensor},      # True = kept; empty for a dense model
      "card": {                                # everything else, plain Python data
        "arch": str, "arch_kwargs": dict, "num_classes": int, "input_shape": [C, H, W],
        "normalization": {"mean": [...], "std": [...]}, "dataset": str,
        "sparsity": {scheme, target_density, realized_density, mask_seed, mask_hash, layers: [...]},
        "recipe": dict | None, "seed": int | None, "metrics": dict, "provenance": dict,
      },
    }
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from evalsuite.core.errors import CheckpointError
from evalsuite.core.io import atomic_write
from evalsuite.models.normalize import NormalizedModel
from evalsuite.models.zoo import create_model

FORMAT = "evalsuite-checkpoint"
FORMAT_VERSION = 1


@dataclass
class ModelCard:
    """What a checkpoint says about its model. Plain data only.

    ``mean``/``std`` are None for a foreign model that takes [0, 1] images itself (``--no-normalize``).
    """

    arch: str
    num_classes: int | None
    input_shape: tuple[int, ...] | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    dataset: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    sparsity: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] | None = None
    seed: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The card as plain data, with mean/std under ``normalization``."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape) if self.input_shape is not None else None
        mean, std = d.pop("mean"), d.pop("std")
        d["normalization"] = {
            "mean": list(mean) if mean is not None else None,
            "std": list(std) if std is not None else None,
        }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        """Parse a card written by ``to_dict``; CheckpointError on missing or malformed fields."""
        try:
            norm = d["normalization"]
            return cls(
                arch=str(d["arch"]),
                num_classes=int(d["num_classes"]),
                input_shape=tuple(int(s) for s in d["input_shape"]),
                mean=tuple(float(v) for v in norm["mean"]),
                std=tuple(float(v) for v in norm["std"]),
                dataset=str(d["dataset"]),
                arch_kwargs=dict(d.get("arch_kwargs") or {}),
                sparsity=dict(d.get("sparsity") or {}),
                recipe=d.get("recipe"),
                seed=d.get("seed"),
                metrics=dict(d.get("metrics") or {}),
                provenance=dict(d.get("provenance") or {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint card is malformed ({type(e).__name__}: {e})") from None


def build_model(card: ModelCard) -> NormalizedModel:
    """Build the untrained, normalized zoo model that ``card`` describes."""
    if card.mean is None or card.std is None:
        raise CheckpointError("evalsuite checkpoint card lacks its normalization mean/std")
    # None only on cards of foreign models, which are never rebuilt from their card
    if card.num_classes is None or card.input_shape is None:
        raise CheckpointError("evalsuite checkpoint card lacks its num_classes/input_shape")
    return create_model(
        card.arch, card.num_classes, card.mean, card.std, card.input_shape[0], **card.arch_kwargs
    )


def checkpoint_payload(
    model: torch.nn.Module, card: ModelCard, masks: dict[str, torch.Tensor] | None = None, **extra: Any
) -> dict[str, Any]:
    """The dict saved as a checkpoint: format tags, CPU state_dict, bool masks, card and ``extra``."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "masks": {k: v.detach().cpu().bool() for k, v in (masks or {}).items()},
        "card": card.to_dict(),
        **extra,
    }


def save_payload(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Atomic ``torch.save``: a temporary file beside ``path``, then rename."""
    return atomic_write(path, lambda f: torch.save(payload, f))


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    card: ModelCard,
    masks: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save ``model``, ``card`` and ``masks`` as an evalsuite checkpoint at ``path``; return the path."""
    return save_payload(path, checkpoint_payload(model, card, masks))


def safe_load(path: str | os.PathLike[str], trust: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` unless the user trusts the file; one-line errors.

    A file that needs arbitrary unpickling is refused with a message naming ``--trust-checkpoint``.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder, not a checkpoint file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: file is empty")
    try:
        return torch.load(p, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        text = str(e)
        # the weights-only unpickler names the global it refused; anything else is a broken file
        refused = re.search(
            r"(?:unsupported GLOBAL|Unsupported global:?)\s+(?:GLOBAL\s+)?([\w.]+)", text, re.I
        )
        if refused:
            raise CheckpointError(
                f"{p}: refused to unpickle {refused.group(1)} (arbitrary code could run); "
                "if you trust this file, pass --trust-checkpoint"
            ) from None
        detail = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("Unsupported")), "")
        raise CheckpointError(f"{p}: corrupt or not a checkpoint ({detail or type(e).__name__})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, io.UnsupportedOperation) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: corrupt or truncated checkpoint ({msg[:200]})") from None


def is_evalsuite_checkpoint(obj: Any) -> bool:
    """True when ``obj`` is a dict tagged with the evalsuite checkpoint format."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(
    path: str | os.PathLike[str], trust: bool = False
) -> tuple[NormalizedModel, ModelCard, dict[str, torch.Tensor]]:
    """Load an evalsuite checkpoint: (model in eval mode, card, masks)."""
    obj = safe_load(path, trust=trust)
    return model_from_payload(obj, str(path))


def model_from_payload(obj: Any, where: str) -> tuple[NormalizedModel, ModelCard, dict[str, torch.Tensor]]:
    """Rebuild (model in eval mode, card, masks) from a loaded checkpoint dict; ``where`` names it."""
    if not is_evalsuite_checkpoint(obj):
        raise CheckpointError(f"{where}: not an evalsuite checkpoint (no 'format': {FORMAT!r})")
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format_version {version}, this evalsuite reads {FORMAT_VERSION}"
        )
    if not isinstance(obj.get("card"), dict) or not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(f"{where}: evalsuite checkpoint lacks its 'card' or 'state_dict'")
    card = ModelCard.from_dict(obj["card"])
    model = build_model(card)
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{where}: weights do not fit arch {card.arch!r} ({first[:200]})") from None
    masks = {k: v.bool() for k, v in (obj.get("masks") or {}).items()}
    check_masks(model, masks, where)
    model.eval()
    return model, card, masks


def check_masks(model: torch.nn.Module, masks: dict[str, torch.Tensor], where: str) -> None:
    """Every mask names a parameter of ``model`` and has its shape (else the audit would report nonsense)."""
    params = dict(model.named_parameters())
    unknown = sorted(k for k in masks if k not in params)
    if unknown:
        raise CheckpointError(
            f"{where}: masks for {len(unknown)} unknown layer(s) (e.g. {', '.join(unknown[:3])}); "
            f"the model's weights are e.g. {', '.join([n for n in params if n.endswith('weight')][:3])}"
        )
    bad = [
        f"{k} {tuple(v.shape)} vs {tuple(params[k].shape)}"
        for k, v in masks.items()
        if tuple(v.shape) != tuple(params[k].shape)
    ]
    if bad:
        raise CheckpointError(f"{where}: mask shapes do not match the weights ({'; '.join(bad[:2])})")
