"""``evalsuite ls metrics`` prints the whole metric catalogue with each family's facts and definition."""

from __future__ import annotations

from evalsuite.cli import main
from evalsuite.metrics import catalogue as K


def test_ls_metrics_prints_every_family(capsys):
    assert main(["ls", "metrics"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["pattern", "group", "direction", "kind", "CI", "test", "primary"]
    for fam, row in zip(K.FAMILIES, K.describe()):
        facts = next(ln for ln in lines if ln.split()[:1] == [fam.pattern])
        assert facts.split() == [
            row[c] for c in ("pattern", "group", "direction", "kind", "ci", "test", "primary")
        ]
        assert lines[lines.index(facts) + 1].strip() == fam.definition
    assert "fpr95_ood" in out and "lower" in next(ln for ln in lines if "fpr95_ood" in ln)


def test_ls_all_ends_with_metrics_and_bad_kind_is_one_line(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert "metrics:" in out and out.index("metrics:") > out.index("models:")
    assert main(["ls", "metric"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evalsuite ls: error:") and "metrics" in err[0]
