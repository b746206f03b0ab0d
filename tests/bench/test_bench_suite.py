"""Suite files: the shipped suites parse; unknown keys and missing models name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.bench.plan import plan_suite
from evalsuite.bench.suite import SUITE_DIR, load_suite, resolve_suite_path
from evalsuite.core.errors import UsageError


@pytest.mark.parametrize(
    "name", ["smoke", "cifar10-resnet20", "cifar10-width", "paper-cifar10", "study-digits"]
)
def test_shipped_suites_parse(name):
    suite = load_suite(name)
    assert suite.name == name and (bool(suite.models) != suite.is_study)
    assert suite.path == SUITE_DIR / f"{name}.toml"


def test_cifar_suites_are_the_papers_setting():
    r20 = load_suite("cifar10-resnet20")
    assert [m.name for m in r20.models] == ["dense", "erk-0.05", "erk-0.1", "erk-0.2"]
    assert {m.train["seed"] for m in r20.models} == {1}
    assert r20.data["ood"] == ["svhn", "cifar100"]
    width = plan_suite(load_suite("cifar10-width"), revision="r")
    grid = {(j.train["arch_kwargs"]["width"], j.train["density"]) for j in width.jobs}
    assert grid == {(w, d) for w in (8, 16, 24, 32) for d in (0.05, 0.1, 0.2, 1.0)}
    assert {j.train["seed"] for j in width.jobs} == {1} and len(width.jobs) == 16


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_unknown_key_names_file_and_line(tmp_path):
    p = _write(tmp_path, 'name = "x"\n\n[battery]\nchecks = ["clean"]\nepz = ["8/255"]\n')
    with pytest.raises(UsageError, match=rf"{p}:5: unknown key 'epz' in \[battery\]"):
        load_suite(str(p))


def test_unknown_model_key_and_missing_checkpoint(tmp_path):
    p = _write(
        tmp_path,
        '[[models]]\nname = "a"\ncheckpoint = "a.pt"\n\n[[models]]\nname = "b"\ncheckpont = "b.pt"\n',
    )
    (tmp_path / "a.pt").write_bytes(b"x")
    with pytest.raises(UsageError, match=rf"{p}:7: unknown key 'checkpont'"):
        load_suite(str(p))
    p = _write(
        tmp_path,
        '[[models]]\nname = "a"\ncheckpoint = "a.pt"\n\n[[models]]\nname = "b"\ncheckpoint = "nope.pt"\n',
    )
    with pytest.raises(UsageError, match=rf"{p}:7: model 'b': checkpoint nope.pt not found"):
        load_suite(str(p))


def test_bad_tolerance_and_no_models(tmp_path):
    p = _write(
        tmp_path, '[tolerances]\n"ece" = 0.1\n[[models]]\nname = "a"\ntrain = { dataset = "digits" }\n'
    )
    with pytest.raises(UsageError, match=rf"{p}:2: tolerance for 'ece'"):
        load_suite(str(p))
    with pytest.raises(UsageError, match="no \\[\\[models\\]\\]"):
        load_suite(str(_write(tmp_path, 'name = "empty"\n')))
    with pytest.raises(UsageError, match="not valid TOML"):
        load_suite(str(_write(tmp_path, "name = \n")))


def test_unknown_suite_name_lists_known():
    with pytest.raises(UsageError, match="smoke"):
        resolve_suite_path("smokey")


def test_trust_and_code_only_from_the_caller(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"x")
    text = '[[models]]\nname = "a"\ncheckpoint = "a.pt"\narch = "pkg.mod:build"\n'
    p = _write(tmp_path, text)
    want = rf"{p}:4: model 'a': arch = 'pkg.mod:build' names code.*--trust-suite"
    with pytest.raises(UsageError, match=want):
        load_suite(str(p))
    assert load_suite(str(p), trust=True).models[0].load["arch"] == "pkg.mod:build"
    assert not load_suite(str(p), loading=False).checked_for_run  # read for its name only
    p = _write(tmp_path, text.replace('arch = "pkg.mod:build"', 'arch = "resnet20"'))
    assert load_suite(str(p)).checked_for_run  # a zoo name needs no trust
    p = _write(tmp_path, text.replace('arch = "pkg.mod:build"', 'trust_checkpoint = "yes"'))
    with pytest.raises(UsageError, match=rf"{p}:4: model 'a': trust_checkpoint must be true or false"):
        load_suite(str(p), trust=True)
    p = _write(tmp_path, text.replace('arch = "pkg.mod:build"', "trust_checkpoint = false"))
    assert load_suite(str(p)).models[0].load["trust_checkpoint"] is False
