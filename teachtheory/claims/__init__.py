"""Claims from the source papers, each with a check at scale quick or full (``teachtheory check``)."""

from .core import (
    CLAIMS,
    SCALES,
    VERDICTS,
    Z_SCORE,
    CheckContext,
    Claim,
    Verdict,
    register,
    run_claims,
    se_verdict,
    select_claims,
)

__all__ = [
    "CLAIMS", "SCALES", "VERDICTS", "Z_SCORE", "CheckContext", "Claim", "Verdict", "register", "run_claims",
    "se_verdict", "select_claims",
]
