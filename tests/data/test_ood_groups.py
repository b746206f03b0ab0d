"""``--ood near:...,far:...``: grouped OOD specs, their names, and the errors."""

from __future__ import annotations

import pytest

from evalsuite.core.errors import UsageError
from evalsuite.data.ood_groups import OODItem, ood_groups, ood_set_name, parse_ood_groups


def test_groups_run_until_the_next_group() -> None:
    got = parse_ood_groups("near:cifar100,far:svhn,photos")
    assert got == [
        OODItem("near", "cifar100", "cifar100"),
        OODItem("far", "svhn", "svhn"),
        OODItem("far", "photos", "photos"),
    ]
    assert ood_groups(got) == {"near": ("cifar100",), "far": ("svhn", "photos")}


def test_ungrouped_specs_and_kinds_with_arguments_stay_specs() -> None:
    got = parse_ood_groups(["gaussian:500,npz:/d/tin/test.npz", "near:imagenet=npz:/x/y.npz,uniform:9"])
    assert got == [
        OODItem(None, "gaussian", "gaussian:500"),
        OODItem(None, "tin", "npz:/d/tin/test.npz"),
        OODItem("near", "imagenet", "npz:/x/y.npz"),
        OODItem("near", "uniform", "uniform:9"),
    ]
    assert ood_groups(got) == {"near": ("imagenet", "uniform")}
    assert parse_ood_groups(None) == [] and parse_ood_groups(" , ") == []
    assert parse_ood_groups("far:npz:a.npz")[0] == OODItem("far", "a", "npz:a.npz")


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("svhn", "svhn"),
        ("gaussian:100", "gaussian"),
        ("npz:/a/b/test.npz", "b"),  # a split file is named after its folder
        ("npz:/a/b/c.npz", "c"),
        ("folder:/x/y", "y"),
        ("in=npz:q.npz", "in"),
    ],
)
def test_set_names(spec: str, name: str) -> None:
    # the battery names its OOD sets (metric names ood/<name>/...) with this function
    assert ood_set_name(spec) == (name, spec.partition("=")[2] or spec)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("near:", "names no OOD set"),
        ("near:svhn,far:svhn", "svhn repeats"),
        ("gausian:500", "did you mean gaussian"),
    ],
)
def test_bad_groups(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_ood_groups(text)
