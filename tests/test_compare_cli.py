"""`evalsuite compare` end to end: the golden report on the committed checkpoints, and its bad inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from evalsuite.cli import main

REPO = Path(__file__).resolve().parents[1]
DENSE = str(REPO / "checkpoints" / "digits-dense.pt")
SPARSE = str(REPO / "checkpoints" / "digits-erk-0.1.pt")
GOLDEN = Path(__file__).parent / "expect" / "compare_digits.json"
FAST = ["--eps", "0,8/255", "--eps-l2", "0.5", "--pgd-steps", "3", "--limit", "120", "-q"]
NB = ["--n-boot", "200"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def _digest(comp: dict) -> dict:
    """What the golden file pins: every value, delta, adjusted p and verdict, rounded; the headline."""
    out = {}
    for row in comp["metrics"]:
        entry = {
            m: round(v["value"], 6) if v["value"] is not None else None for m, v in row["values"].items()
        }
        for m, d in row["deltas"].items():
            entry[f"delta:{m}"] = None if d["delta"] is None else round(d["delta"], 6)
            entry[f"p_adjusted:{m}"] = None if d.get("p_adjusted") is None else round(d["p_adjusted"], 4)
            entry[f"verdict:{m}"] = d.get("verdict")
        entry["family"] = row["family"]
        out[row["name"]] = entry
    for h in comp["headlines"]:
        out[f"headline:{h['model']}"] = {m["metric"]: m["verdict"] for m in h["metrics"]} | {"": h["verdict"]}
    return out


def test_golden_report_on_committed_checkpoints(tmp_path, capsys):
    """The main job, with the default battery; EVALSUITE_REGENERATE=1 rewrites the golden file."""
    out = tmp_path / "report"
    code = main(["compare", DENSE, SPARSE, "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name in ("report.md", "report.html", "tables.tex", "metrics.csv", "comparison.json"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "plots").glob("*.png")) and list((out / "plots").glob("*.pdf"))
    comp = json.loads((out / "comparison.json").read_text())
    assert comp["reference"] == "digits-dense"
    digest = _digest(comp)
    if os.environ.get("EVALSUITE_REGENERATE") == "1":
        GOLDEN.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert digest.keys() == golden.keys()
    for metric, entry in golden.items():
        for key, want in entry.items():
            got = digest[metric][key]
            if isinstance(want, float):
                tol = 2e-3 if key.startswith("p_adjusted") else 1e-5
                assert got == pytest.approx(want, abs=tol), (metric, key)
            else:
                assert got == want, (metric, key)
    assert "accuracy" in captured.out and "digits-erk-0.1" in captured.out


def test_mixed_inputs_failed_model_and_refusals(tmp_path, capsys):
    r_dense = tmp_path / "dense.json"
    assert main(["eval", DENSE, *FAST, "--out", str(r_dense)]) == 0
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x00garbage")
    out = tmp_path / "rep"
    code = main(["compare", str(r_dense), SPARSE, str(broken), *FAST, *NB, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "broken" in err and "corrupt" in err
    comp = json.loads((out / "comparison.json").read_text())
    status = {m["name"]: m["status"] for m in comp["models"]}
    assert status == {"digits-dense": "ok", "digits-erk-0.1": "ok", "broken": "failed"}
    assert "broken" in (out / "report.md").read_text()
    # an existing folder is refused without --force, and left alone
    before = (out / "comparison.json").read_bytes()
    assert main(["compare", str(r_dense), SPARSE, *FAST, *NB, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "comparison.json").read_bytes() == before
    assert main(["compare", str(r_dense), SPARSE, *FAST, *NB, "--out", str(out), "--force"]) == 0
    # different battery settings are refused, naming what differs
    code = main(
        [
            "compare",
            str(r_dense),
            SPARSE,
            *FAST[:-3],
            "--n-boot",
            "200",
            "--limit",
            "60",
            "-q",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 2 and "different" in capsys.readouterr().err


def test_different_datasets_refused(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["eval", DENSE, *FAST, "--out", str(a)]) == 0
    rng = np.random.default_rng(0)
    npz = tmp_path / "other.npz"
    np.savez(npz, x=rng.integers(0, 255, (120, 8, 8, 1), dtype=np.uint8), y=np.arange(120) % 10)
    assert main(["eval", SPARSE, *FAST, "--data", f"npz:{npz}", "--ood", "gaussian:50", "--out", str(b)]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), *NB, "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "different data" in err and len(err.strip().splitlines()) == 1


def test_result_of_another_schema_refused(tmp_path, capsys):
    a = tmp_path / "a.json"
    assert main(["eval", DENSE, *FAST, "--out", str(a)]) == 0
    d = json.loads(a.read_text())
    d["schema_version"] = 2
    b = tmp_path / "b.json"
    b.write_text(json.dumps(d))
    shutil.copy(a.with_suffix(".npz"), b.with_suffix(".npz"))
    capsys.readouterr()
    code = main(["compare", str(a), str(b), *NB, "--out", str(tmp_path / "r"), "-q"])
    assert code == 1
    assert "schema version 2" in capsys.readouterr().err


def test_seed_groups(tmp_path, capsys):
    paths = {}
    for scheme, density in (("dense", "1"), ("erk", "0.1")):
        for seed in (0, 1):
            p = tmp_path / f"{scheme}{seed}.pt"
            args = [
                "-q",
                "train",
                "--dataset",
                "digits",
                "--epochs",
                "2",
                "--seed",
                str(seed),
                "--out",
                str(p),
            ]
            if scheme == "erk":
                args += ["--sparse-init", "erk", "--density", density]
            assert main(args) == 0
            paths.setdefault(scheme, []).append(str(p))
    out = tmp_path / "rep"
    code = main(
        [
            "compare",
            "--group",
            "dense=" + ",".join(paths["dense"]),
            "--group",
            "erk=" + ",".join(paths["erk"]),
            *FAST,
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    comp = json.loads((out / "comparison.json").read_text())
    acc = next(r for r in comp["metrics"] if r["name"] == "accuracy")
    assert acc["seed_level"]["dense"]["n"] == 2 and acc["values"]["erk"]["std"] is not None
    assert acc["deltas"]["erk"]["test"].startswith("paired t-test over seeds 0, 1")
    assert (
        "paired t-test over seeds 0, 1 (both groups have exactly these seeds)"
        in (out / "report.md").read_text()
    )
    assert comp["example_level"]["reference"].startswith("dense")


def test_compare_usage_errors(tmp_path, capsys):
    assert main(["compare", DENSE]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["compare", DENSE, SPARSE, "--n-boot", "5", "--out", str(tmp_path / "r")]) == 2
    assert (
        main(["compare", DENSE, SPARSE, "--reference", "nope", *FAST, *NB, "--out", str(tmp_path / "r")]) == 2
    )
    assert "nope" in capsys.readouterr().err
    for bad, says in (
        (["--margin", "accuracy=-1"], "--margin wants METRIC=NUMBER >= 0"),
        (["--margin", "bogus=0.1"], "not a metric family or metric name"),
        (["--primary", ","], "--primary wants METRIC"),
        (["--correction", "bonferroni"], "invalid choice"),
    ):
        assert main(["compare", DENSE, SPARSE, *bad, "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_readme_excerpt_matches_the_example_report():
    """Every row of README's excerpt stands verbatim in the committed example report."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    report = (repo / "reports" / "example-digits" / "report.md").read_text(encoding="utf-8")
    excerpt = readme[readme.index("An excerpt of that report") : readme.index("## Does the pruned net")]
    rows = [ln for ln in excerpt.splitlines() if ln.startswith(("| `", "- "))]
    assert len(rows) >= 8
    for row in rows:
        assert row in report, row
