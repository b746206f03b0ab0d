"""Grids in suites: expansion, dense twins, include/exclude, job ids, plan cost counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalsuite.bench.grid import canonical_json, expand, job_hash, twin_key
from evalsuite.bench.plan import estimate, plan_suite
from evalsuite.bench.runner import Overrides
from evalsuite.bench.suite import load_suite
from evalsuite.core.errors import UsageError

BATTERY = """
[battery]
checks = ["clean", "calibration"]
limit = 100
"""


def _suite(tmp_path: Path, grid: str, extra: str = BATTERY, name: str = "g") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f'name = "{name}"\n{extra}\n[data]\nid = "digits"\n\n[grid]\n{grid}\n', encoding="utf-8")
    return p


def _plan(tmp_path: Path, grid: str, ov: Overrides | None = None, **kw: object):
    suite = load_suite(str(_suite(tmp_path, grid, **kw)))  # type: ignore[arg-type]
    return plan_suite(suite, ov, revision="rev0", code="code0")


def test_study_digits_expands_to_60_jobs_with_linked_dense_twins():
    plan = plan_suite(load_suite("study-digits"), revision="rev0")
    assert len(plan.jobs) == 2 * 3 * 3 * 3 + 2 * 3
    dense = [j for j in plan.jobs if j.dense]
    assert len(dense) == 6
    by_id = plan.by_id()
    assert len(by_id) == 60 and len({j.name for j in plan.jobs}) == 60
    for j in plan.jobs:
        if j.dense:
            assert j.twin is None and j.axes["density"] == 1.0
            continue
        twin = by_id[j.twin]  # type: ignore[index]
        assert twin.dense and twin_key(twin.axes) == twin_key(j.axes)
        assert {k: v for k, v in twin.axes.items() if k not in ("scheme", "density")} == {
            k: v for k, v in j.axes.items() if k not in ("scheme", "density")
        }
        assert j.train["arch_kwargs"] == {"width": j.axes["width"]}
        assert j.train["sparse_init"] == j.axes["scheme"] and j.train["density"] == j.axes["density"]
    assert set(plan.axes) == {"scheme", "density", "seed", "width"}


def test_paper_grid_has_the_depth_and_width_grids():
    plan = plan_suite(load_suite("paper-cifar10"), revision="rev0")
    # depth: 5 archs at width 16; width: resnet20 at 32/48/64; 6 schemes x 10 densities x 3 seeds; 8 x 3 twins
    assert len(plan.jobs) == 8 * 6 * 10 * 3 + 8 * 3
    nets = {(j.axes["arch"], j.axes["width"]) for j in plan.jobs}
    assert len(nets) == 8 and ("resnet110", 16) in nets and ("resnet20", 64) in nets
    assert ("resnet110", 64) not in nets
    recipe = plan.jobs[0].identity["train"]["recipe"]
    assert recipe["epochs"] == 160 and recipe["milestones"] == [80, 120] and recipe["weight_decay"] == 5e-4


def test_job_ids_are_stable_and_cover_what_changes_the_numbers(tmp_path):
    grid = (
        'dataset = "digits"\nscheme = "erk"\ndensity = [0.1, 0.2]\nseed = [0, 1]\n[grid.recipe]\nepochs = 2'
    )
    a = _plan(tmp_path, grid)
    b = _plan(tmp_path, grid)
    assert [j.job_id for j in a.jobs] == [j.job_id for j in b.jobs]
    assert a.jobs[0].job_id == job_hash(a.jobs[0].identity)
    ids = {j.name: j.job_id for j in a.jobs}
    # the device does not change a job's numbers, so not its id
    assert {j.name: j.job_id for j in _plan(tmp_path, grid, Overrides(device="cpu")).jobs} == ids
    changed = {
        "epochs": _plan(tmp_path, grid.replace("epochs = 2", "epochs = 3")),
        "battery": _plan(tmp_path, grid, extra=BATTERY.replace("limit = 100", "limit = 50")),
        "--limit-train": _plan(tmp_path, grid, Overrides(limit_train=200)),
        "--epochs": _plan(tmp_path, grid, Overrides(epochs=1)),
    }
    for what, plan in changed.items():
        other = {j.name: j.job_id for j in plan.jobs}
        assert other.keys() == ids.keys(), what
        assert not set(other.values()) & set(ids.values()), what
    # another revision of the same code (a docs-only commit) keeps the ids; other code changes them all
    same_code = plan_suite(load_suite(str(tmp_path / "g.toml")), None, revision="rev1", code="code0")
    assert {j.name: j.job_id for j in same_code.jobs} == ids
    other_code = plan_suite(load_suite(str(tmp_path / "g.toml")), None, revision="rev0", code="code1")
    assert not {j.job_id for j in other_code.jobs} & set(ids.values())
    assert a.jobs[0].identity["code"] == "code0" and "git_revision" not in a.jobs[0].identity


def test_npz_data_enters_the_id_by_content_not_path(tmp_path):
    rng = np.random.default_rng(0)
    train = tmp_path / "train.npz"
    np.savez(train, x=rng.integers(0, 255, (40, 8, 8, 1), dtype=np.uint8), y=np.arange(40) % 4)
    grid = f'dataset = "npz:{train}"\nscheme = "erk"\ndensity = 0.1\n[grid.recipe]\nepochs = 1'
    first = _plan(tmp_path, grid)
    ident = first.jobs[0].identity["train"]["data"]
    assert ident["spec"] == "npz" and len(ident["sha256"]) == 64 and str(train) not in canonical_json(ident)
    moved = tmp_path / "elsewhere.npz"
    moved.write_bytes(Path(train).read_bytes())
    same = _plan(tmp_path, grid.replace(str(train), str(moved)))
    assert [j.job_id for j in same.jobs] == [j.job_id for j in first.jobs]
    with np.load(train) as z:
        x, y = z["x"].copy(), z["y"].copy()
    x[0, 0, 0] ^= 1
    np.savez(moved, x=x, y=y)
    edited = _plan(tmp_path, grid.replace(str(train), str(moved)))
    assert edited.jobs[0].job_id != first.jobs[0].job_id


def test_exclude_include_and_twins(tmp_path):
    grid = """dataset = "digits"
