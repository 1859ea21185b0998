"""Pluggable comparison of two canonical results, for shadow reports and gates. Pure functions.

A comparator turns (baseline, candidate) into a :class:`Comparison`: whether they agree, a
distance (0 for identical), and per-field agreement where the contract has fields. Three shapes
ship: classification (:class:`LabelAgreement`), extraction (:class:`FieldMatch`) and regression
(:class:`AbsoluteError`); any object with a ``compare`` method of the same signature works.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

C_contra = TypeVar("C_contra", contravariant=True)


class Comparison(BaseModel):
    """How two canonical results of one input compare. Recorded, so it only grows fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    agree: bool
    #: 0 for identical answers; the unit is the comparator's (score distance, absolute error,
    #: share of fields that differ).
    distance: float = Field(default=0.0, ge=0.0)
    fields: dict[str, bool] = Field(default_factory=dict)


class Comparator(Protocol[C_contra]):
    """Compares two canonical results of the same input."""

    def compare(self, baseline: C_contra, candidate: C_contra) -> Comparison: ...


def _get(result: Any, name: str) -> Any:
    if isinstance(result, dict):
        return result.get(name)
    return getattr(result, name)


def _same(a: Any, b: Any, tolerance: float) -> bool:
    numbers = (int, float, Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=tolerance)
    return bool(a == b)


def total_variation(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Half the L1 distance between two score distributions, in [0, 1]."""
    keys = set(a) | set(b)
    return 0.5 * sum(abs(float(a.get(k, 0.0)) - float(b.get(k, 0.0))) for k in keys)


class LabelAgreement:
    """Classification: the labels agree; the distance is ``distance`` between the two score
    distributions when both carry ``scores_field`` (default: total variation, in [0, 1])."""

    def __init__(
        self,
        label_field: str = "label",
        scores_field: str = "scores_by_class",
        *,
        distance: Callable[[Mapping[str, float], Mapping[str, float]], float] = total_variation,
    ) -> None:
        self.label_field = label_field
        self.scores_field = scores_field
        self.distance = distance

    def compare(self, baseline: Any, candidate: Any) -> Comparison:
        agree = _get(baseline, self.label_field) == _get(candidate, self.label_field)
        distance = 0.0 if agree else 1.0
        a = _get(baseline, self.scores_field) if self.scores_field else None
        b = _get(candidate, self.scores_field) if self.scores_field else None
        if isinstance(a, dict) and isinstance(b, dict):
            distance = self.distance(a, b)
        return Comparison(
            agree=agree, distance=min(max(distance, 0.0), 1.0), fields={self.label_field: agree}
        )


class FieldMatch:
    """Extraction: each named field matches (numbers within ``tolerance``); the results agree
    when every field matches; the distance is the share of fields that differ."""

    def __init__(self, fields: Sequence[str], *, tolerance: float = 0.0) -> None:
        if not fields:
            raise ValueError("FieldMatch needs at least one field to compare")
        self.field_names = tuple(fields)
        self.tolerance = tolerance

    def compare(self, baseline: Any, candidate: Any) -> Comparison:
        matched = {
            name: _same(_get(baseline, name), _get(candidate, name), self.tolerance)
            for name in self.field_names
        }
        differ = sum(1 for ok in matched.values() if not ok)
        return Comparison(agree=differ == 0, distance=differ / len(matched), fields=matched)


class AbsoluteError:
    """Regression: the absolute difference of one numeric field; agreement within
    ``tolerance``."""

    def __init__(self, value_field: str = "value", *, tolerance: float = 0.0) -> None:
        self.value_field = value_field
        self.tolerance = tolerance

    def compare(self, baseline: Any, candidate: Any) -> Comparison:
        a = float(_get(baseline, self.value_field))
        b = float(_get(candidate, self.value_field))
        error = abs(a - b)
        ok = error <= self.tolerance
        return Comparison(agree=ok, distance=error, fields={self.value_field: ok})


class AgreementSummary(BaseModel):
    """Agreement over a set of comparisons: overall and per field. ``n`` = 0 means not judged."""

    model_config = ConfigDict(frozen=True)

    n: int
    agreement: float | None
    by_field: dict[str, float]
    mean_distance: float | None


def summarize(comparisons: Iterable[Comparison]) -> AgreementSummary:
    """Overall and per-field agreement; with no comparisons, ``agreement`` is None (not judged,
    never a pass)."""
    items = list(comparisons)
    if not items:
        return AgreementSummary(n=0, agreement=None, by_field={}, mean_distance=None)
    names = sorted({name for c in items for name in c.fields})
    by_field: dict[str, float] = {}
    for name in names:
        seen = [c.fields[name] for c in items if name in c.fields]
        by_field[name] = sum(seen) / len(seen)
    return AgreementSummary(
        n=len(items),
        agreement=sum(c.agree for c in items) / len(items),
        by_field=by_field,
        mean_distance=sum(c.distance for c in items) / len(items),
    )
