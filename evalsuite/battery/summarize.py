"""Per-example arrays -> metrics. Every metric but the sparsity audit (a property of the weights, measured
on the model) is a pure function of these arrays, so a result can be rebuilt from its ``.npz`` and shards
merge exactly (concatenate, then summarize). Which metrics exist, and how each is computed from which
arrays, is the metric catalogue's (``evalsuite.metrics.catalogue``).

Array keys (the ``.npz`` written beside each result):

- ``id/index`` int64 [N]: position of each example in the full ID split (pairs examples across models)
- ``id/labels`` int64 [N], ``id/logits`` float32 [N, K]
- ``id/pred`` int64, ``id/confidence`` float64 (top-label softmax), ``id/correct`` bool,
  ``id/nll`` float64 and ``id/brier`` float64 per example (derived from the logits)
- ``id/score/<score>`` float64 [N]: OOD score of each ID example (higher = more OOD)
- ``ood/<set>/index`` int64 [M], ``ood/<set>/logits`` float32 [M, K], ``ood/<set>/score/<score>`` [M]
  (feature scores such as ``mahalanobis`` too; the penultimate features themselves are not kept)
- ``ood_group/<group>/member`` int64 [M], ``ood_group/<group>/score/<score>`` [M]: the sets of an OOD group
  (``--ood near:A,B,far:C``) concatenated in group order, each example's set as its position in the group
- ``robust/<attack>/<eps>/correct`` bool [N]: clean-correct and never fooled at that eps
- with temperature scaling: ``calib/index``, ``calib/labels``, ``calib/logits`` of the held-out split (not
  per test example), ``calib/temperature`` float64 [1], and ``id/ts/confidence``, ``id/ts/nll``,
  ``id/ts/brier`` float64 [N] after scaling
- with ``--corruption-data``: ``corruption/index`` int64 [C] (positions in each corrupted set, the same for
  every set), ``corruption/labels`` int64 [C], and per (corruption, severity) set
  ``corruption/<c>/<s>/correct`` bool, ``/confidence`` and ``/nll`` float64 [C] (the logits are not kept);
  ``corruption_severity/<s>/{correct,confidence}`` and ``corruption_all/{correct,confidence,nll}`` [C, S]
  stack the sets (of one severity; of all) as columns sorted by (corruption, severity), one row per image
  (re-derived): the same images appear under every corruption, so the image, not the (image, set) pair,
  is the unit that intervals resample and permutation tests swap
- ``robust/<attack>/<eps>/fooled_by/<sub>`` bool [N] (AutoAttack): the examples sub-attack ``<sub>``
  (``apgd-ce``, ``apgd-t``, ``fab-t``, ``square``, ...) fooled first
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsuite import metrics as M
from evalsuite.core.results import eps_name
from evalsuite.metrics import catalogue as K
from evalsuite.metrics import temperature as T
from evalsuite.ood import OOD_SCORES, is_feature_score

Arrays = dict[str, np.ndarray]


def derive_id_arrays(arrays: Arrays) -> Arrays:
    """Add prediction, confidence, correctness, per-example NLL and Brier from ``id/logits``.

    ValueError for NaN logits (a diverged model): no metric of them would mean anything."""
    logits = arrays["id/logits"].astype(np.float64)
    if np.isnan(logits).any():
        raise ValueError("logits contains NaN")
    labels = arrays["id/labels"]
    logp = M.log_softmax(logits)
    probs = np.exp(logp)
    out = dict(arrays)
    out["id/pred"] = probs.argmax(1).astype(np.int64)
    out["id/confidence"] = probs.max(1)
    out["id/correct"] = out["id/pred"] == labels
    out["id/nll"] = -logp[np.arange(len(labels)), labels]
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    out["id/brier"] = ((probs - onehot) ** 2).sum(1)
    return out


def derive_temperature(arrays: Arrays) -> Arrays:
    """With ``calib/logits``: fit the temperature on them and add ``calib/temperature`` [1] and the test
    examples' ``id/ts/confidence``, ``id/ts/nll``, ``id/ts/brier`` after scaling; else ``arrays`` as is."""
    if "calib/logits" not in arrays:
        return arrays
    t = T.fit_temperature(arrays["calib/logits"], arrays["calib/labels"])
    out = dict(arrays)
    out["calib/temperature"] = np.array([t], dtype=np.float64)
    for k, v in T.scaled_arrays(arrays["id/logits"], arrays["id/labels"], t).items():
        out[f"id/ts/{k}"] = v
    return out


