"""The first-day contract, shared by every table in this folder: bad input gets one line on stderr, a non-zero
exit, no traceback, and every input file is byte-identical afterwards.

A table is a list of ``Case``; ``check_case`` runs one through the real CLI (``evalsuite.cli.main``, in
process, so the suite stays fast) and checks the contract plus the case's own expectations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalsuite.cli import main

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "checkpoints"


@dataclass(frozen=True)
class Case:
    """``argv`` may hold ``{tmp}`` (the test's tmp folder) and ``{repo}``; ``setup(tmp)`` builds inputs and
    returns the paths that must stay byte-identical; ``expect`` is a substring of the one error line;
    ``code`` the exit status (any non-zero when None); ``after(tmp)`` may check more."""

    id: str
    argv: Sequence[str]
    expect: str
    setup: Callable[[Path], Sequence[Path]] | None = None
    code: int | None = None
    after: Callable[[Path], None] | None = None
    inputs: Sequence[str] = field(default_factory=tuple)


def _digest(path: Path) -> str | None:
    if path.is_dir():
        return "dir:" + ",".join(
            sorted(f"{p.relative_to(path)}={_digest(p)}" for p in path.rglob("*") if p.is_file())
        )
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(arg: str, tmp: Path) -> str:
    return arg.replace("{tmp}", str(tmp)).replace("{repo}", str(REPO))


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def check_case(case: Case, tmp: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``case``; assert the contract; return the error line."""
    watched: list[Path] = list(case.setup(tmp)) if case.setup else []
    watched += [Path(_fill(p, tmp)) for p in case.inputs]
    before = {p: _digest(p) for p in watched}
    code, _, err = run_cli([_fill(a, tmp) for a in case.argv], capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    assert code != 0, f"{case.id}: exit 0, stderr {err!r}"
    if case.code is not None:
        assert code == case.code, f"{case.id}: exit {code}, expected {case.code}; stderr {err!r}"
    assert "Traceback" not in err, f"{case.id}: traceback\n{err}"
    assert len(errors) == 1, f"{case.id}: expected one error line, got {lines!r}"
    assert case.expect.lower() in errors[0].lower(), f"{case.id}: {case.expect!r} not in {errors[0]!r}"
    for p, d in before.items():
        assert _digest(p) == d, f"{case.id}: input {p} changed"
    if case.after:
        case.after(tmp)
    return errors[0]


def copy_file(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def params(cases: Sequence[Case]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])
