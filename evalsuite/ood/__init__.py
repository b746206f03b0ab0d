"""OOD score functions on logits, registered in ``OOD_SCORES``; higher score = more out-of-distribution."""

from evalsuite.ood.scores import OOD_SCORES, SIGN_CONVENTION, ScoreFn, energy, maxlogit, msp

__all__ = ["OOD_SCORES", "SIGN_CONVENTION", "ScoreFn", "energy", "maxlogit", "msp"]
