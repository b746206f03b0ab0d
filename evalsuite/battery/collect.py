"""Turn ``compare`` inputs (checkpoints or result JSONs, in any mix) into ModelEntries.

Checkpoints go through the battery (and its cache); result JSONs are read with their per-example arrays.
A model that fails keeps its error message and does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from evalsuite.battery.config import BatteryConfig
from evalsuite.battery.run import EvalOptions, evaluate_with_arrays
from evalsuite.core.errors import EvalsuiteError
from evalsuite.core.results import EvalResult, ModelEntry, load_arrays
from evalsuite.data.base import dataset_memo

log = logging.getLogger(__name__)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    msg = text[0] if text else type(e).__name__
    return msg if isinstance(e, EvalsuiteError) else f"{type(e).__name__}: {msg}"


def default_name(path: str, result: EvalResult | None) -> str:
    """The display name for an input: the result's model name when recorded, else the file stem."""
    if result is not None and result.model.get("name") and not path.endswith(".json"):
        return str(result.model["name"])
    if result is not None and path.endswith(".json"):
        return str(result.model.get("name") or Path(path).stem)
    return Path(path).stem


def collect_entries(
    inputs: Sequence[str],
    config: BatteryConfig,
    options: EvalOptions,
    names: Sequence[str] | None = None,
    group: str | None = None,
) -> list[ModelEntry]:
    """One entry per input, in order; names from ``names``, else the result/checkpoint, made unique."""
    if names is not None and len(names) != len(inputs):
        raise EvalsuiteError(f"--names has {len(names)} names for {len(inputs)} models")
    where = f"{group}: " if group else ""
    with dataset_memo():  # every model is evaluated on the same data: read it once
        entries = [
            _collect_one(src, f"{where}{i + 1}/{len(inputs)}", config, options, names[i] if names else None)
            for i, src in enumerate(inputs)
        ]
    for e in entries:
        e.group = group
    seen: dict[str, int] = {}
    for e in entries:
        if e.name in seen and names is None:
            seen[e.name] += 1
            e.name = f"{e.name}-{seen[e.name]}"
        else:
            seen.setdefault(e.name, 1)
    return entries


def _collect_one(
    src: str, step: str, config: BatteryConfig, options: EvalOptions, name: str | None
) -> ModelEntry:
    result = arrays = None
    error = None
    try:
        if src.endswith(".json"):
            log.info("using result %s (%s)", src, step)
            result = EvalResult.load(src)
            arrays = load_arrays(src, result)
        else:
            log.info("evaluating %s: %s (%s)", step, name or Path(src).stem, src)
            # the entry's name comes from --names or the checkpoint, never from the shared options
            result, arrays = evaluate_with_arrays(src, config, options, name=None)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # broad on purpose: kept per model; the report says which failed and why
        error = _one_line(e)
        log.warning("%s failed: %s", src, error)
    return ModelEntry(
        name=name or default_name(src, result), source=src, result=result, arrays=arrays, error=error
    )
