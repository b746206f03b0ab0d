"""The metric catalogue: what each metric *is*, written once and read by every stage.

One :class:`MetricFamily` per family of names (``ood/{set}/{score}/auroc`` is one family): its group,
direction, kind, the per-example arrays it needs, its pure function, how its value's CI is made, which paired
test compares two models on it, how shards merge it, whether it belongs to the primary family, a display name
and a one-sentence definition. Summaries, shard merges, comparisons, the regression gate, history and every
renderer ask the catalogue (:func:`lookup`, :func:`higher_is_better`, :func:`group_of`, ...); nothing decides
a metric's behaviour by parsing its name elsewhere.

Adding a metric: one entry in :data:`FAMILIES` (below), its pure function in ``evalsuite.metrics``, and its
test.

Placeholders in patterns: ``{set}`` an OOD set name, ``{group}`` an OOD group (near, far), ``{score}`` an
OOD score name, ``{attack}`` an attack name, ``{eps}`` an eps label (``8_255`` for 8/255, ``0.5``; shown
as ``8/255``), ``{corruption}`` a common corruption, ``{severity}`` its severity (1..5). Array templates
use the same placeholders.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from evalsuite.metrics import classification as C
from evalsuite.metrics import ood as O
from evalsuite.metrics import temperature as T

Group = Literal["clean", "calibration", "ood", "robust", "corruption", "sparsity"]
Kind = Literal["proportion", "score", "count"]
ValueCI = Literal["wilson", "bootstrap", "bootstrap2", "calibration_bound", "none"]
PairedTest = Literal["mcnemar", "delong", "permutation", "permutation2", "none"]
Merge = Literal["recompute", "equal"]
Primary = Literal["always", "default_score", "largest_eps", "never"]

GROUP_ORDER: tuple[Group, ...] = ("clean", "calibration", "ood", "robust", "corruption", "sparsity")
GROUP_TITLES: dict[str, str] = {
    "clean": "Clean accuracy and loss",
    "calibration": "Calibration",
    "ood": "OOD detection",
    "robust": "Adversarial robustness",
    "corruption": "Corruption shift",
    "sparsity": "Sparsity audit",
}
# the OOD score whose AUROC is in the primary family (the maximum-softmax baseline, Hendrycks & Gimpel 2017)
PRIMARY_OOD_SCORE = "msp"

StatFn = Callable[..., float]


@dataclass(frozen=True)
class MetricFamily:
    """The facts about one family of metric names."""

    key: str
    pattern: str
    group: Group
    higher_is_better: bool
    kind: Kind
    arrays: tuple[str, ...]
    value_ci: ValueCI
    paired_test: PairedTest
    merge: Merge
    primary: Primary
    display: str
    definition: str
    fn: Callable[..., float] | None = None
    uses_bins: bool = False
    bounds: tuple[float | None, float | None] = (None, None)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _template_regex(self.pattern))

    def match(self, name: str) -> dict[str, str] | None:
        """The template parameters if ``name`` matches this family, else None."""
        m = self._regex.match(name)
        return m.groupdict() if m else None

    @property
    def tested(self) -> bool:
        """Whether a paired test compares two models on it (``False``: descriptive only)."""
        return self.paired_test != "none"

    @property
    def two_sample(self) -> bool:
        """ID and OOD examples are resampled independently (OOD metrics)."""
        return self.value_ci == "bootstrap2"

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The pattern's placeholder names, in order (``("set", "score")`` for the OOD families)."""
        return tuple(self._regex.groupindex)

    @property
    def glob(self) -> str:
        """The pattern as an fnmatch glob (placeholders -> ``*``), for tolerance tables and filters."""
        return re.sub(r"\{\w+\}", "*", self.pattern)

    def instances(self, keys: Iterable[str]) -> list[dict[str, str]]:
        """The placeholder values for which every array the family needs is among ``keys``, sorted.

        ``[{}]`` for a family without placeholders whose arrays are all present; ``[]`` for a family that
        needs no arrays (sparsity: measured on the model, not summarized from arrays).
        """
        if not self.arrays:
            return []
        keys = list(keys)
        found: list[dict[str, str]] = [{}]
        for template in self.arrays:
            rx = _template_regex(template)
            matches = [m.groupdict() for k in keys if (m := rx.match(k))]
            found = [
                {**a, **b} for a in found for b in matches if all(a[p] == b[p] for p in a.keys() & b.keys())
            ]
        unique = {tuple(p[n] for n in self.placeholders) for p in found}
        return [dict(zip(self.placeholders, t)) for t in sorted(unique)]


