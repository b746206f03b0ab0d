"""OOD score functions on logits, registered in ``OOD_SCORES``; higher score = more out-of-distribution."""

from evalsuite.ood.scores import (
    FEATURE_SCORES,
    OOD_SCORES,
    SIGN_CONVENTION,
    ScoreFn,
    energy,
    is_feature_score,
    maxlogit,
    msp,
)

__all__ = [
    "FEATURE_SCORES",
    "OOD_SCORES",
    "SIGN_CONVENTION",
    "ScoreFn",
    "energy",
    "is_feature_score",
    "maxlogit",
    "msp",
]