scheme = ["erk", "er"]
density = [0.1, 0.2]
seed = [0, 1]
[grid.arch_kwargs]
width = 8
[[grid.exclude]]
scheme = "er"
density = [0.1, 0.2]
seed = 1
[[grid.include]]
scheme = "uniform"
density = 0.3
width = 16
"""
    plan = _plan(tmp_path, grid)
    sparse = [j for j in plan.jobs if not j.dense]
    keys = {(j.axes["scheme"], j.axes["density"], j.axes["seed"], j.axes["width"]) for j in sparse}
    assert ("er", 0.1, 1, 8) not in keys and ("er", 0.2, 1, 8) not in keys and ("er", 0.1, 0, 8) in keys
    # the include takes every seed (an axis it does not name) and makes width an axis
    assert {k for k in keys if k[0] == "uniform"} == {("uniform", 0.3, 0, 16), ("uniform", 0.3, 1, 16)}
    assert "width" in plan.axes
    assert len(sparse) == 2 * 2 * 2 - 2 + 2
    dense = {(j.axes["seed"], j.axes["width"]) for j in plan.jobs if j.dense}
    assert dense == {(0, 8), (1, 8), (0, 16), (1, 16)}
    assert all(j.twin for j in sparse)


def test_epochs_override_scales_the_grid_milestones(tmp_path):
    grid = (
        'dataset = "digits"\nscheme = "erk"\ndensity = 0.1\n[grid.recipe]\nepochs = 10\nmilestones = [5, 8]'
    )
    plan = _plan(tmp_path, grid, Overrides(epochs=2))
    recipe = plan.jobs[0].identity["train"]["recipe"]
    assert recipe["epochs"] == 2 and recipe["milestones"] == [1, 2]


def test_milestones_axis_is_a_list_of_lists(tmp_path):
    grid = 'dataset = "digits"\n[grid.recipe]\nepochs = 10\nmilestones = [[5, 8], [6, 9]]'
    plan = _plan(tmp_path, grid)
    assert sorted(j.axes["milestones"] for j in plan.jobs) == [[5, 8], [6, 9]]
    assert len({j.name for j in plan.jobs}) == 2


@pytest.mark.parametrize(
    ("grid", "says"),
    [
        ('dataset = "digits"\nwidth = 3', "unknown key 'width' in [grid]"),
        ('scheme = "erk"\ndensity = 0.1', "needs a dataset"),
        ('dataset = "digits"\nscheme = "dense"\ndensity = 0.5', "a dense net keeps every weight"),
        ('dataset = "digits"\nscheme = "erk"\ndensity = 1.0', "density is the fraction kept"),
        ('dataset = "digits"\nseed = []', "seed = [] leaves no jobs"),
        ('dataset = "digits"\nseed = [1, 1]', "lists a value twice"),
        ('dataset = "digits"\n[grid.recipe]\nepoch = 3', "unknown recipe field 'epoch'"),
        ('dataset = "digits"\n[grid.train]\ndevice = "cpu"', "unknown key 'device' in [grid.train]"),
        ('dataset = "digits"\n[[grid.exclude]]\nwidth = 8', "not an axis of the grid"),
        (
            'dataset = "digits"\nscheme = "erk"\ndensity = 0.1\n[[grid.exclude]]\nscheme = "erk"',
            "leave no jobs",
        ),
        ('dataset = "digits"\ngpus = 0', "gpus must be a positive integer"),
        ('dataset = "digits"\n[grid.arch_kwargs]\nseed = [1, 2]', "named twice"),
    ],
)
def test_bad_grids_are_refused_in_one_line(tmp_path, grid, says):
    with pytest.raises(UsageError, match=None) as e:
        _plan(tmp_path, grid)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_grid_and_models_are_exclusive_and_code_needs_trust(tmp_path):
    p = _suite(tmp_path, 'dataset = "digits"')
    p.write_text(p.read_text() + '\n[[models]]\nname = "a"\ncheckpoint = "x.pt"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="not both"):
        load_suite(str(p))
    code = _suite(tmp_path, 'dataset = "digits"\narch = "net.py:build"', name="code")
    with pytest.raises(UsageError, match=r"names code to run.*--trust-suite"):
        load_suite(str(code))
    assert load_suite(str(code), trust=True).is_study
    assert load_suite(str(code), loading=False).is_study


def test_expand_rejects_two_jobs_with_one_name():
    # the same point twice (an include repeating the product) is one job, not two
    plan = expand(
        {"dataset": "digits", "scheme": "erk", "density": 0.1, "include": [{"scheme": "erk"}]},
        suite="s",
        eval_data={},
        battery={},
        battery_identity={},
        revision="r",
    )
    assert len(plan.jobs) == 2  # the sparse job and its twin


def test_estimate_counts_flops_by_hand(tmp_path):
    grid = 'dataset = "digits"\narch = "test_mlp"\nscheme = "erk"\ndensity = 0.5\n[grid.recipe]\nepochs = 3'
    plan = _plan(tmp_path, grid, extra=BATTERY.replace('["clean", "calibration"]', '["clean"]'))
    est = estimate(plan)
    (net,) = est.nets
    # test_mlp on 8x8 digits: Linear(64, 32) and Linear(32, 10); 2 FLOPs per multiply-add
    assert net.flops_per_image == 2 * (64 * 32 + 32 * 10)
    assert net.params == 64 * 32 + 32 + 32 * 10 + 10
    n_train = 1347  # the digits training split
    assert est.train_flops == pytest.approx(2 * 3.0 * net.flops_per_image * n_train * 3)
    assert est.epochs == 6 and est.jobs == 2 and est.train_hours is None
    assert any("2 jobs" in line for line in est.lines())
