"""The metric catalogue resolves every name the battery writes, and its facts agree with the functions."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.metrics import catalogue as K
from evalsuite.metrics import classification as C
from evalsuite.metrics import ood as O

NAMES = {
    "accuracy": ("accuracy", True, "clean"),
    "nll": ("nll", False, "clean"),
    "brier": ("brier", False, "clean"),
    "ece": ("ece", False, "calibration"),
    "ece_adaptive": ("ece_adaptive", False, "calibration"),
    "mce": ("mce", False, "calibration"),
    "ood/svhn/msp/auroc": ("ood_auroc", True, "ood"),
    "ood/svhn/energy/aupr_in": ("ood_aupr_in", True, "ood"),
    "ood/a-b_c/maxlogit/aupr_out": ("ood_aupr_out", True, "ood"),
    "ood/svhn/energy/fpr95": ("ood_fpr95", False, "ood"),
    "ood/svhn/energy/fpr95_ood": ("ood_fpr95_ood", False, "ood"),
    "robust/pgd_linf/8_255/accuracy": ("robust_accuracy", True, "robust"),
    "robust/pgd_l2/0.5/accuracy": ("robust_accuracy", True, "robust"),
    "sparsity/density": ("sparsity_density", False, "sparsity"),
    "sparsity/macs_sparse": ("sparsity_macs_sparse", False, "sparsity"),
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_lookup(name):
    key, hib, group = NAMES[name]
    ref = K.lookup(name)
    assert (ref.family.key, ref.higher_is_better, ref.group) == (key, hib, group)
    assert K.higher_is_better(name) is hib and K.group_of(name) == group


@pytest.mark.parametrize("name", ["acc", "ood/svhn/msp", "robust/fgsm/accuracy", "ood/a/b/c/auroc", ""])
def test_unknown_names(name):
    with pytest.raises(K.UnknownMetric, match="evalsuite ls metrics"):
        K.lookup(name)
    assert K.find(name) is None


def test_functions_and_arrays_agree():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.1, 1, 200)
    correct = rng.uniform(size=200) < conf
    s_id, s_ood = rng.normal(size=200), rng.normal(0.5, 1, 150)
    arrays = {
        "id/correct": correct,
        "id/confidence": conf,
        "id/score/msp": s_id,
        "ood/svhn/score/msp": s_ood,
    }
    ref = K.lookup("ece")
    assert ref.stat_fn(10)(*[arrays[k] for k in ref.array_keys()]) == C.ece(conf, correct, n_bins=10)
    ref = K.lookup("ood/svhn/msp/fpr95_ood")
    assert ref.stat_fn()(*[arrays[k] for k in ref.array_keys()]) == O.fpr95_ood(s_id, s_ood)
    assert K.lookup("accuracy").stat_fn()(correct) == correct.mean()


def test_primary_family():
    names = [
        "accuracy",
        "nll",
        "brier",
        "ece",
        "mce",
        "ood/svhn/msp/auroc",
        "ood/svhn/energy/auroc",
        "ood/cifar100/msp/auroc",
        "ood/svhn/msp/fpr95",
        "robust/pgd_linf/1_255/accuracy",
        "robust/pgd_linf/8_255/accuracy",
        "robust/fgsm/8_255/accuracy",
        "robust/pgd_l2/0.125/accuracy",
        "robust/pgd_l2/0.5/accuracy",
        "sparsity/density",
    ]
    assert K.primary_metrics(names) == {
        "accuracy",
        "nll",
        "ece",
        "ood/svhn/msp/auroc",
        "ood/cifar100/msp/auroc",
        "robust/pgd_linf/8_255/accuracy",
        "robust/fgsm/8_255/accuracy",
        "robust/pgd_l2/0.5/accuracy",
    }
    assert "ood/svhn/energy/auroc" in K.primary_metrics(names, primary_score="energy")


def test_mce_is_descriptive_and_order():
    assert not K.lookup("mce").family.tested
    names = ["sparsity/density", "robust/fgsm/8_255/accuracy", "ece", "ood/s/msp/auroc", "nll", "accuracy"]
    assert sorted(names, key=K.sort_key) == [
        "accuracy",
        "nll",
        "ece",
        "ood/s/msp/auroc",
        "robust/fgsm/8_255/accuracy",
        "sparsity/density",
    ]
    assert K.eps_value("8_255") == pytest.approx(8 / 255) and K.eps_value("0.5") == 0.5
    assert [p for p, _ in K.legend(["nll", "accuracy"])] == ["accuracy", "nll"]