def derive_scores(arrays: Arrays, scores: tuple[str, ...], ood_sets: list[str]) -> Arrays:
    """A copy of ``arrays`` plus float64 ``id/score/<s>`` and ``ood/<set>/score/<s>`` per logit score.

    Feature scores (``is_feature_score``) are left out: the battery's feature stage computes them."""
    out = dict(arrays)
    for s in scores:
        if is_feature_score(s):
            continue
        fn = OOD_SCORES.get(s)
        out[f"id/score/{s}"] = np.asarray(fn(arrays["id/logits"]), dtype=np.float64)
        for name in ood_sets:
            out[f"ood/{name}/score/{s}"] = np.asarray(fn(arrays[f"ood/{name}/logits"]), dtype=np.float64)
    return out


GROUP_PREFIX = "ood_group/"
CORRUPTION_PREFIX = "corruption/"
# arrays concatenated from the corrupted sets' own: merge re-derives them
CORRUPTION_DERIVED = ("corruption_severity/", "corruption_all/")


def corruption_cells(arrays: Arrays) -> list[tuple[str, int]]:
    """The (corruption, severity) sets ``arrays`` holds, in order of appearance."""
    out: dict[tuple[str, int], None] = {}
    for k in arrays:
        parts = k.split("/")
        if len(parts) == 4 and parts[0] == "corruption" and parts[3] in ("logits", "correct"):
            out[(parts[1], int(parts[2]))] = None
    return list(out)


def derive_corruption(arrays: Arrays) -> Arrays:
    """Per corrupted set, ``corruption/<c>/<s>/logits`` -> ``correct``, ``confidence``, ``nll`` (the logits
    are dropped: they are 5 x 19 times the ID set's), then the concatenated arrays of the aggregates."""
    out = dict(arrays)
    labels = arrays.get("corruption/labels")
    for c, s in corruption_cells(arrays):
        key = f"corruption/{c}/{s}/logits"
        if key not in out:
            continue
        assert labels is not None
        logits = out.pop(key).astype(np.float64)
        if np.isnan(logits).any():
            raise ValueError(f"logits of corruption {c} severity {s} contain NaN")
        logp = M.log_softmax(logits)
        out[f"corruption/{c}/{s}/correct"] = logp.argmax(1) == labels
        out[f"corruption/{c}/{s}/confidence"] = np.exp(logp.max(1))
        out[f"corruption/{c}/{s}/nll"] = -logp[np.arange(len(labels)), labels]
    return derive_corruption_aggregates(out)


def derive_corruption_aggregates(arrays: Arrays) -> Arrays:
    """A copy of ``arrays`` with ``corruption_severity/<s>/...`` and ``corruption_all/...`` (re)built from
    the per-set arrays: [C, S] with one column per set, sorted by (corruption, severity), and one row per
    image, so resampling and swapping rows moves an image under every corruption at once (a cluster
    bootstrap and a cluster permutation test). Stacking the sets end to end instead would treat the S
    copies of an image as S independent draws and make the aggregates' intervals too narrow."""
    out = {k: v for k, v in arrays.items() if not k.startswith(CORRUPTION_DERIVED)}
    # a fixed column order, whatever order the keys arrived in (a merged result lists them differently),
    # so two models' columns pair up in compare
    cells = sorted(corruption_cells(out))
    if not cells:
        return out

    def stack(prefix: str, chosen: list[tuple[str, int]], leaves: tuple[str, ...]) -> None:
        for leaf in leaves:
            out[f"{prefix}/{leaf}"] = np.stack([out[f"corruption/{c}/{s}/{leaf}"] for c, s in chosen], axis=1)

    stack("corruption_all", cells, ("correct", "confidence", "nll"))
    for sev in sorted({s for _, s in cells}):
        stack(f"corruption_severity/{sev}", [(c, s) for c, s in cells if s == sev], ("correct", "confidence"))
    return out


def derive_groups(arrays: Arrays, groups: dict[str, list[str]] | dict[str, tuple[str, ...]]) -> Arrays:
    """A copy of ``arrays`` plus, per OOD group, ``ood_group/<g>/member`` int64 [M] (each example's set,
    as its position in the group) and ``ood_group/<g>/score/<s>`` [M] (the member sets' scores, in group
    order) for every score all its sets have. Earlier group arrays are replaced (``merge`` re-derives)."""
    out = {k: v for k, v in arrays.items() if not k.startswith(GROUP_PREFIX)}
    for g, names in groups.items():
        sets = [n for n in names if f"ood/{n}/index" in arrays]
        if not sets:
            continue
        out[f"{GROUP_PREFIX}{g}/member"] = np.concatenate(
            [np.full(len(arrays[f"ood/{n}/index"]), j, dtype=np.int64) for j, n in enumerate(sets)]
        )
        prefix = f"ood/{sets[0]}/score/"
        for key in arrays:
            if key.startswith(prefix):
                s = key[len(prefix) :]
                if all(f"ood/{n}/score/{s}" in arrays for n in sets):
                    out[f"{GROUP_PREFIX}{g}/score/{s}"] = np.concatenate(
                        [arrays[f"ood/{n}/score/{s}"] for n in sets]
                    )
    return out


