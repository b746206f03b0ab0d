"""The ``evalsuite`` command: argparse subcommands over the library. Each parses, calls one function,
writes files. Heavy imports (torch) happen inside the subcommand, so ``--help`` is instant.

Exit codes: 0 ok, 1 runtime failure, 2 usage error. No traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

EPILOG_INIT = """examples:
  evalsuite init --arch resnet20 --dataset cifar10 --sparse-init erk --density 0.05 --seed 1 --out init.pt
  evalsuite init --arch resnet20 --dataset cifar10 --density 1 --seed 1 --out dense_init.pt   # its dense twin
"""

EPILOG_TRAIN = """examples:
  evalsuite train --dataset digits --sparse-init erk --density 0.1 --seed 0 --out sparse.pt
  evalsuite train --dataset cifar10 --arch resnet20 --sparse-init erk --density 0.05 --seed 1 --out r20.pt
  evalsuite train --from init.pt --epochs 10 --out model.pt
  evalsuite train ... --out model.pt --resume          # continue a killed run from its last epoch
"""


EPILOG_EVAL = """examples:
  evalsuite eval model.pt                                   # every check, the checkpoint's dataset
  evalsuite eval model.pt --checks clean,calibration,ood --ood svhn,cifar100 --out r.json
  evalsuite eval r20.th --arch resnet20 --arch-kwargs '{"shortcut": "A"}' --data cifar10 \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --limit 1000
  evalsuite eval model.pt --data npz:test.npz --ood imagenet=npz:imagenet_sample/test.npz
  evalsuite eval model.pt --shard 0/4 --out s0.json   # then: evalsuite merge s*.json --out all.json
  evalsuite eval model.pt --ood near:cifar100,far:svhn --ood-scores msp,energy,mahalanobis,knn,react,vim,odin
"""


EPILOG_COMPARE = """examples:
  evalsuite compare dense.pt sparse.pt                      # report in reports/dense-vs-sparse
  evalsuite compare dense.json erk.json uniform.pt --reference dense --out reports/r20 --force
  evalsuite compare --group dense=d1.pt,d2.pt,d3.pt --group erk=e1.pt,e2.pt,e3.pt --out reports/seeds
  evalsuite compare checkpoints/digits-dense.pt checkpoints/digits-erk-0.1.pt   # the embedded default

Battery flags (--limit, --checks, --eps, ...) apply to every checkpoint alike; result JSONs are used as
they are, and models evaluated on different data or settings are refused.
"""


EPILOG_BENCH = """examples:
  evalsuite bench run smoke --store results.db                 # a suite in benchmarks/, or a .toml path
  evalsuite bench check smoke --store results.db               # newest run vs the previous one
  evalsuite bench check smoke --store results.db --baseline tag:v1
  evalsuite bench check smoke --store results.db --baseline benchmarks/baselines/smoke.json
  evalsuite bench history smoke --store results.db --out reports/history-smoke
  evalsuite bench baseline smoke --store results.db --out benchmarks/baselines/smoke.json
  evalsuite bench tag smoke --store results.db latest v1

studies (a suite with a [grid]: train-and-evaluate jobs, one folder each under --runs-dir):
  evalsuite bench plan study-digits                            # the jobs, their count and cost
  evalsuite bench run study-digits --store study.db --workers 2
  evalsuite bench run study-digits --store study.db --retry-failed     # rerun: finished jobs are kept
  evalsuite bench run paper-cifar10 --store paper.db --engine ray --ray-address auto
  evalsuite bench run paper-cifar10 --store paper.db --engine slurm --slurm-partition gpu --slurm-time 720
  evalsuite bench status study-digits --store study.db         # state, host, device, duration, errors
  evalsuite bench check study-digits --store study.db          # exit 1 naming failed or missing jobs
"""


EPILOG_TABLE = """examples:
  evalsuite table runs/study-digits --metrics accuracy,ece --rows scheme,density --cols width --out t1
  evalsuite table --store results.db --suite study-digits --metrics accuracy,nll,ece --out reports/study
  evalsuite table runs/study-digits --metrics 'ood/*/msp/auroc' --rows density,scheme --out t2 --no-figures

Cells: mean +- std over seeds (n); Delta vs the dense twin (same axes, scheme dense), paired t-test over seeds
when both have the same seeds, else Welch; p-values Benjamini-Hochberg-adjusted over the table's cells per
metric (dagger: significant at --alpha); bold: best sparse scheme per column. Writes table.tex (booktabs),
table.md, table.csv and figures/ (each metric against density; the sparse - dense gap against model size).
"""


class CLIUsageError(Exception):
    """A command-line mistake: reported as one ``error:`` line with exit status 2."""

    pass


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``evalsuite CMD: error: ...`` and exit 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` to stderr and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _density(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"density must be a number in (0, 1], got {text!r}") from None
    if not (0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(f"density must be in (0, 1] (fraction of weights kept), got {text}")
    return value


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 32}}', got {text!r}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_init_args(p: argparse.ArgumentParser, dataset_required: bool) -> None:
    g = p.add_argument_group("network at initialization")
    g.add_argument(
        "--dataset", required=dataset_required, help="digits (embedded), cifar10, cifar100, svhn, ..."
    )
    g.add_argument("--arch", help="zoo model (evalsuite ls models); default: the dataset's default model")
    g.add_argument("--arch-kwargs", type=_json_dict, default={}, help="JSON, e.g. '{\"width\": 32}'")
    g.add_argument(
        "--sparse-init",
        default="dense",
        help="layer-wise density scheme (evalsuite ls schemes); snip and grasp score training images",
    )
    g.add_argument(
        "--density", type=_density, default=1.0, help="fraction of prunable weights kept, in (0, 1]"
    )
    g.add_argument("--seed", type=int, help="weight init, data order and augmentation seed (default 0)")
    g.add_argument("--mask-seed", type=int, help="seed of the mask generator (default: --seed)")
    d = p.add_argument_group("data (init reads images only for snip and grasp)")
    d.add_argument("--data-root", help="where torchvision datasets live (default ~/.cache/evalsuite/data)")
    d.add_argument("--download", action="store_true", help="download torchvision datasets if missing")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _shard(text: str) -> tuple[int, int]:
    i, slash, n = text.partition("/")
    try:
        if not slash:
            raise ValueError
        shard = int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N like 0/4, got {text!r}") from None
    if not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise argparse.ArgumentTypeError(f"shard must satisfy 0 <= I < N, got {text!r}")
    return shard


class _ValidNames:
    """The valid values of a flag, read from the registries only when --help is printed (torch is slow)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __str__(self) -> str:
        if self.kind == "checks":
            from evalsuite.battery.config import CHECKS

            return ", ".join(CHECKS)
        if self.kind == "attacks":
            from evalsuite.attacks import ATTACKS

            return ", ".join(ATTACKS.names())
        if self.kind == "ood_scores":
            from evalsuite.ood import OOD_SCORES

            return ", ".join(OOD_SCORES.names())
        from evalsuite.data import stats_names

        return ", ".join(stats_names())


