"""The committed checkpoints are what checkpoints/README.md says: rerunning its commands reproduces them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from evalsuite.cli import main
from evalsuite.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
README = REPO / "checkpoints" / "README.md"


def _commands() -> list[list[str]]:
    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "checkpoints/README.md must hold the commands in a bash block"
    lines = block.group(1).strip().splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("evalsuite")]


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: a[a.index("--out") + 1])
def test_readme_commands_reproduce_checkpoints(argv, tmp_path, capsys):
    committed = REPO / argv[argv.index("--out") + 1]
    argv = list(argv)
    argv[argv.index("--out") + 1] = str(tmp_path / committed.name)
    assert main(argv) == 0, capsys.readouterr().err
    ref_model, ref_card, ref_masks = load_checkpoint(committed)
    new_model, new_card, new_masks = load_checkpoint(tmp_path / committed.name)
    assert new_card.sparsity["mask_hash"] == ref_card.sparsity["mask_hash"]
    assert new_card.recipe == ref_card.recipe and new_card.arch == ref_card.arch
    assert new_masks.keys() == ref_masks.keys()
    ref_sd, new_sd = ref_model.state_dict(), new_model.state_dict()
    for k in ref_sd:
        torch.testing.assert_close(new_sd[k], ref_sd[k], rtol=1e-3, atol=1e-4, msg=k)
    assert new_card.metrics["test_accuracy"] == pytest.approx(ref_card.metrics["test_accuracy"], abs=0.005)
