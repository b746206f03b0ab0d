"""Pure metric functions on per-example arrays: numpy in, Python floats out, no torch.

``CONVENTIONS`` (calibration conventions plus the OOD sign convention) is meant to be written into every
result. ``HIGHER_IS_BETTER`` carries the direction of every scalar metric, keyed by its namespaced result
name, so reports can draw arrows and decide "better" without knowing the metric.
"""

from evalsuite.metrics.classification import (
    CONVENTIONS as CLASSIFICATION_CONVENTIONS,
)
from evalsuite.metrics.classification import (
    DEFAULT_BINS,
    CalibrationBins,
    accuracy,
    brier,
    calibration_bins,
    ece,
    ece_adaptive,
    log_softmax,
    mce,
    nll,
    softmax,
    top_label,
)
from evalsuite.metrics.ood import CONVENTION as OOD_CONVENTION
from evalsuite.metrics.ood import aupr_in, aupr_out, auroc, fpr95, fpr_at_tpr

# Everything a result should record about how its numbers were computed (JSON-ready).
CONVENTIONS: dict[str, object] = {**CLASSIFICATION_CONVENTIONS, "ood": OOD_CONVENTION}

HIGHER_IS_BETTER: dict[str, bool] = {
    "acc": True,
    "nll": False,
    "brier": False,
    "cal/ece": False,
    "cal/ece_adaptive": False,
    "cal/mce": False,
    "ood/auroc": True,
    "ood/aupr_in": True,
    "ood/aupr_out": True,
    "ood/fpr95": False,
}

__all__ = [
    "CLASSIFICATION_CONVENTIONS",
    "CONVENTIONS",
    "DEFAULT_BINS",
    "HIGHER_IS_BETTER",
    "OOD_CONVENTION",
    "CalibrationBins",
    "accuracy",
    "aupr_in",
    "aupr_out",
    "auroc",
    "brier",
    "calibration_bins",
    "ece",
    "ece_adaptive",
    "fpr95",
    "fpr_at_tpr",
    "log_softmax",
    "mce",
    "nll",
    "softmax",
    "top_label",
]
