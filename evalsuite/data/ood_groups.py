"""Near and far OOD: ``--ood near:cifar100,tin,far:svhn,photos`` groups OOD sets, as OpenOOD reports them.

An item ``GROUP:SPEC`` opens a group; the items after it belong to it until the next group opens
(``near:cifar100,tin,far:svhn,photos`` -> near = cifar100, tin; far = svhn, photos). Items before the
first group have no group. ``GROUP`` is a word (letters, digits, ``_``, ``-``, starting with a letter) that
is not a dataset kind, so ``gaussian:500`` and ``npz:PATH`` stay specs and ``near:npz:PATH`` is the npz
file in group near. A spec may carry a name, ``far:imagenet=npz:PATH``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from evalsuite.core.errors import UsageError
from evalsuite.data.base import DATASETS, split_named_spec

_GROUP = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_NOISE_KINDS = ("gaussian", "uniform", "photos")


class OODItem(NamedTuple):
    """One OOD set: its group (None when ungrouped), its name in results, and its dataset spec."""

    group: str | None
    name: str
    spec: str


def ood_set_name(spec: str) -> tuple[str, str]:
    """``'name=spec'`` -> (name, spec); a bare spec is named after itself, a path after its folder or stem.

    The battery's naming rule (``battery.run._ood_name``), kept here so the data layer can name sets.
    """
    name, rest = split_named_spec(spec)
    if name is not None:
        return name, rest
    kind, _, arg = spec.partition(":")
    if not arg or kind in _NOISE_KINDS:
        return kind, spec
    p = Path(arg)
    stem = p.stem if p.suffix else p.name
    if stem in ("test", "train", "val") and p.parent.name:
        stem = p.parent.name
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem), spec


def _split_items(text: str | Sequence[str] | None) -> list[str]:
    items = [text] if isinstance(text, str) else list(text or ())
    return [p.strip() for item in items for p in item.split(",") if p.strip()]


def parse_ood_groups(text: str | Sequence[str] | None) -> list[OODItem]:
    """``'near:cifar100,far:svhn,photos'`` (or repeated ``--ood`` values) -> OOD items in order.

    -> ``[('near', 'cifar100', 'cifar100'), ('far', 'svhn', 'svhn'), ('far', 'photos', 'photos')]``.
    A group with no set after it, a name used twice, or a group word that looks like a misspelt dataset kind
    (``gausian:500``) is a UsageError.
    """
    kinds = set(DATASETS.names())
    out: list[OODItem] = []
    group: str | None = None
    for item in _split_items(text):
        head, colon, rest = item.partition(":")
        if colon and _GROUP.fullmatch(head) and head not in kinds:
            close = difflib.get_close_matches(head, sorted(kinds), n=1, cutoff=0.8)
            if close:
                raise UsageError(
                    f"--ood {item}: {head!r} is not a dataset kind (did you mean {close[0]}?); "
                    f"a group is written GROUP:SPEC with a GROUP that is no dataset kind"
                )
            group, item = head, rest.strip()
            if not item:
                raise UsageError(f"--ood {head}: the group {head!r} names no OOD set (write {head}:SPEC)")
        name, spec = ood_set_name(item)
        out.append(OODItem(group, name, spec))
    names = [i.name for i in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(
            f"--ood: OOD set names must differ, {', '.join(dupes)} repeats; name them like imagenet=npz:PATH"
        )
    return out


def ood_groups(items: Sequence[OODItem]) -> dict[str, tuple[str, ...]]:
    """Each group -> the names of its sets, groups in first-seen order (ungrouped sets are left out)."""
    groups: dict[str, list[str]] = {}
    for item in items:
        if item.group is not None:
            groups.setdefault(item.group, []).append(item.name)
    return {g: tuple(names) for g, names in groups.items()}
