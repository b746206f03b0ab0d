"""Pure metric functions on per-example arrays: numpy in, Python floats out, no torch.

``CONVENTIONS`` (calibration conventions plus the OOD sign convention) is meant to be written into every
result. Metric directions live with the result names in ``evalsuite.core.results``.
"""

from evalsuite.metrics import stats as _stats
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
from evalsuite.metrics.ood import aupr_in, aupr_out, auroc, fpr95, fpr95_ood, fpr_at_ood_tpr, fpr_at_tpr

# Everything a result should record about how its numbers were computed (JSON-ready).
CONVENTIONS: dict[str, object] = {
    **CLASSIFICATION_CONVENTIONS,
    "ood": OOD_CONVENTION,
    "stats": _stats.CONVENTIONS,
}


__all__ = [
    "CLASSIFICATION_CONVENTIONS",
    "CONVENTIONS",
    "DEFAULT_BINS",
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
    "fpr95_ood",
    "fpr_at_ood_tpr",
    "fpr_at_tpr",
    "log_softmax",
    "mce",
    "nll",
    "softmax",
    "top_label",
]
