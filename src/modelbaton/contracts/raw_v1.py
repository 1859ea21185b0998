"""Output schema v1: scores as a dict keyed by class (the pre-incident model)."""

from __future__ import annotations

from pydantic import BaseModel

from modelbaton.contracts._invariants import check_scores
from modelbaton.contracts.canonical import NormalizedClassificationResult
from modelbaton.contracts.config import ModelVersionConfig

SCHEMA_VERSION = 1


class ClassificationResultV1(BaseModel):
    """Raw v1 output: ``raw_scores`` maps class name to score."""

    label: str
    confidence: float
    raw_scores: dict[str, float]


def normalize_v1(
    raw: ClassificationResultV1, config: ModelVersionConfig
) -> NormalizedClassificationResult:
    """Map a v1 output onto the canonical contract, enforcing the invariants."""
    check_scores(
        raw.raw_scores, label=raw.label, confidence=raw.confidence, schema_version=SCHEMA_VERSION
    )
    return NormalizedClassificationResult(
        label=raw.label,
        confidence=raw.confidence,
        scores_by_class=dict(raw.raw_scores),
        model_version=config.version,
        schema_version=SCHEMA_VERSION,
    )