def summarize(
    arrays: Arrays, checks: tuple[str, ...], scores: tuple[str, ...], n_bins: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, details) from the arrays. ``details`` holds the reliability-diagram bins.

    Every catalogue family of a selected check (a check is a metric group) is computed for each set of
    placeholder values whose arrays are present (OOD sets and robust (attack, eps) from the array keys,
    OOD scores restricted to ``scores``), as the family's own function of those arrays. A metric whose
    arrays are empty is NaN. Order: group, then the placeholder values (scores in ``scores`` order), then
    the family's place in the catalogue.
    """
    found: list[tuple[tuple[Any, ...], str, K.MetricRef]] = []
    for rank, fam in enumerate(K.FAMILIES):
        if fam.group not in checks:
            continue
        for params in fam.instances(arrays):
            if "score" in params and params["score"] not in scores:
                continue
            name = fam.pattern.format(**params)
            order = tuple(scores.index(params[p]) if p == "score" else params[p] for p in fam.placeholders)
            found.append(((K.GROUP_ORDER.index(fam.group), order, rank), name, K.lookup(name)))
    metrics: dict[str, float] = {}
    for _, name, ref in sorted(found, key=lambda t: t[0]):
        fn = ref.stat_fn(n_bins)
        assert fn is not None  # families with arrays have a function (the catalogue test checks it)
        args = [arrays[k] for k in ref.array_keys()]
        metrics[name] = float(fn(*args)) if all(len(x) for x in args) else float("nan")
    details: dict[str, Any] = {}
    if "calibration" in checks:
        conf, correct = arrays["id/confidence"], arrays["id/correct"]
        details["reliability"] = {
            scheme: M.calibration_bins(conf, correct, n_bins, scheme).to_dict()
            for scheme in ("uniform", "adaptive")
        }
    return metrics, details


def metric_info(
    metrics: dict[str, float],
    n_id: int,
    n_ood: dict[str, int],
    groups: dict[str, list[str]] | dict[str, tuple[str, ...]] | None = None,
    n_corruption: int | None = None,
) -> dict[str, dict[str, Any]]:
    """The catalogue's facts for every metric, and its sample size: ``n`` ID examples (``n_corruption``
    images per corrupted set for the corruption metrics) for metrics
    computed from per-example arrays, plus ``n_ood`` for those that also use an OOD set's arrays; none for
    properties of the model (sparsity)."""
    info: dict[str, dict[str, Any]] = {}
    for name in metrics:
        ref = K.lookup(name)
        fam = ref.family
        entry: dict[str, Any] = {
            "higher_is_better": fam.higher_is_better,
            "group": fam.group,
            "kind": fam.kind,
        }
        if fam.arrays:
            # a corruption metric's examples are the corrupted images of one set, not the ID ones
            entry["n"] = n_corruption if fam.group == "corruption" else n_id
        if "set" in ref.params:
            entry["n_ood"] = n_ood.get(ref.params["set"])
        if "group" in ref.params and groups and ref.params["group"] in groups:
            entry["n_ood"] = sum(n_ood.get(s, 0) for s in groups[ref.params["group"]])
        info[name] = entry
    return info


def ood_set_of(key: str) -> str | None:
    """The OOD set an array key belongs to (``ood/<set>/...``); None for ID and robust arrays."""
    kind, _, rest = key.partition("/")
    return rest.partition("/")[0] if kind == "ood" else None


def ood_set_names(arrays: Arrays) -> list[str]:
    """The OOD sets whose logits ``arrays`` holds, in order of appearance."""
    return list(
        dict.fromkeys(s for k in arrays if (s := ood_set_of(k)) is not None and k.endswith("/logits"))
    )


def fooled_by_key(attack: str, eps: float, sub: str) -> str:
    """The array key ``robust/<attack>/<eps>/fooled_by/<sub>`` of an AutoAttack sub-attack's first hits."""
    return f"robust/{attack}/{eps_name(eps)}/fooled_by/{sub}"


def robust_key(attack: str, eps: float) -> str:
    """The array key ``robust/<attack>/<eps>/correct`` for an (attack, eps) cell."""
    return f"robust/{attack}/{eps_name(eps)}/correct"