@dataclass(frozen=True)
class MetricRef:
    """A metric name resolved against the catalogue: its family and the placeholder values."""

    name: str
    family: MetricFamily
    params: Mapping[str, str]

    @property
    def higher_is_better(self) -> bool:
        """Whether larger values of this metric are better (its family's direction)."""
        return self.family.higher_is_better

    @property
    def group(self) -> Group:
        """The report group of this metric's family."""
        return self.family.group

    def array_keys(self) -> list[str]:
        """The per-example arrays the metric is a function of, in the function's argument order."""
        return [t.format(**self.params) for t in self.family.arrays]

    def stat_fn(self, n_bins: int = C.DEFAULT_BINS) -> StatFn | None:
        """The pure function of :meth:`array_keys` (bins bound for calibration metrics)."""
        fn = self.family.fn
        if fn is None:
            return None
        return functools.partial(fn, n_bins=n_bins) if self.family.uses_bins else fn

    def display(self) -> str:
        """The metric's display label, the family's template filled with its parameters (an eps token
        ``8_255`` shown as ``8/255``)."""
        params = dict(self.params)
        if "eps" in params:
            params["eps"] = eps_display(params["eps"])
        return self.family.display.format(**params)


@functools.lru_cache(maxsize=256)
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", template)
    return re.compile(
        "^" + "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def mean(x: np.ndarray) -> float:
    """Mean of a per-example array (accuracy from correctness flags, NLL and Brier from their per-example
    losses)."""
    return float(np.mean(x))


def _ood(
    leaf: str, fn: Callable[..., float], hib: bool, paired: PairedTest, display: str, definition: str
) -> MetricFamily:
    return MetricFamily(
        key=f"ood_{leaf}",
        pattern=f"ood/{{set}}/{{score}}/{leaf}",
        group="ood",
        higher_is_better=hib,
        kind="proportion",
        arrays=("id/score/{score}", "ood/{set}/score/{score}"),
        value_ci="bootstrap2",
        paired_test=paired,
        merge="recompute",
        primary="default_score" if leaf == "auroc" else "never",
        display=display,
        definition=definition,
        fn=fn,
        bounds=(0.0, 1.0),
    )


def group_mean(metric: Callable[..., float]) -> Callable[..., float]:
    """The mean of ``metric(id_scores, ood_scores of one set)`` over the sets of an OOD group, as OpenOOD
    averages its near and far sets: ``fn(id_scores [N], group_scores [M], member [M])``, ``member`` the
    position of each OOD example's set in its group (every set weighs the same, whatever its size)."""

    def fn(id_scores: np.ndarray, group_scores: np.ndarray, member: np.ndarray) -> float:
        sets = np.unique(member)
        return float(np.mean([metric(id_scores, group_scores[member == j]) for j in sets]))

    fn.__name__ = f"group_mean_{getattr(metric, '__name__', 'metric')}"
    return fn


def _ood_group(leaf: str, fn: Callable[..., float], hib: bool, display: str, what: str) -> MetricFamily:
    return MetricFamily(
        key=f"ood_group_{leaf}",
        pattern=f"ood/group/{{group}}/{{score}}/{leaf}",
        group="ood",
        higher_is_better=hib,
        kind="proportion",
        arrays=("id/score/{score}", "ood_group/{group}/score/{score}", "ood_group/{group}/member"),
        value_ci="bootstrap2",
        paired_test="permutation2",
        merge="recompute",
        primary="never",
        display=display,
        definition=f"mean over the OOD sets of a group (--ood near:SPEC,...,far:SPEC) of each set's {what}",
        fn=group_mean(fn),
        bounds=(0.0, 1.0),
    )


def _calibration(
    key: str,
    fn: Callable[..., float],
    paired: PairedTest,
    primary: Primary,
    display: str,
    definition: str,
    pattern: str | None = None,
    confidence: str = "id/confidence",
) -> MetricFamily:
    """A calibration-error family: top-label confidence and correctness, binned, in [0, 1], lower better."""
    return MetricFamily(
        key=key,
        pattern=pattern or key,
        group="calibration",
        higher_is_better=False,
        kind="proportion",
        arrays=(confidence, "id/correct"),
        value_ci="calibration_bound",
        paired_test=paired,
        merge="recompute",
        primary=primary,
        display=display,
        definition=definition,
        fn=fn,
        uses_bins=True,
        bounds=(0.0, 1.0),
    )


def cell_mean(metric: Callable[..., float], bins: bool = False) -> Callable[..., float]:
    """The mean of ``metric`` over the corrupted sets (cells) stacked as the columns of ``arrays`` (each
    [N images, S cells]); every cell weighs the same (Hendrycks & Dietterich's means). With ``bins`` the
    function takes ``n_bins`` (calibration errors)."""

    def fn(*arrays: np.ndarray, n_bins: int = C.DEFAULT_BINS) -> float:
        kw = {"n_bins": n_bins} if bins else {}
        if any(np.ndim(x) != 2 for x in arrays):
            raise ValueError(
                "corruption aggregates need [images, sets] arrays; this result was written by an earlier "
                "evalsuite (stacked sets): re-run `evalsuite merge` or the evaluation"
            )
        return float(np.mean([metric(*(x[:, j] for x in arrays), **kw) for j in range(arrays[0].shape[1])]))

    fn.__name__ = f"cell_mean_{getattr(metric, '__name__', 'metric')}"
    return fn


_CORRUPTION_DEF = "on the corrupted test images (--corruption-data)"


def _corruption(
    key: str,
    pattern: str,
    leaf: Literal["accuracy", "nll", "ece"],
    arrays_prefix: str,
    display: str,
    definition: str,
) -> MetricFamily:
    """A corruption-shift family: one corrupted set (``arrays_prefix``
    ``corruption/{corruption}/{severity}``), or a mean over sets (arrays concatenated with a ``member``
    array), of accuracy, NLL or ECE."""
    cell = arrays_prefix.startswith("corruption/")
    arrays = {
        "accuracy": (f"{arrays_prefix}/correct",),
        "nll": (f"{arrays_prefix}/nll",),
        "ece": (f"{arrays_prefix}/confidence", f"{arrays_prefix}/correct"),
    }[leaf]
    fns: dict[str, Callable[..., float]] = {"accuracy": mean, "nll": mean, "ece": C.ece}
    fn = fns[leaf]
    if not cell:
        fn = cell_mean(fn, bins=leaf == "ece")
    # a single set's values get the clean metrics' intervals; a mean over sets (the same images under
    # every corruption, so not independent draws) the basic bootstrap and the permutation test over images,
    # each image carrying its row of every set (a cluster bootstrap / cluster permutation)
    cis: dict[str, ValueCI] = {"accuracy": "wilson", "nll": "bootstrap", "ece": "calibration_bound"}
    value_ci = cis[leaf]
    paired: PairedTest = "mcnemar" if leaf == "accuracy" else "permutation"
    if not cell:
        value_ci, paired = "bootstrap", "permutation"
    return MetricFamily(
        key=key,
        pattern=pattern,
        group="corruption",
        higher_is_better=leaf == "accuracy",
        kind="score" if leaf == "nll" else "proportion",
        arrays=arrays,
        value_ci=value_ci,
        paired_test=paired,
        merge="recompute",
        primary="never",
        display=display,
        definition=f"{definition} {_CORRUPTION_DEF}",
        fn=fn,
        uses_bins=leaf == "ece",
        bounds=(0.0, None) if leaf == "nll" else (0.0, 1.0),
    )


def _corruption_families() -> tuple[MetricFamily, ...]:
    # the aggregates come first: lookup takes the first family that matches, and the per-set pattern
    # corruption/{corruption}/{severity}/m would also match corruption/severity/3/m
    what = {"accuracy": "top-1 accuracy", "nll": "NLL (nats)", "ece": "ECE (equal-width bins)"}
    shown = {"accuracy": "accuracy", "nll": "NLL", "ece": "ECE"}
    Leaf = Literal["accuracy", "nll", "ece"]
    # (key, pattern, array prefix, display, definition) per leaf
    kinds: tuple[tuple[tuple[Leaf, ...], str, str, str, str, str], ...] = (
        (
            ("accuracy", "ece"),
            "corruption_severity_{leaf}",
            "corruption/severity/{{severity}}/{leaf}",
            "corruption_severity/{{severity}}",
            "corruption severity {{severity}} {shown} (mean)",
            "mean over corruptions of the {what} at this severity,",
        ),
        (
            ("accuracy", "nll", "ece"),
            "corruption_mean_{leaf}",
            "corruption/mean/{leaf}",
            "corruption_all",
            "mean corruption {shown}",
            "mean over every (corruption, severity) set of its {what},",
        ),
        (
            ("accuracy", "nll", "ece"),
            "corruption_{leaf}",
            "corruption/{{corruption}}/{{severity}}/{leaf}",
            "corruption/{{corruption}}/{{severity}}",
            "{{corruption}} severity {{severity}} {shown}",
            "{what} of one corruption at one severity,",
        ),
    )
    out = [
        _corruption(
            key.format(leaf=leaf),
            pattern.format(leaf=leaf),
            leaf,
            prefix.format(),
            disp.format(shown=shown[leaf]),
            definition.format(what=what[leaf]),
        )
        for leaves, key, pattern, prefix, disp, definition in kinds
        for leaf in leaves
    ]
    for key, display, definition in (
        (
            "mce",
            "mCE",
            "mean over corruptions of CE = sum over severities of error / the reference's (a ratio, "
            "1.0 for the reference; Hendrycks & Dietterich 2019 with the comparison's reference as the "
            "baseline); computed by compare, descriptive",
        ),
        (
            "relative_mce",
            "relative mCE",
            "mean over corruptions of the accuracy lost to the corruption (summed over severities) / the "
            "reference's; computed by compare, descriptive",
        ),
    ):
        bounds = (0.0, None) if key == "mce" else (None, None)
        out.append(_descriptive("corruption", key, "score", display, definition, bounds))
    return tuple(out)


def _descriptive(
    group: Group,
    leaf: str,
    kind: Kind,
    display: str,
    definition: str,
    bounds: tuple[float | None, float | None],
) -> MetricFamily:
    """A family ``<group>/<leaf>`` that is reported and never tested: no arrays, no interval, no paired
    test, equal across shards (the sparsity audit, compare's mCE)."""
    return MetricFamily(
        key=f"{group}_{leaf}",
        pattern=f"{group}/{leaf}",
        group=group,
        higher_is_better=False,
        kind=kind,
        arrays=(),
        value_ci="none",
        paired_test="none",
        merge="equal",
        primary="never",
        display=display,
        definition=definition,
        bounds=bounds,
    )


def _sparsity(leaf: str, kind: Kind, display: str, definition: str) -> MetricFamily:
    bounds = (0.0, 1.0) if kind == "proportion" else (0.0, None)
    return _descriptive("sparsity", leaf, kind, display, definition, bounds)


FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily(
        key="accuracy",
        pattern="accuracy",
        group="clean",
        higher_is_better=True,
        kind="proportion",
        arrays=("id/correct",),
        value_ci="wilson",
        paired_test="mcnemar",
        merge="recompute",
        primary="always",
        display="accuracy",
        definition="fraction of test examples whose top-1 prediction is the label",
        fn=mean,
        bounds=(0.0, 1.0),
    ),
    MetricFamily(
        key="nll",
        pattern="nll",
        group="clean",
        higher_is_better=False,
        kind="score",
        arrays=("id/nll",),
        value_ci="bootstrap",
        paired_test="permutation",
        merge="recompute",
        primary="always",
        display="NLL",
        definition="mean negative log-likelihood of the label under the softmax (nats)",
        fn=mean,
        bounds=(0.0, None),
    ),
    MetricFamily(
        key="brier",
        pattern="brier",
        group="clean",
        higher_is_better=False,
        kind="score",
        arrays=("id/brier",),
        value_ci="bootstrap",
        paired_test="permutation",
        merge="recompute",
        primary="never",
        display="Brier",
        definition="mean over examples of the sum over classes of (softmax probability - one-hot label)^2",
        fn=mean,
        bounds=(0.0, 2.0),
    ),
    _calibration(
        "ece",
        C.ece,
        "permutation",
        "always",
        "ECE",
        "expected calibration error: top-label, equal-width confidence bins (15 by default), "
        "L1 gap weighted by bin size",
    ),
    _calibration(
        "ece_adaptive",
        C.ece_adaptive,
        "permutation",
        "never",
        "adaptive ECE",
        "ECE with equal-mass confidence bins (15 by default)",
    ),
    _calibration(
        "mce",
        C.mce,
        "none",
        "never",
        "MCE",
        "maximum calibration error: the largest bin gap over non-empty equal-width bins "
        "(descriptive: too noisy to test)",
    ),
    MetricFamily(
        key="ts_temperature",
        pattern="calibration/ts/temperature",
        group="calibration",
        higher_is_better=False,
        kind="score",
        arrays=("calib/temperature",),
        value_ci="none",
        paired_test="none",
        merge="equal",
        primary="never",
        display="TS temperature",
        definition="temperature scaling: the T dividing the logits, fit by minimizing NLL on the held-out "
        "calibration split (descriptive; T > 1 means the raw model was overconfident)",
        fn=T.first,
        bounds=(0.0, None),
    ),
    MetricFamily(
        key="ts_nll",
        pattern="calibration/ts/nll",
        group="calibration",
        higher_is_better=False,
        kind="score",
        arrays=("id/ts/nll",),
        value_ci="bootstrap",
        paired_test="permutation",
        merge="recompute",
        primary="never",
        display="NLL after TS",
        definition="NLL (nats) of the test examples after temperature scaling",
        fn=mean,
        bounds=(0.0, None),
    ),
    _calibration(
        "ts_ece",
        C.ece,
        "permutation",
        "never",
        "ECE after TS",
        "ECE (equal-width bins) of the test examples after temperature scaling",
        pattern="calibration/ts/ece",
        confidence="id/ts/confidence",
    ),
    _calibration(
        "ts_ece_adaptive",
        C.ece_adaptive,
        "permutation",
        "never",
        "adaptive ECE after TS",
        "adaptive ECE (equal-mass bins) of the test examples after temperature scaling",
        pattern="calibration/ts/ece_adaptive",
        confidence="id/ts/confidence",
    ),
    MetricFamily(
        key="ts_brier",
        pattern="calibration/ts/brier",
        group="calibration",
        higher_is_better=False,
        kind="score",
        arrays=("id/ts/brier",),
        value_ci="bootstrap",
        paired_test="permutation",
        merge="recompute",
        primary="never",
        display="Brier after TS",
        definition="Brier score of the test examples after temperature scaling",
        fn=mean,
        bounds=(0.0, 2.0),
    ),
    _ood(
        "auroc",
        O.auroc,
        True,
        "delong",
        "{set} {score} AUROC",
        "area under the ROC curve of the OOD score, OOD as the positive class (ties count 1/2)",
    ),
    _ood(
        "aupr_in",
        O.aupr_in,
        True,
        "permutation2",
        "{set} {score} AUPR-in",
        "average precision with ID as the positive class (scores negated)",
    ),
    _ood(
        "aupr_out",
        O.aupr_out,
        True,
        "permutation2",
        "{set} {score} AUPR-out",
        "average precision with OOD as the positive class",
    ),
    _ood(
        "fpr95",
        O.fpr95,
        False,
        "permutation2",
        "{set} {score} FPR95",
        "fraction of OOD examples accepted as ID when 95 % of ID examples are accepted",
    ),
    _ood(
        "fpr95_ood",
        O.fpr95_ood,
        False,
        "permutation2",
        "{set} {score} FPR95 (OOD+)",
        "fraction of ID examples flagged as OOD when 95 % of OOD examples are detected "
        "(OpenOOD's and pytorch-ood's FPR@95)",
    ),
    _ood_group("auroc", O.auroc, True, "{group} {score} AUROC (mean)", "AUROC"),
    _ood_group("aupr_in", O.aupr_in, True, "{group} {score} AUPR-in (mean)", "AUPR-in"),
    _ood_group("aupr_out", O.aupr_out, True, "{group} {score} AUPR-out (mean)", "AUPR-out"),
    _ood_group("fpr95", O.fpr95, False, "{group} {score} FPR95 (mean)", "FPR95 (95 % of ID accepted)"),
    _ood_group("fpr95_ood", O.fpr95_ood, False, "{group} {score} FPR95 OOD+ (mean)", "FPR95 (OOD+)"),
    MetricFamily(
        key="robust_accuracy",
        pattern="robust/{attack}/{eps}/accuracy",
        group="robust",
        higher_is_better=True,
        kind="proportion",
        arrays=("robust/{attack}/{eps}/correct",),
        value_ci="wilson",
        paired_test="mcnemar",
        merge="recompute",
        primary="largest_eps",
        display="{attack} robust accuracy at eps {eps}",
        definition="fraction of test examples that are clean-correct and that no iterate of the attack fools "
        "at that eps (pixel units; 8_255 = 8/255)",
        fn=mean,
        bounds=(0.0, 1.0),
    ),
    MetricFamily(
        key="robust_fooled_by",
        pattern="robust/{attack}/{eps}/fooled_by/{sub}",
        group="robust",
        higher_is_better=False,
        kind="proportion",
        arrays=("robust/{attack}/{eps}/fooled_by/{sub}",),
        value_ci="wilson",
        paired_test="none",
        merge="recompute",
        primary="never",
        display="{attack} at eps {eps}: fooled first by {sub}",
        definition="AutoAttack: fraction of test examples this sub-attack (apgd-ce, apgd-t, fab-t, square, "
        "...) fooled first, the earlier sub-attacks having left them standing; with --aa-cascade, 'earlier' "
        "counts those another attack of the norm had fooled at that eps or below (descriptive)",
        fn=mean,
        bounds=(0.0, 1.0),
    ),
    *_corruption_families(),
    _sparsity("density", "proportion", "density", "fraction of prunable weights that are nonzero"),
    _sparsity("mask_density", "proportion", "mask density", "fraction of prunable weights the mask keeps"),
    _sparsity("masked_nonzero", "count", "masked nonzero", "weights the mask prunes that are not zero"),
    _sparsity("params", "count", "parameters", "number of parameters"),
    _sparsity("nonzero_params", "count", "nonzero parameters", "number of nonzero parameters"),
    _sparsity("macs_dense", "count", "dense MACs", "multiply-accumulates of one image, dense"),
    _sparsity("macs_sparse", "count", "sparse MACs", "multiply-accumulates of one image, skipping zeros"),
)