def _listing(action: argparse.Action, kind: str) -> None:
    action.valid = _ValidNames(kind)  # type: ignore[attr-defined]  # read by %(valid)s in the help


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group(
        "model loading (foreign checkpoints)",
        "normalization: at most one of --mean/--std, --no-normalize, --norm-stats; without one, the "
        "standard statistics of a named --data set (npz:/folder: data need a choice)",
    )
    m.add_argument("--arch", help="zoo name, path/to/file.py:callable or package.module:callable")
    m.add_argument("--arch-kwargs", type=_json_dict, default={}, help="JSON, e.g. '{\"depth\": 20}'")
    m.add_argument("--mean", type=_floats, help="normalization mean, one value per channel")
    m.add_argument("--std", type=_floats, help="normalization std, one value per channel")
    m.add_argument(
        "--no-normalize",
        action="store_true",
        help="the model takes [0,1] images itself (e.g. a TorchScript model that normalizes inside)",
    )
    _listing(
        m.add_argument(
            "--norm-stats",
            metavar="DATASET",
            help="apply a dataset's standard statistics: %(valid)s",
        ),
        "norm_stats",
    )
    m.add_argument(
        "--trust-checkpoint", action="store_true", help="allow arbitrary unpickling (trusted files only)"
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", help="ID test set spec (default: the checkpoint's dataset)")
    d.add_argument(
        "--ood", action="append", help="OOD set specs, repeatable or comma-separated; name=SPEC names one"
    )
    d.add_argument("--data-root", help="where torchvision datasets live")
    d.add_argument("--download", action="store_true", help="download torchvision datasets if missing")
    d.add_argument("--limit", type=int, help="seeded class-stratified subset of N test examples")
    d.add_argument("--shard", type=_shard, help="run shard I of N (positions I, I+N, ...); merge later")
    b = p.add_argument_group("battery")
    _listing(
        b.add_argument(
            "--checks",
            default="clean,calibration,ood,robust,sparsity",
            help="comma-separated, one or more of: %(valid)s (default: all but corruption, which "
            "--corruption-data turns on)",
        ),
        "checks",
    )
    _listing(
        b.add_argument("--attacks", default="fgsm,pgd_linf,pgd_l2", help="comma-separated, from: %(valid)s"),
        "attacks",
    )
    b.add_argument(
        "--eps", default="1/255,2/255,4/255,8/255", help="L-inf eps list in [0,1] pixel units, e.g. 8/255"
    )
    b.add_argument("--eps-l2", default="0.125,0.25,0.5", help="L2 eps list, pixel units")
    b.add_argument("--pgd-steps", type=int, default=10)
    b.add_argument("--pgd-restarts", type=int, default=1)
    b.add_argument("--pgd-step-size", type=float, default=0.25, help="PGD step as a fraction of eps")
    b.add_argument(
        "--aa-version",
        default="standard",
        choices=("standard", "plus", "rand"),
        help="AutoAttack version for --attacks autoattack,autoattack_l2 (needs evalsuite[autoattack])",
    )
    b.add_argument(
        "--aa-cascade",
        action="store_true",
        help="AutoAttack only the examples no other attack of its norm (at that eps or below) has fooled: "
        "robust accuracy against the union of the attacks, much cheaper; default: the package's own number",
    )
    b.add_argument(
        "--calibrate",
        choices=("temperature",),
        help="also report calibration after temperature scaling (calibration/ts/...), fit on held-out data",
    )
    b.add_argument("--calib-data", help="dataset spec to fit the temperature on (disjoint from the test set)")
    b.add_argument(
        "--calib-fraction",
        type=float,
        help="fit on this seeded stratified part of the ID test set, excluded from all metrics (default 0.1)",
    )
    _listing(
        b.add_argument(
            "--ood-scores", default="msp,maxlogit,energy", help="comma-separated, from: %(valid)s"
        ),
        "ood_scores",
    )
    b.add_argument(
        "--feature-layer",
        metavar="NAME",
        help="module whose input is the mahalanobis/knn/react/vim feature (default: the last linear layer)",
    )
    b.add_argument(
        "--fit-data",
        metavar="SPEC",
        help="fit feature detectors on this spec's training split (default: the ID dataset's training split)",
    )
    b.add_argument(
        "--fit-limit", type=int, default=10000, help="seeded stratified N fit examples (default 10000)"
    )
    b.add_argument(
        "--corruption-data",
        metavar="SPEC",
        help="corruption shift: cifar10c:ROOT, cifar100c:ROOT or corrupt:SPEC (turns on the corruption "
        "check)",
    )
    b.add_argument(
        "--corruptions",
        metavar="LIST",
        help="corruptions or groups (common, extra, all, noise, blur, weather, digital); default common",
    )
    b.add_argument("--severities", metavar="LIST", help="severities 1..5, e.g. 1,3,5 (default all five)")
    b.add_argument("--bins", type=int, default=15, help="ECE bins (1 to 1000)")
    b.add_argument("--seed", type=int, default=0, help="subset and attack random-start seed")
    h = p.add_argument_group("run")
    h.add_argument("--device", default="auto")
    h.add_argument("--batch-size", type=int)
    h.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")


def _battery_config(args: argparse.Namespace) -> Any:
    from evalsuite.battery import BatteryConfig, parse_list

    # BatteryConfig parses and checks the strings, as it does for Python callers
    return BatteryConfig(
        checks=parse_list(args.checks),
        attacks=parse_list(args.attacks),
        # strings such as "8/255": __post_init__ turns them into the floats the fields are typed as
        eps_linf=cast("tuple[float, ...]", parse_list(args.eps)),
        eps_l2=cast("tuple[float, ...]", parse_list(args.eps_l2)),
        pgd_steps=args.pgd_steps,
        pgd_restarts=args.pgd_restarts,
        pgd_rel_stepsize=args.pgd_step_size,
        aa_version=args.aa_version,
        aa_cascade=args.aa_cascade,
        ood_scores=parse_list(args.ood_scores),
        n_bins=args.bins,
        seed=args.seed,
        limit=args.limit,
        shard=args.shard,
        calibrate=args.calibrate,
        calib_data=args.calib_data,
        calib_fraction=args.calib_fraction,
        feature_layer=args.feature_layer,
        fit_data=args.fit_data,
        fit_limit=args.fit_limit,
        corruption_data=args.corruption_data,
        corruptions=parse_list(args.corruptions) if args.corruptions is not None else None,
        # "1,3" as given: BatteryConfig checks and resolves it, as it does for Python callers
        severities=cast("tuple[int, ...] | None", args.severities),
    )


def _eval_options(args: argparse.Namespace, out: Path | None) -> Any:
    from evalsuite.battery import EvalOptions, parse_list

    return EvalOptions(
        data=args.data,
        ood=parse_list(args.ood) if args.ood is not None else None,
        arch=args.arch,
        arch_kwargs=args.arch_kwargs,
        mean=args.mean,
        std=args.std,
        normalize=False if args.no_normalize else None,
        norm_stats=args.norm_stats,
        trust_checkpoint=args.trust_checkpoint,
        data_root=args.data_root,
        download=args.download,
        device=args.device,
        batch_size=args.batch_size,
        out=out,
        cache=not args.no_cache,
        progress=not args.quiet,
    )


def _add_bench_overrides(b: argparse.ArgumentParser) -> None:
    """The data and recipe overrides of ``bench run`` (plan, status and check take them too: a study's
    job ids depend on them)."""
    b.add_argument("--data", help="override the suite's ID test set spec")
    b.add_argument("--ood", action="append", help="override the suite's OOD sets")
    b.add_argument("--train-data", help="override the dataset of train recipes (e.g. npz:train.npz)")
    b.add_argument("--test-data", help="test split used during training (e.g. npz:test.npz)")
    b.add_argument("--data-root", help="where torchvision datasets live")
    b.add_argument("--download", action="store_true")
    b.add_argument("--limit", type=int, help="seeded stratified subset of the ID test set")
    b.add_argument("--epochs", type=int, help="override every train recipe's epochs (quick runs)")
    b.add_argument("--limit-train", type=int, help="train recipes on a seeded stratified subset")
    b.add_argument("--device", help="auto, cpu, cuda")


def _bench_overrides(args: argparse.Namespace) -> Any:
    from evalsuite.battery import parse_list
    from evalsuite.bench.runner import Overrides

    for flag, value in (
        ("--epochs", args.epochs),
        ("--limit-train", args.limit_train),
        ("--limit", args.limit),
    ):
        if value is not None and value < 1:
            raise CLIUsageError(f"{flag} must be a positive number, got {value}")
    return Overrides(
        data=args.data,
        ood=list(parse_list(args.ood)) if args.ood else None,
        train_data=args.train_data,
        test_data=args.test_data,
        data_root=args.data_root,
        download=args.download,
        limit=args.limit,
        device=args.device,
        epochs=args.epochs,
        limit_train=args.limit_train,
    )


def _subcommand(sub: Any, common: argparse.ArgumentParser, name: str, help: str, epilog: str) -> Any:
    return sub.add_parser(
        name, parents=[common], help=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``evalsuite`` parser with its subcommands (ls, init, train, eval, merge, compare, bench)."""
    parser = Parser(
        prog="evalsuite",
        description="Does a randomly pruned network replace its dense twin?",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info lines")
    # --debug and -q work before or after the subcommand
    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p_ls = sub.add_parser(
        "ls",
        parents=[common],
        help="list registered models, schemes, datasets, ..., and the metric catalogue",
    )
    p_ls.add_argument(
        "kind",
        nargs="?",
        default="all",
        help="models | schemes | datasets | attacks | ood-scores | metrics | all",
    )

    p_init = _subcommand(
        sub, common, "init", "write a randomly pruned network at initialization", EPILOG_INIT
    )
    _add_init_args(p_init, dataset_required=True)
    p_init.add_argument("--out", required=True, help="checkpoint to write")

    p_train = _subcommand(sub, common, "train", "train a dense or randomly pruned network", EPILOG_TRAIN)
    _add_init_args(p_train, dataset_required=False)
    p_train.add_argument(
        "--from", dest="from_init", help="start from a checkpoint written by `evalsuite init`"
    )
    p_train.add_argument(
        "--trust-checkpoint", action="store_true", help="allow unpickling objects from --from"
    )
    p_train.add_argument(
        "--out", required=True, help="checkpoint to write, e.g. m.pt (per-epoch log beside it: m.log.jsonl)"
    )
    p_train.add_argument("--resume", action="store_true", help="continue from OUT's last completed epoch")
    p_train.add_argument(
        "--test-data", help="dataset spec for the test split (default: --dataset's); e.g. npz:test.npz"
    )
    r = p_train.add_argument_group("recipe (defaults: the dataset's; CIFAR: the paper's)")
    r.add_argument("--epochs", type=int)
    r.add_argument("--batch-size", type=int)
    r.add_argument("--lr", type=float)
    r.add_argument("--momentum", type=float)
    r.add_argument("--weight-decay", type=float)
    r.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    r.add_argument(
        "--milestones", type=_int_list, help="epochs where lr is multiplied by --gamma, e.g. 80,120"
    )
    r.add_argument("--gamma", type=float)
    r.add_argument("--augment", choices=["crop_flip", "none"])
    r.add_argument("--label-smoothing", type=float)
    h = p_train.add_argument_group("hardware")
    h.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    h.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (CUDA default)"
    )
    h.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    h.add_argument("--limit-train", type=int, help="seeded stratified subset of the training set")
    h.add_argument("--limit-test", type=int, help="seeded stratified subset of the test set")
    p_eval = _subcommand(
        sub, common, "eval", "run the battery on one model and write one result", EPILOG_EVAL
    )
    p_eval.add_argument("model", help="checkpoint: evalsuite, state_dict, TorchScript or torch.export (.pt2)")
    p_eval.add_argument("--out", help="result JSON to write (per-example arrays beside it as .npz)")
    p_eval.add_argument("--json", action="store_true", help="print the result JSON instead of the summary")
    _add_eval_args(p_eval)

    p_cmp = _subcommand(
        sub,
        common,
        "compare",
        "compare models with the reference (dense twin): report with CIs and paired tests",
        EPILOG_COMPARE,
    )
    p_cmp.add_argument(
        "models", nargs="*", help="checkpoints and/or result JSONs; the first is the reference"
    )
    p_cmp.add_argument("--group", action="append", help="NAME=a.pt,b.pt,...: several seeds of one model")
    p_cmp.add_argument("--reference", help="name of the reference model or group (default: the first)")
    p_cmp.add_argument("--names", help="comma-separated display names, one per model")
    p_cmp.add_argument("--out", help="report folder (default: reports/<reference>-vs-<other>)")
    p_cmp.add_argument("--force", action="store_true", help="replace an existing report folder")
    p_cmp.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates (default 1000)")
    p_cmp.add_argument(
        "--alpha", type=float, default=0.05, help="significance level after correction (default 0.05)"
    )
    p_cmp.add_argument(
        "--primary",
        help="METRIC,... the primary family (metric names, family keys such as ece or auroc); default: "
        "accuracy, nll, ece, each OOD set's msp AUROC, each attack's robust accuracy at its largest eps",
    )
    p_cmp.add_argument(
        "--correction",
        choices=("holm", "bh", "none"),
        default="holm",
        help="correction of the primary family (default holm); the secondary family uses BH, none for both",
    )
    p_cmp.add_argument(
        "--margin",
        help="non-inferiority margins, e.g. accuracy=0.01,ece=0.01,nll=0.02,auroc=0.01 (these and "
        "robust_accuracy=0.01 are the defaults)",
    )
    _add_eval_args(p_cmp)

    p_bench = _subcommand(
        sub, common, "bench", "benchmark suites, the results store and the regression gate", EPILOG_BENCH
    )
    bsub = p_bench.add_subparsers(dest="bench_command", metavar="ACTION", parser_class=Parser, required=True)
    b_run = bsub.add_parser(
        "run", parents=[common], help="evaluate every model of a suite, append to the store"
    )
    b_check = bsub.add_parser(
        "check", parents=[common], help="newest run vs a baseline; exit 1 on regression"
    )
    b_hist = bsub.add_parser("history", parents=[common], help="each metric over time (text, PNG, HTML)")
    b_base = bsub.add_parser("baseline", parents=[common], help="write a run as a baseline JSON to commit")
    b_tag = bsub.add_parser("tag", parents=[common], help="name a run (for --baseline tag:NAME)")
    b_plan = bsub.add_parser("plan", parents=[common], help="a study's jobs, their count and estimated cost")
    b_status = bsub.add_parser(
        "status", parents=[common], help="a study's jobs: state, host, duration, errors"
    )
    for b in (b_run, b_check, b_hist, b_base, b_tag):
        b.add_argument("suite", help="suite name in benchmarks/ or path to a suite .toml")
        b.add_argument("--store", required=True, help="SQLite results store (created if missing by run)")
    for b in (b_plan, b_status):
        b.add_argument("suite", help="study suite name in benchmarks/ or path to a suite .toml")
    b_status.add_argument("--store", help="SQLite results store (jobs whose folder is elsewhere)")
    for b in (b_run, b_status):
        b.add_argument("--runs-dir", help="study job folders (default runs/SUITE)")
    for b in (b_run, b_plan, b_status, b_check):
        _add_bench_overrides(b)
    b_plan.add_argument("--measure", action="store_true", help="time a few training steps per network")
    b_run.add_argument("--work-dir", help="where trained checkpoints go (default runs/bench/SUITE)")
    b_run.add_argument("--tag", help="name this run")
    b_run.add_argument("--note", help="free text stored with the run")
    st = b_run.add_argument_group("studies (suites with a [grid])")
    st.add_argument("--engine", choices=["local", "ray", "slurm"], default="local", help="default local")
    st.add_argument(
        "--workers", type=int, help="local: worker processes (default one per GPU, else 1); ray: CPUs"
    )
    st.add_argument("--retry-failed", action="store_true", help="run failed jobs again")
    st.add_argument("--ray-address", help="auto or ray://HOST:PORT: join a running Ray cluster")
    st.add_argument("--slurm-partition")
    st.add_argument("--slurm-time", help="time limit per job (minutes, or Slurm's HH:MM:SS)")
    st.add_argument(
        "--slurm-cluster",
        choices=("slurm", "local"),
        default=None,
        help="local: run the array on this machine with submitit's local executor (to try a study out)",
    )
    st.add_argument("--slurm-gpus-per-job", type=int)
    st.add_argument("--slurm-array-parallelism", type=int, help="jobs of the array running at once")
    cache = b_run.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", action="store_true", help="reuse cached evaluations (default: evaluate afresh)"
    )
    cache.add_argument("--no-cache", action="store_true", help="the default; kept for old scripts")
    b_run.add_argument(
        "--trust-suite",
        action="store_true",
        help="let the suite enable trust_checkpoint and name code (arch = 'file.py:fn'): trusted suites only",
    )
    b_check.add_argument(
        "--baseline", default="previous", help="previous | tag:NAME | RUN_ID | path/to/baseline.json"
    )
    b_check.add_argument("--run", default="latest", help="the run to check (default latest)")
    b_hist.add_argument("--out", help="folder for history.png and history.html")
    b_hist.add_argument("--metric", action="append", help="metric globs to show (default all)")
    b_base.add_argument("--run", default="latest")
    b_base.add_argument("--out", required=True, help="baseline JSON to write")
    b_tag.add_argument("run", help="run id, latest or previous")
    b_tag.add_argument("name", help="tag name")

    p_merge = sub.add_parser(
        "merge", parents=[common], help="merge --shard results into the whole-set result"
    )
    p_merge.add_argument("shards", nargs="+", help="shard result JSONs (with their .npz beside them)")
    p_merge.add_argument("--out", required=True, help="merged result JSON")

    p_data = sub.add_parser("data", parents=[common], help="dataset tools: export a spec to an offline .npz")
    dsub = p_data.add_subparsers(dest="data_command", metavar="ACTION", required=True, parser_class=Parser)
    d_export = dsub.add_parser(
        "export",
        parents=[common],
        help="write a dataset spec's split to an .npz that npz:FILE reads (no network needed later)",
        epilog="example:\n  evalsuite data export svhn --split test --out svhn_test.npz --download\n"
        "  evalsuite eval model.pt --ood near:cifar100=npz:c100_test.npz,far:svhn=npz:svhn_test.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d_export.add_argument("spec", help="dataset spec (cifar100, svhn, folder:PATH, ...)")
    d_export.add_argument("--split", choices=("train", "test"), default="test")
    d_export.add_argument("--out", required=True, help="the .npz to write")
    d_export.add_argument("--data-root", help="where torchvision datasets live")
    d_export.add_argument("--download", action="store_true", help="download torchvision datasets if missing")

    p_table = _subcommand(
        sub,
        common,
        "table",
        "a study's tables and figures: metrics over grid axes, Delta vs dense twins",
        EPILOG_TABLE,
    )
    p_table.add_argument("folder", nargs="?", help="folder of results (runs/<suite>/: **/result.json)")
    p_table.add_argument("--store", help="results store (SQLite) holding the suite's jobs")
    p_table.add_argument("--suite", help="suite name in --store")
    p_table.add_argument(
        "--metrics", help="METRIC,... (globs allowed, e.g. 'ood/*/msp/auroc'); default: the primary metrics"
    )
    p_table.add_argument("--rows", help="AXIS,... of the rows (default scheme,density)")
    p_table.add_argument("--cols", help="AXIS,... of the columns (default: every other axis that varies)")
    p_table.add_argument(
        "--out", required=True, help="output folder (table.tex, table.md, table.csv, figures/)"
    )
    p_table.add_argument(
        "--alpha", type=float, default=0.05, help="significance level after BH (default 0.05)"
    )
    p_table.add_argument("--decimals", type=int, default=3, help="decimals shown (default 3)")
    p_table.add_argument(
        "--figures", action=argparse.BooleanOptionalAction, default=True, help="write figures/ (default on)"
    )
    p_table.add_argument("--force", action="store_true", help="replace an earlier table folder")
    return parser


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate one model, print its result (or JSON with --json) and return the exit status 0."""
    from evalsuite.battery import evaluate
    from evalsuite.report import format_result

    out = Path(args.out) if args.out else None
    result = evaluate(args.model, _battery_config(args), _eval_options(args, out))
    if args.json:
        sys.stdout.write(result.to_json())
    else:
        print(format_result(result))
        if out is not None:
            print(f"\nwrote {out} and {out.with_suffix('.npz')}")
    return 0


def _parse_primary(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    words = tuple(w.strip() for w in text.split(",") if w.strip())
    if not words:
        raise CLIUsageError("--primary wants METRIC,..., got nothing")
    return words


def _parse_margins(text: str | None) -> dict[str, float]:
    from evalsuite.metrics.catalogue import find, resolve_family_key

    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, eq, val = item.partition("=")
        key = key.strip()
        try:
            margin = float(val)
        except ValueError:
            margin = math.nan
        if not eq or not (math.isfinite(margin) and margin >= 0.0):
            raise CLIUsageError(f"--margin wants METRIC=NUMBER >= 0, got {item.strip()!r}")
        fam = resolve_family_key(key)
        if fam is None and find(key) is None:
            raise CLIUsageError(f"--margin: {key!r} is not a metric family or metric name")
        out[fam or key] = margin
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare models (or seed groups) against a reference, write the report folder; 1 if any model failed."""
    from evalsuite.battery.collect import collect_entries
    from evalsuite.report import (
        CompareSettings,
        build_comparison,
        build_group_comparison,
        render_terminal,
        write_report,
    )
    from evalsuite.report.write import check_report_target

    if not args.models and not args.group:
        raise CLIUsageError("compare needs two or more models (or --group NAME=a.pt,b.pt twice)")
    if args.models and args.group:
        raise CLIUsageError("give models or --group, not both")
    if args.n_boot < 100:
        raise CLIUsageError(f"--n-boot must be >= 100, got {args.n_boot}")
    if not (0 < args.alpha < 1):
        raise CLIUsageError(f"--alpha must be in (0, 1), got {args.alpha}")
    sources = list(args.models or []) + [
        m.strip() for spec in args.group or [] for m in spec.partition("=")[2].split(",") if m.strip()
    ]
    inputs = sources + [str(Path(m).with_suffix(".npz")) for m in sources if m.endswith(".json")]
    if args.out:  # refused before any model is evaluated, not after
        check_report_target(args.out, inputs, args.force)
    cfg = _battery_config(args)
    opts = _eval_options(args, None)
    settings = CompareSettings(
        alpha=args.alpha,
        n_boot=args.n_boot,
        seed=args.seed,
        correction=args.correction,
        primary=_parse_primary(args.primary),
        margins=_parse_margins(args.margin),
    )
    if args.group:
        groups = {}
        for spec in args.group:
            name, eq, members = spec.partition("=")
            paths = [m for m in members.split(",") if m.strip()]
            if not eq or not name or not paths:
                raise CLIUsageError(f"--group wants NAME=a.pt,b.pt, got {spec!r}")
            groups[name] = collect_entries(paths, cfg, opts, group=name)
        if len(groups) < 2:
            raise CLIUsageError("--group needs at least two groups")
        seen = [e.name for g in groups.values() for e in g]
        if len(set(seen)) != len(seen):  # the same file stem in two groups: name members GROUP/STEM
            for g, members in groups.items():
                for e in members:
                    e.name = f"{g}/{e.name}"
        comp = build_group_comparison(groups, args.reference, settings)
        entries = [e for g in groups.values() for e in g]
    else:
        if len(args.models) < 2:
            raise CLIUsageError("compare needs at least two models")
        names = [n.strip() for n in args.names.split(",")] if args.names else None
        entries = collect_entries(args.models, cfg, opts, names)
        comp = build_comparison(entries, args.reference, settings)
    ref = comp.reference
    others = [m.name for m in comp.models if m.name != ref]
    default = f"{ref}-vs-{others[0]}" if len(others) == 1 else f"{ref}-vs-{len(others)}-models"
    out = Path(args.out) if args.out else Path("reports") / default
    write_report(comp, out, force=args.force, inputs=inputs)
    print(render_terminal(comp))
    print(f"\nwrote {out}/ (report.md, report.html, tables.tex, metrics.csv, comparison.json, plots/)")
    failed = [e for e in entries if not e.ok]
    if failed:
        print(
            f"evalsuite compare: {len(failed)} model(s) failed: "
            + "; ".join(f"{e.name}: {e.error}" for e in failed),
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a bench suite, or check, chart, baseline or tag a stored run; return the exit status."""
    from evalsuite.bench.store import ResultStore
    from evalsuite.bench.suite import load_suite

    action = args.bench_command
    if action in ("plan", "status"):
        return _bench_study_view(args)
    if action == "run":
        from evalsuite.bench.runner import run_suite

        suite = load_suite(args.suite, trust=args.trust_suite)
        ov = _bench_overrides(args)
        if suite.is_study:
            return _bench_study_run(args, suite, ov)
        study_flags = [
            f
            for f, v in (
                ("--runs-dir", args.runs_dir),
                ("--engine", args.engine != "local"),
                ("--workers", args.workers),
                ("--retry-failed", args.retry_failed),
            )
            if v
        ]
        if study_flags:
            raise CLIUsageError(
                f"{study_flags[0]} is for study suites (with a [grid]); {suite.name} lists models"
            )
        outcome = run_suite(
            suite,
            Path(args.store),
            ov,
            Path(args.work_dir) if args.work_dir else None,
            progress=not args.quiet,
            note=args.note,
            tag=args.tag,
            cache=args.cache,
        )
        ok = outcome.models - len(outcome.failures)
        print(f"run {outcome.run_id} of {suite.name}: {ok} of {outcome.models} models stored in {args.store}")
        if outcome.failures:
            failed = "; ".join(f"model {m!r} failed: {r}" for m, r in outcome.failures.items())
            msg = f"run {outcome.run_id} stored as incomplete: {failed}"
            print(f"evalsuite bench: error: {msg}", file=sys.stderr)
            return 1
        return 0
    # the other actions read the suite for its name and tolerances only: nothing is loaded or trusted
    suite = load_suite(args.suite, loading=False)
    store = ResultStore(args.store, create=False)
    if action == "check" and suite.is_study:
        from evalsuite.bench.plan import plan_suite
        from evalsuite.bench.study import check_study

        ok, text = check_study(plan_suite(suite, _bench_overrides(args)), store)
        print(text, end="")
        return 0 if ok else 1
    if action == "check":
        from evalsuite.bench.gate import check_run

        verdict = check_run(store, suite.name, suite.tolerances, args.run, args.baseline)
        print(verdict.format(), end="")
        return 0 if verdict.ok else 1
    if action == "history":
        from evalsuite.bench.history import history_html, history_table, plot_history

        df = store.history(suite.name)
        if args.metric:
            import fnmatch

            df = df[[any(fnmatch.fnmatch(m, g) for g in args.metric) for m in df["metric"]]]
        print(history_table(df))
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            png = out / "history.png"
            plot_history(df, png)
            from evalsuite.core.io import atomic_write_text

            atomic_write_text(out / "history.html", history_html(df, png.read_bytes()))
            print(f"\nwrote {png} and {out / 'history.html'}")
        return 0
    if action == "baseline":
        from evalsuite.bench.gate import baseline_to_json
        from evalsuite.core.io import atomic_write_text

        info = store.get_run(args.run, suite.name)
        if not info.complete:
            failed = ", ".join(store.failures(info.id))
            raise CLIUsageError(f"run {info.id} is incomplete ({failed} failed); a baseline needs a full run")
        atomic_write_text(args.out, baseline_to_json(suite.name, info, store.metrics(info.id)))
        print(f"wrote {args.out} from run {info.id}")
        return 0
    info = store.get_run(args.run, suite.name)
    store.tag(info.id, args.name)
    print(f"tagged run {info.id} of {suite.name} as {args.name}")
    return 0


def _bench_study_run(args: argparse.Namespace, suite: Any, ov: Any) -> int:
    """``bench run`` on a study: run its unfinished jobs on the chosen engine; 1 when any job failed."""
    from evalsuite.bench.engines import make_engine
    from evalsuite.bench.study import default_runs_dir, run_study

    for flag, value in (("--tag", args.tag), ("--note", args.note), ("--work-dir", args.work_dir)):
        if value:
            raise CLIUsageError(
                f"{flag} is for suites that list models; a study keeps each job in --runs-dir"
            )
    if args.cache:
        raise CLIUsageError("--cache is for suites that list models; a study's jobs always evaluate afresh")
    engine_flags = {
        "ray": [("--ray-address", args.ray_address)],
        "slurm": [
            ("--slurm-partition", args.slurm_partition),
            ("--slurm-time", args.slurm_time),
            ("--slurm-gpus-per-job", args.slurm_gpus_per_job),
            ("--slurm-array-parallelism", args.slurm_array_parallelism),
            ("--slurm-cluster", args.slurm_cluster),
        ],
    }
    for name, flags in engine_flags.items():
        given = [f for f, v in flags if v is not None]
        if given and args.engine != name:
            raise CLIUsageError(f"{given[0]} needs --engine {name}")
    if args.workers is not None and args.workers < 1:
        raise CLIUsageError(f"--workers must be a positive number, got {args.workers}")
    runs_dir = Path(args.runs_dir) if args.runs_dir else default_runs_dir(suite)
    options: dict[str, Any] = {
        "local": {"workers": args.workers},
        "ray": {"address": args.ray_address, "num_cpus": args.workers},
        "slurm": {
            "folder": runs_dir / "_submitit",
            "partition": args.slurm_partition,
            "time": args.slurm_time,
            "gpus_per_job": args.slurm_gpus_per_job,
            "array_parallelism": args.slurm_array_parallelism,
            "cluster": "local" if args.slurm_cluster == "local" else None,
        },
    }[args.engine]
    with make_engine(args.engine, **options) as engine:
        out = run_study(
            suite,
            Path(args.store),
            ov,
            runs_dir,
            engine,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
        )
    done = out.jobs - len(out.failures)
    print(
        f"study {out.suite}: {done} of {out.jobs} jobs done ({len(out.skipped)} finished before, "
        f"{len(out.ran)} ran now), {len(out.failures)} failed; jobs in {out.runs_dir}, "
        f"results in {args.store}"
    )
    if out.failures:
        named = "; ".join(f"{out.names.get(j, j)} ({j}): {r}" for j, r in out.failures.items())
        print(f"evalsuite bench: error: {len(out.failures)} job(s) failed: {named}", file=sys.stderr)
        return 1
    return 0


def _bench_study_view(args: argparse.Namespace) -> int:
    """``bench plan`` (jobs, counts, estimated cost) and ``bench status`` (each job's state)."""
    from evalsuite.bench.plan import axis_summary, estimate, plan_suite
    from evalsuite.bench.suite import load_suite

    suite = load_suite(args.suite, loading=False)
    if not suite.is_study:
        raise CLIUsageError(
            f"bench {args.bench_command} is for study suites (with a [grid]); {suite.name} lists models"
        )
    plan = plan_suite(suite, _bench_overrides(args))
    if args.bench_command == "plan":
        names = {j.job_id: j.name for j in plan.jobs}
        width = max(len(j.name) for j in plan.jobs)
        rev = plan.revision or "unknown"
        print(f"study {plan.suite}: {len(plan.jobs)} jobs (git revision {rev}; job ids hash the code itself)")
        print("axes:")
        print("\n".join(axis_summary(plan)))
        print("jobs (id, name, dense twin):")
        for j in plan.jobs:
            twin = names.get(j.twin, j.twin) if j.twin else "-"
            print(f"  {j.job_id}  {j.name:<{width}}  {twin}")
        print("cost:")
        print("\n".join("  " + line for line in estimate(plan, args.measure, args.device or "auto").lines()))
        return 0
    from evalsuite.bench.store import ResultStore
    from evalsuite.bench.study import default_runs_dir, format_status, other_job_folders, study_status

    runs_dir = Path(args.runs_dir) if args.runs_dir else default_runs_dir(suite)
    store = ResultStore(args.store, create=False) if args.store else None
    try:
        rows = study_status(plan, runs_dir, store)
    finally:
        if store is not None:
            store.close()
    print(format_status(rows, runs_dir, other_job_folders(plan, runs_dir)), end="")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``evalsuite data export``: write the spec's split to an .npz; return 0."""
    from evalsuite.data.export import export_npz

    out = export_npz(args.spec, args.split, args.out, root=args.data_root, download=args.download)
    print(f"wrote {out}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge evaluation shards into one result file, print it and return 0."""
    from evalsuite.battery import merge_shards, save_result
    from evalsuite.core.io import check_output
    from evalsuite.report import format_result

    shards = [Path(s) for s in args.shards]
    check_output(args.out, [*shards, *(s.with_suffix(".npz") for s in shards)])
    result, arrays = merge_shards(args.shards)
    out = save_result(result, arrays, Path(args.out))
    print(format_result(result))
    print(f"\nwrote {out}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List the registered models, schemes, datasets, attacks, OOD scores or metrics; return 0."""
    from evalsuite.core.registry import Registry
    from evalsuite.data import DATASETS
    from evalsuite.models import MODELS
    from evalsuite.sparsity import SCHEMES

    tables: dict[str, Registry[Any]] = {"models": MODELS, "schemes": SCHEMES, "datasets": DATASETS}
    for extra in ("attacks", "ood-scores"):
        reg = _optional_registry(extra)
        if reg is not None:
            tables[extra] = reg
    kinds = [*tables, "metrics"] if args.kind == "all" else [args.kind]
    for kind in kinds:
        if kind not in tables and kind != "metrics":
            raise CLIUsageError(f"unknown kind {kind!r}; choose from {', '.join(tables)}, metrics or all")
        if len(kinds) > 1:
            print(f"{kind}:")
        if kind == "metrics":
            print(_metrics_table())
            continue
        reg = tables[kind]
        width = max(len(n) for n in reg.names())
        for name in reg.names():
            print(f"  {name:<{width}}  {reg.describe(name)}")
    return 0


def _metrics_table() -> str:
    """The metric catalogue: one row of facts per family, its definition on the line below."""
    from evalsuite.metrics.catalogue import describe

    rows = describe()
    cols = ("pattern", "group", "direction", "kind", "ci", "test", "primary")
    head = dict(zip(cols, ("pattern", "group", "direction", "kind", "CI", "test", "primary")))
    widths = {c: max(len(head[c]), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  " + "  ".join(head[c].ljust(widths[c]) for c in cols).rstrip()]
    for r in rows:
        lines.append("  " + "  ".join(r[c].ljust(widths[c]) for c in cols).rstrip())
        lines.append(f"      {r['definition']}")
    return "\n".join(lines)


def _optional_registry(kind: str) -> Any:
    try:
        if kind == "attacks":
            from evalsuite.attacks import ATTACKS

            return ATTACKS
        from evalsuite.ood import OOD_SCORES

        return OOD_SCORES
    except ImportError:
        return None


def _init_spec(args: argparse.Namespace) -> Any:
    from evalsuite.train import InitSpec

    return InitSpec(
        dataset=args.dataset,
        arch=args.arch,
        arch_kwargs=args.arch_kwargs,
        scheme=args.sparse_init,
        density=args.density,
        seed=args.seed if args.seed is not None else 0,
        mask_seed=args.mask_seed,
        data_root=args.data_root,
        download=args.download,
    )


def _check_out(out: str) -> None:
    """Refuse an --out that cannot be a file before any work is done."""
    path = Path(out)
    if path.is_dir():
        raise CLIUsageError(
            f"--out {out} is a folder; give a checkpoint file name such as {path / 'model.pt'}"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIUsageError(f"--out {out}: {parent} is a file, not a folder")
            break


def cmd_init(args: argparse.Namespace) -> int:
    """Write a freshly initialised (optionally sparse) checkpoint to --out and return 0."""
    from evalsuite.models.checkpoint import save_checkpoint
    from evalsuite.train import init_model

    _check_out(args.out)
    model, card, masks = init_model(_init_spec(args))
    path = save_checkpoint(args.out, model, card, masks)
    sp = card.sparsity
    print(
        f"wrote {path}: {card.arch} on {card.dataset}, {sp['scheme']} density {sp['realized_density']:.4f} "
        f"(target {sp['target_density']}), mask {sp['mask_hash'][:19]}"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model from a new init or an init checkpoint, write the checkpoint and return 0."""
    from evalsuite.train import TrainJob, TrainOptions, run_training

    if args.from_init is None and args.dataset is None:
        raise CLIUsageError("train needs --dataset (or --from INIT.pt)")
    if args.from_init is not None and (
        args.arch
        or args.sparse_init != "dense"
        or args.density != 1.0
        or args.seed is not None
        or args.mask_seed is not None
        or args.arch_kwargs
    ):
        raise CLIUsageError(
            "--from takes arch, sparsity and seeds from the init checkpoint; "
            "drop --arch/--arch-kwargs/--sparse-init/--density/--seed/--mask-seed"
        )
    for flag, value in (("--limit-train", args.limit_train), ("--limit-test", args.limit_test)):
        if value is not None and value < 1:
            raise CLIUsageError(f"{flag} must be a positive number of examples, got {value}")
    _check_out(args.out)
    if args.from_init is not None:
        from evalsuite.core.io import check_output

        # the trained checkpoint must never replace the init it starts from
        check_output(args.out, [args.from_init], suffix=None, partner_suffix=None)
    from evalsuite.train.recipe import RECIPE_FIELDS

    overrides = {k: getattr(args, k, None) for k in RECIPE_FIELDS}
    options = TrainOptions(
        out=Path(args.out),
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        resume=args.resume,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        progress=not args.quiet,
    )
    init = _init_spec(args) if args.dataset else None
    job = TrainJob(
        init=init,
        recipe_overrides=overrides,
        options=options,
        from_init=Path(args.from_init) if args.from_init else None,
        trust_checkpoint=args.trust_checkpoint,
        test_data=args.test_data,
        data_root=args.data_root,
        download=args.download,
    )
    card = run_training(job)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    m = card.metrics
    print(
        f"wrote {args.out}: {card.arch} {card.sparsity['scheme']} density "
        f"{card.sparsity['realized_density']:.4f}, "
        f"test accuracy {m['test_accuracy']:.4f} on {m['test_examples']}"
    )
    return 0


def _axis_list(text: str | None, flag: str) -> list[str] | None:
    if text is None:
        return None
    names = [a.strip() for a in text.split(",") if a.strip()]
    if not names and flag == "--rows":
        raise CLIUsageError(f"{flag} wants AXIS,..., got nothing")
    return names


def cmd_table(args: argparse.Namespace) -> int:
    """Pivot a study's results into table.tex/md/csv and figures/."""
    from evalsuite.report import study

    if (args.folder is None) == (args.store is None):
        raise CLIUsageError("give a results folder or --store S --suite NAME (one of them)")
    if args.store is not None and not args.suite:
        raise CLIUsageError("--store needs --suite NAME")
    if args.suite and args.store is None:
        raise CLIUsageError("--suite needs --store S (or give a results folder)")
    if not (0 < args.alpha < 1):
        raise CLIUsageError(f"--alpha must be in (0, 1), got {args.alpha}")
    source = args.folder if args.folder is not None else args.store
    if not Path(source).exists():
        raise CLIUsageError(f"{source}: no such {'folder' if args.folder is not None else 'results store'}")
    study.check_table_target(args.out, [source], args.force)  # before any result is read
    if args.folder is not None:
        frame = study.load_folder(args.folder)
    else:
        from evalsuite.bench.store import ResultStore
        from evalsuite.bench.study import newest_per_point

        with ResultStore(args.store, create=False) as store:
            jobs = store.jobs(args.suite)
        newest, older = newest_per_point(jobs)
        if not newest:
            raise CLIUsageError(
                f"no results found for suite {args.suite!r} in {args.store} ({len(jobs)} job(s), none done)"
            )
        not_done = sum(1 for j in jobs if not (j.state == "done" and j.result_json))
        if not_done:
            print(f"evalsuite table: {not_done} job(s) not done are left out", file=sys.stderr)
        if older:
            print(
                f"evalsuite table: {older} older result(s) of grid points the store holds twice (a rerun "
                "with other code or flags) are left out; each point's newest result is used",
                file=sys.stderr,
            )
        done = [(j.axes, j.result_json or "", j.job_id) for j in newest]
        frame = study.load_pairs(done, where=f"{args.store}:{args.suite}")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    table = study.study_table(
        frame,
        metrics,
        _axis_list(args.rows, "--rows"),
        _axis_list(args.cols, "--cols"),
        alpha=args.alpha,
        decimals=args.decimals,
    )
    out, files, notes = study.write_study(
        table, frame, args.out, force=args.force, inputs=[source], figures=args.figures
    )
    print(study.to_markdown(table))
    for n in notes:
        print(f"note: {n}")
    print(f"wrote {out}/ ({', '.join(files)})")
    return 0


COMMANDS = {
    "ls": cmd_ls,
    "init": cmd_init,
    "train": cmd_train,
    "eval": cmd_eval,
    "merge": cmd_merge,
    "compare": cmd_compare,
    "bench": cmd_bench,
    "table": cmd_table,
    "data": cmd_data,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv``: 0 on success, 2 on usage errors, 130 if interrupted, else the error's code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors and --help: return the code instead of exiting mid-call
        return int(e.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    try:
        return COMMANDS[args.command](args)
    except CLIUsageError as e:
        if args.debug:
            raise
        print(f"evalsuite {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evalsuite {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # broad on purpose: one line for the user; --debug shows the traceback
        if args.debug:
            raise
        from evalsuite.core.errors import EvalsuiteError

        code = e.exit_code if isinstance(e, EvalsuiteError) else 1
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not isinstance(e, EvalsuiteError):
            msg = f"{type(e).__name__}: {msg} (run with --debug for the traceback)"
        print(f"evalsuite {args.command}: error: {msg}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
