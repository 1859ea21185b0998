"""Output schema v2: scores as a positional list with the class order beside it (the incident)."""

from __future__ import annotations

from pydantic import BaseModel

from modelbaton.contracts._invariants import check_scores
from modelbaton.contracts.canonical import NormalizedClassificationResult
from modelbaton.contracts.config import ModelVersionConfig
from modelbaton.errors import ModelOutputError

SCHEMA_VERSION = 2


class ClassificationResultV2(BaseModel):
    """Raw v2 output: ``raw_scores[i]`` is the score of ``class_order[i]``."""

    label: str
    confidence: float
    raw_scores: list[float]
    class_order: list[str]


def normalize_v2(
    raw: ClassificationResultV2, config: ModelVersionConfig
) -> NormalizedClassificationResult:
    """Map a v2 output onto the canonical contract, enforcing the invariants."""
    if len(raw.raw_scores) != len(raw.class_order):
        raise ModelOutputError(
            f"{len(raw.raw_scores)} scores for {len(raw.class_order)} classes in class_order",
            field="raw_scores",
            schema_version=SCHEMA_VERSION,
        )
    if len(set(raw.class_order)) != len(raw.class_order):
        dupes = sorted({c for c in raw.class_order if raw.class_order.count(c) > 1})
        raise ModelOutputError(
            f"duplicate classes {dupes}", field="class_order", schema_version=SCHEMA_VERSION
        )
    scores = dict(zip(raw.class_order, raw.raw_scores, strict=True))
    check_scores(scores, label=raw.label, confidence=raw.confidence, schema_version=SCHEMA_VERSION)
    return NormalizedClassificationResult(
        label=raw.label,
        confidence=raw.confidence,
        scores_by_class=scores,
        model_version=config.version,
        schema_version=SCHEMA_VERSION,
    )