_BY_KEY = {f.key: f for f in FAMILIES}
if len(_BY_KEY) != len(FAMILIES):  # pragma: no cover - a catalogue edit that duplicates a key
    raise RuntimeError("duplicate metric family key in the catalogue")


class UnknownMetric(KeyError):
    """A metric name no catalogue family matches."""

    def __str__(self) -> str:
        return f"unknown metric {self.args[0]!r}; see `evalsuite ls metrics`"


@functools.lru_cache(maxsize=4096)
def lookup(name: str) -> MetricRef:
    """Resolve ``name`` to its family; :class:`UnknownMetric` when none matches."""
    for fam in FAMILIES:
        params = fam.match(name)
        if params is not None:
            return MetricRef(name, fam, params)
    raise UnknownMetric(name)


def find(name: str) -> MetricRef | None:
    """:func:`lookup`, or None for a name no family matches."""
    try:
        return lookup(name)
    except UnknownMetric:
        return None


def family(key: str) -> MetricFamily:
    """The metric family registered under ``key``; KeyError if none."""
    return _BY_KEY[key]


def higher_is_better(name: str) -> bool:
    """The metric's direction (unknown names: higher is better, the safe reading for a gate)."""
    ref = find(name)
    return True if ref is None else ref.higher_is_better


def group_of(name: str) -> str:
    """The report group of metric ``name``; ``"other"`` for unknown names."""
    ref = find(name)
    return "other" if ref is None else ref.group


