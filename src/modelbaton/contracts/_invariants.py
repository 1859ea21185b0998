"""Invariants every normalizer enforces before a canonical result leaves an activity."""

from __future__ import annotations

import math
from collections.abc import Mapping

from modelbaton.errors import ModelOutputError

#: How far ``confidence`` may sit from the label's own score (float rounding on the wire).
CONFIDENCE_TOLERANCE = 1e-4


def check_scores(
    scores_by_class: Mapping[str, float],
    *,
    label: str,
    confidence: float,
    schema_version: int,
    scores_field: str = "raw_scores",
) -> None:
    """Raise :class:`ModelOutputError` naming the field when an invariant does not hold."""
    if not scores_by_class:
        raise ModelOutputError("no class scores", field=scores_field, schema_version=schema_version)
    for cls, score in scores_by_class.items():
        if not cls:
            raise ModelOutputError(
                "empty class name", field=scores_field, schema_version=schema_version
            )
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise ModelOutputError(
                f"score for class '{cls}' is {score!r}, expected a finite number in [0, 1]",
                field=scores_field,
                schema_version=schema_version,
            )
    if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
        raise ModelOutputError(
            f"confidence is {confidence!r}, expected a finite number in [0, 1]",
            field="confidence",
            schema_version=schema_version,
        )
    if label not in scores_by_class:
        raise ModelOutputError(
            f"label '{label}' is not among the scored classes",
            field="label",
            schema_version=schema_version,
        )
    if abs(scores_by_class[label] - confidence) > CONFIDENCE_TOLERANCE:
        raise ModelOutputError(
            f"confidence {confidence!r} differs from the score of label '{label}' "
            f"({scores_by_class[label]!r})",
            field="confidence",
            schema_version=schema_version,
        )
