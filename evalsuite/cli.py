"""The ``evalsuite`` command: argparse subcommands over the library. Each parses, calls one function,
writes files. Heavy imports (torch) happen inside the subcommand, so ``--help`` is instant.

Exit codes: 0 ok, 1 runtime failure, 2 usage error. No traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


class CLIUsageError(Exception):
    pass


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
    g.add_argument("--sparse-init", default="dense", help="layer-wise density scheme (evalsuite ls schemes)")
    g.add_argument(
        "--density", type=_density, default=1.0, help="fraction of prunable weights kept, in (0, 1]"
    )
    g.add_argument("--seed", type=int, default=0, help="weight init, data order and augmentation seed")
    g.add_argument("--mask-seed", type=int, help="seed of the mask generator (default: --seed)")
    d = p.add_argument_group("data")
    d.add_argument("--data-root", help="where torchvision datasets live (default ~/.cache/evalsuite/data)")
    d.add_argument("--download", action="store_true", help="download torchvision datasets if missing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalsuite",
        description="Does a randomly pruned network replace its dense twin?",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_ls = sub.add_parser("ls", help="list registered models, schemes, datasets, ...")
    p_ls.add_argument("kind", nargs="?", default="all", help="models | schemes | datasets | all")

    p_init = sub.add_parser(
        "init",
        help="write a randomly pruned network at initialization",
        epilog=EPILOG_INIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_init_args(p_init, dataset_required=True)
    p_init.add_argument("--out", required=True, help="checkpoint to write")

    p_train = sub.add_parser(
        "train",
        help="train a dense or randomly pruned network",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_init_args(p_train, dataset_required=False)
    p_train.add_argument(
        "--from", dest="from_init", help="start from a checkpoint written by `evalsuite init`"
    )
    p_train.add_argument(
        "--trust-checkpoint", action="store_true", help="allow unpickling objects from --from"
    )
    p_train.add_argument("--out", required=True, help="checkpoint to write (log: OUT.log.jsonl)")
    p_train.add_argument("--resume", action="store_true", help="continue from OUT's last completed epoch")
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
    return parser


def cmd_ls(args: argparse.Namespace) -> int:
    from evalsuite.data import DATASETS
    from evalsuite.models import MODELS
    from evalsuite.sparsity import SCHEMES

    tables = {"models": MODELS, "schemes": SCHEMES, "datasets": DATASETS}
    for extra in ("attacks", "ood-scores"):
        reg = _optional_registry(extra)
        if reg is not None:
            tables[extra] = reg
    kinds = list(tables) if args.kind == "all" else [args.kind]
    for kind in kinds:
        if kind not in tables:
            raise CLIUsageError(f"unknown kind {kind!r}; choose from {', '.join(tables)} or all")
        reg = tables[kind]
        if len(kinds) > 1:
            print(f"{kind}:")
        width = max(len(n) for n in reg.names())
        for name in reg.names():
            print(f"  {name:<{width}}  {reg.describe(name)}")
    return 0


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
        seed=args.seed,
        mask_seed=args.mask_seed,
        data_root=args.data_root,
        download=args.download,
    )


def cmd_init(args: argparse.Namespace) -> int:
    from evalsuite.models.checkpoint import save_checkpoint
    from evalsuite.train import init_model

    model, card, masks = init_model(_init_spec(args))
    path = save_checkpoint(args.out, model, card, masks)
    sp = card.sparsity
    print(
        f"wrote {path}: {card.arch} on {card.dataset}, {sp['scheme']} density {sp['realized_density']:.4f} "
        f"(target {sp['target_density']}), mask {sp['mask_hash'][:19]}"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from evalsuite.train import TrainJob, TrainOptions, run_training

    if args.from_init is None and args.dataset is None:
        raise CLIUsageError("train needs --dataset (or --from INIT.pt)")
    if args.from_init is not None and (args.arch or args.sparse_init != "dense" or args.density != 1.0):
        raise CLIUsageError(
            "--from takes arch and sparsity from the init checkpoint; drop --arch/--sparse-init/--density"
        )
    overrides = {
        k: getattr(args, k)
        for k in (
            "epochs",
            "batch_size",
            "lr",
            "momentum",
            "weight_decay",
            "nesterov",
            "milestones",
            "gamma",
            "augment",
            "label_smoothing",
        )
    }
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
    )
    card = run_training(job)
    m = card.metrics
    print(
        f"wrote {args.out}: {card.arch} {card.sparsity['scheme']} density "
        f"{card.sparsity['realized_density']:.4f}, "
        f"test accuracy {m['test_accuracy']:.4f} on {m['test_examples']}"
    )
    return 0


COMMANDS = {"ls": cmd_ls, "init": cmd_init, "train": cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    except Exception as e:  # noqa: BLE001  (one line for the user; --debug shows the traceback)
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