def kind_of(name: str) -> Kind | None:
    """Proportion | score | count; None for a name no family matches."""
    ref = find(name)
    return None if ref is None else ref.family.kind


def merge_rule(name: str) -> Merge:
    """How shards combine the metric: ``recompute`` (from the concatenated arrays) or ``equal`` (a property
    of the model, which every shard must report identically). :class:`UnknownMetric` for unknown names."""
    return lookup(name).family.merge


def group_rank(name: str) -> int:
    """Position of the metric's group in GROUP_ORDER; unknown groups sort last."""
    g = group_of(name)
    return GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER)


def sort_key(name: str) -> tuple[int, int, str]:
    """Report order: group, then the family's place in the catalogue, then the name."""
    ref = find(name)
    fam_rank = FAMILIES.index(ref.family) if ref is not None else len(FAMILIES)
    return group_rank(name), fam_rank, name


def primary_metrics(names: Iterable[str], primary_score: str = PRIMARY_OOD_SCORE) -> set[str]:
    """The primary family among ``names``: accuracy, NLL, ECE, each OOD set's AUROC for the default score,
    each attack's robust accuracy at its largest eps (Holm-corrected; everything else is secondary)."""
    names = list(names)
    out: set[str] = set()
    largest: dict[str, tuple[float, str]] = {}
    for n in names:
        ref = find(n)
        if ref is None:
            continue
        rule = ref.family.primary
        if rule == "always" or (rule == "default_score" and ref.params.get("score") == primary_score):
            out.add(n)
        elif rule == "largest_eps":
            eps = eps_value(ref.params["eps"])
            attack = ref.params["attack"]
            if attack not in largest or eps > largest[attack][0]:
                largest[attack] = (eps, n)
    out.update(n for _, n in largest.values())
    return out


