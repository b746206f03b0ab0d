"""The battery configuration: a frozen dataclass parsed once at the edge and written into every result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evalsuite.attacks import ATTACKS, AttackConfig, parse_eps
from evalsuite.attacks.config import AA_VERSIONS
from evalsuite.core.errors import UsageError
from evalsuite.metrics.catalogue import GROUP_ORDER
from evalsuite.ood import OOD_SCORES, is_feature_score

# a check computes one metric group of the catalogue
CHECKS: tuple[str, ...] = GROUP_ORDER
# corruption needs --corruption-data, so it is on only when asked for (runs without it are unchanged)
DEFAULT_CHECKS: tuple[str, ...] = tuple(c for c in CHECKS if c != "corruption")
CORRUPTION_KINDS = ("cifar10c", "cifar100c", "corrupt")
DEFAULT_ATTACKS = ("fgsm", "pgd_linf", "pgd_l2")
DEFAULT_EPS_LINF = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
# L2 radii in [0, 1] pixel units; RobustBench's CIFAR-10 L2 threat model is 0.5
DEFAULT_EPS_L2 = (0.125, 0.25, 0.5)
DEFAULT_OOD_SCORES = ("msp", "maxlogit", "energy")
CALIBRATORS = ("temperature",)
MAX_BINS = 1000  # more equal-width bins than this leaves nearly every bin empty on any real test set
# training examples the feature detectors are fit on (a seeded stratified subset of the fit split)
DEFAULT_FIT_LIMIT = 10000


def parse_list(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """'a,b' or ['a', 'b,c'] -> ('a', 'b', 'c'); repeated flags and commas both work."""
    if text is None:
        return ()
    items = [text] if isinstance(text, str) else list(text)
    return tuple(p.strip() for item in items for p in item.split(",") if p.strip())


@dataclass(frozen=True)
class BatteryConfig:
    """What to measure. ``limit`` takes a seeded, class-stratified subset of the ID set (and a seeded
    random subset of each OOD set); ``shard`` = (i, n) keeps positions i, i+n, ... of that subset.

    ``calibrate="temperature"`` fits a temperature on a held-out split: ``calib_data`` (a dataset spec,
    disjoint from the test set) or ``calib_fraction`` of the ID test split (seeded, stratified, taken before
    ``limit`` and ``shard`` and excluded from every other metric); default fraction 0.1.

    Takes what the command line takes: ``checks="clean,ood"``, ``eps_linf=("8/255",)`` or ``"1/255,8/255"``
    are parsed here, so Python and the CLI accept the same values.
    """

    checks: tuple[str, ...] = DEFAULT_CHECKS
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    eps_linf: tuple[float, ...] = DEFAULT_EPS_LINF
    eps_l2: tuple[float, ...] = DEFAULT_EPS_L2
    pgd_steps: int = 10
    pgd_restarts: int = 1
    pgd_rel_stepsize: float = 0.25
    aa_version: str = "standard"
    aa_cascade: bool = False
    ood_scores: tuple[str, ...] = DEFAULT_OOD_SCORES
    n_bins: int = 15
    seed: int = 0
    limit: int | None = None
    shard: tuple[int, int] | None = None
    calibrate: str | None = None
    calib_data: str | None = None
    calib_fraction: float | None = None
    feature_layer: str | None = None
    fit_data: str | None = None
    fit_limit: int = DEFAULT_FIT_LIMIT
    corruption_data: str | None = None
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for key in ("checks", "attacks", "ood_scores"):
            object.__setattr__(self, key, parse_list(getattr(self, key)))
        self._check_corruption()
        for key, norm in (("eps_linf", "linf"), ("eps_l2", "l2")):
            raw = getattr(self, key)
            items = parse_list(raw) if isinstance(raw, str) else tuple(raw)
            object.__setattr__(self, key, tuple(parse_eps(e, norm) for e in items))  # type: ignore[arg-type]
        if not self.checks:
            raise UsageError(f"no checks selected; choose from {', '.join(CHECKS)}")
        bad = [c for c in self.checks if c not in CHECKS]
        if bad:
            raise UsageError(f"unknown check(s) {', '.join(bad)}; choose from {', '.join(CHECKS)}")
        for a in self.attacks:
            ATTACKS.get(a)  # UsageError naming the known attacks, before any work is done
        for s in self.ood_scores:
            OOD_SCORES.get(s)
        if "robust" in self.checks and not self.attacks:
            raise UsageError(f"the robust check needs attacks (one or more of {', '.join(ATTACKS.names())})")
        if "ood" in self.checks and not self.ood_scores:
            raise UsageError(f"the ood check needs scores (one or more of {', '.join(OOD_SCORES.names())})")
        if self.aa_version not in AA_VERSIONS:
            raise UsageError(
                f"unknown AutoAttack version {self.aa_version!r}; choose from {', '.join(AA_VERSIONS)}"
            )
        runs_aa = "robust" in self.checks and any(ATTACKS.get(a).engine == "autoattack" for a in self.attacks)
        if self.aa_cascade and not runs_aa:
            raise UsageError(
                "--aa-cascade needs AutoAttack in the robust check: --attacks autoattack and/or autoattack_l2"
            )
        if runs_aa:
            from evalsuite.attacks.autoattack import require_autoattack

            require_autoattack()
        if "robust" in self.checks:
            norms = {ATTACKS.get(a).norm for a in self.attacks}
            if not (("linf" in norms and self.eps_linf) or ("l2" in norms and self.eps_l2)):
                raise UsageError("the robust check has no eps for its attacks; pass --eps and/or --eps-l2")
        if self.pgd_steps < 1 or self.pgd_restarts < 1:
            raise UsageError("PGD steps and restarts must be >= 1")
        if not (0 < self.pgd_rel_stepsize <= 1):
            raise UsageError(f"PGD relative step size must be in (0, 1], got {self.pgd_rel_stepsize}")
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int):
            raise UsageError(f"ECE bins must be an integer, got {self.n_bins!r}")
        if not (1 <= self.n_bins <= MAX_BINS):
            raise UsageError(f"ECE bins must be between 1 and {MAX_BINS}, got {self.n_bins}")
        if self.calibrate is None and (self.calib_data is not None or self.calib_fraction is not None):
            raise UsageError("--calib-data and --calib-fraction need --calibrate temperature")
        if self.calibrate is not None:
            if self.calibrate not in CALIBRATORS:
                raise UsageError(
                    f"unknown --calibrate {self.calibrate!r}; choose from {', '.join(CALIBRATORS)}"
                )
            if self.calib_data is not None and self.calib_fraction is not None:
                raise UsageError("choose one of --calib-data and --calib-fraction")
            if self.calib_data is None:
                frac = 0.1 if self.calib_fraction is None else self.calib_fraction
                if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (0 < frac < 1):
                    raise UsageError(f"--calib-fraction must be in (0, 1), got {frac!r}")
                object.__setattr__(self, "calib_fraction", float(frac))
        if isinstance(self.fit_limit, bool) or not isinstance(self.fit_limit, int) or self.fit_limit < 1:
            raise UsageError(f"--fit-limit must be a positive integer, got {self.fit_limit!r}")
        if (self.fit_data is not None or self.feature_layer is not None) and not self.fitted_scores():
            raise UsageError(
                "--fit-data and --feature-layer need a fitted feature score in --ood-scores "
                "(mahalanobis, knn, react, vim) and the ood check"
            )
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be positive, got {self.limit}")
        if self.shard is not None:
            i, n = self.shard
            if not (n >= 1 and 0 <= i < n):
                raise UsageError(f"--shard must be I/N with 0 <= I < N, got {i}/{n}")

    def _check_corruption(self) -> None:
        """--corruption-data turns the corruption check on; --corruptions/--severities need it."""
        if self.corruption_data is None:
            if self.corruptions is not None or self.severities is not None:
                raise UsageError("--corruptions and --severities need --corruption-data")
            if "corruption" in self.checks:
                raise UsageError(
                    "the corruption check needs --corruption-data "
                    "(cifar10c:ROOT, cifar100c:ROOT or corrupt:SPEC)"
                )
            return
        from evalsuite.data.corruptions import resolve_corruptions, resolve_severities

        kind = self.corruption_data.partition(":")[0]
        if kind not in CORRUPTION_KINDS:
            raise UsageError(
                f"--corruption-data {self.corruption_data!r}: expected cifar10c:ROOT, cifar100c:ROOT or "
                "corrupt:SPEC"
            )
        if self.corruptions is not None:
            names = parse_list(self.corruptions)
            resolve_corruptions(names)  # UsageError naming the known corruptions and groups
            object.__setattr__(self, "corruptions", names)
        if self.severities is not None:
            raw = self.severities
            items = parse_list(raw) if isinstance(raw, str) else tuple(raw)
            object.__setattr__(self, "severities", resolve_severities(items))
        if "corruption" not in self.checks:
            object.__setattr__(self, "checks", (*self.checks, "corruption"))

    def attack_configs(self) -> tuple[AttackConfig, ...]:
        """The attacks this battery runs, in ``attacks`` order: each with the eps of its norm and the PGD
        settings and seed here; an attack whose norm has no eps is left out, and none without ``robust``."""
        if "robust" not in self.checks:
            return ()
        configs = []
        for name in self.attacks:
            eps = self.eps_linf if ATTACKS.get(name).norm == "linf" else self.eps_l2
            if eps:
                configs.append(
                    AttackConfig(
                        name,
                        eps,
                        steps=self.pgd_steps,
                        rel_stepsize=self.pgd_rel_stepsize,
                        restarts=self.pgd_restarts,
                        seed=self.seed,
                        version=self.aa_version,
                        cascade=self.aa_cascade,
                    )
                )
        return tuple(configs)

    def feature_scores(self) -> tuple[str, ...]:
        """The selected OOD scores computed from features or input gradients (none without ``ood``)."""
        return tuple(s for s in self.ood_scores if is_feature_score(s)) if "ood" in self.checks else ()

    def fitted_scores(self) -> tuple[str, ...]:
        """The feature scores whose statistics are fit on training features (all but ``odin``)."""
        return tuple(s for s in self.feature_scores() if s != "odin")

    def identity(self) -> dict[str, Any]:
        """Everything that changes the numbers (for the cache key and for refusing unlike comparisons).

        The feature settings count only when a fitted feature score is selected, and the corruption
        settings only with --corruption-data, so they never split the cache of runs that do not use them."""
        d = asdict(self)
        d["checks"] = sorted(self.checks)
        if not self.fitted_scores():
            for key in ("feature_layer", "fit_data", "fit_limit"):
                d.pop(key)
        if self.corruption_data is None:
            for key in ("corruption_data", "corruptions", "severities"):
                d.pop(key)
        return d

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (tuples kept as tuples)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatteryConfig:
        """Build a config from a dict, turning lists back into tuples and ignoring unknown keys."""
        kw = dict(d)
        for key in ("checks", "attacks", "eps_linf", "eps_l2", "ood_scores", "corruptions", "severities"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        if kw.get("shard") is not None:
            kw["shard"] = tuple(kw["shard"])
        return cls(**{k: v for k, v in kw.items() if k in cls.__dataclass_fields__})