def eps_value(label: str) -> float:
    """``'8_255'`` -> 8/255, ``'0.5'`` -> 0.5 (the inverse of ``core.results.eps_name``)."""
    k, sep, d = label.partition("_")
    return float(k) / float(d) if sep else float(label)


def eps_display(label: str) -> str:
    """``'8_255'`` -> ``'8/255'``, ``'0.5'`` -> ``'0.5'``: an eps label as a reader writes it."""
    k, sep, d = label.partition("_")
    return f"{k}/{d}" if sep else label


def describe(families: Iterable[MetricFamily] = FAMILIES) -> list[dict[str, Any]]:
    """One plain row per family (for ``evalsuite ls metrics`` and report legends)."""
    return [
        {
            "pattern": f.pattern,
            "group": f.group,
            "direction": "higher" if f.higher_is_better else "lower",
            "kind": f.kind,
            "ci": f.value_ci,
            "test": f.paired_test,
            "primary": f.primary,
            "definition": f.definition,
        }
        for f in families
    ]


def legend(names: Iterable[str]) -> list[tuple[str, str]]:
    """(pattern, definition) for each family present among ``names``, in catalogue order."""
    present = {ref.family.key for n in names if (ref := find(n)) is not None}
    return [(f.pattern, f.definition) for f in FAMILIES if f.key in present]


# ---------------------------------------------------------- report helpers (non-inferiority, intervals)

# Non-inferiority margins of the primary family, per family key: "replaces it" means worse by less than
# this much (absolute units of the metric; for lower-is-better metrics, higher by less than this much).
NONINFERIORITY_MARGINS: dict[str, float] = {
    "accuracy": 0.01,
    "nll": 0.02,
    "ece": 0.01,
    "ood_auroc": 0.01,
    "robust_accuracy": 0.01,
}
# Short names accepted for a family in --margin and --primary (besides family keys and exact names).
FAMILY_ALIASES: dict[str, str] = {"auroc": "ood_auroc", "robust": "robust_accuracy"}

# The bias-aware calibration interval's arguments per family with value_ci == "calibration_bound".
_CALIBRATION_BOUND: dict[str, tuple[Literal["ece", "mce"], Literal["uniform", "adaptive"]]] = {
    "ece": ("ece", "uniform"),
    "ece_adaptive": ("ece", "adaptive"),
    "mce": ("mce", "uniform"),
    "ts_ece": ("ece", "uniform"),
    "ts_ece_adaptive": ("ece", "adaptive"),
    "corruption_ece": ("ece", "uniform"),
}


def calibration_bound_args(name: str) -> tuple[Literal["ece", "mce"], Literal["uniform", "adaptive"]]:
    """(kind, binning scheme) of ``inference.calibration_error_ci`` for a calibration_bound metric."""
    return _CALIBRATION_BOUND[lookup(name).family.key]


def resolve_family_key(word: str) -> str | None:
    """A family key from a key, an alias (``auroc``) or None when ``word`` names no family."""
    word = FAMILY_ALIASES.get(word, word)
    return word if word in _BY_KEY else None


def noninferiority_margin(name: str, margins: Mapping[str, float] | None = None) -> float | None:
    """The margin for metric ``name``: ``margins`` by exact name, then by family key, then the default."""
    margins = margins or {}
    if name in margins:
        return float(margins[name])
    ref = find(name)
    if ref is None:
        return None
    key = ref.family.key
    if key in margins:
        return float(margins[key])
    return NONINFERIORITY_MARGINS.get(key)
