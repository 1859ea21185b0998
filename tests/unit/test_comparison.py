"""Pluggable comparison of two canonical results."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import BaseModel

from modelbaton import AbsoluteError, Comparison, FieldMatch, LabelAgreement, summarize
from modelbaton.contracts import NormalizedClassificationResult


def result(label: str, scores: dict[str, float]) -> NormalizedClassificationResult:
    return NormalizedClassificationResult(
        label=label,
        confidence=max(scores.values()),
        scores_by_class=scores,
        model_version="v1",
        schema_version=1,
    )


def test_label_agreement_and_score_distance() -> None:
    a = result("invoice", {"invoice": 0.8, "receipt": 0.2})
    b = result("invoice", {"invoice": 0.6, "receipt": 0.4})
    c = result("receipt", {"invoice": 0.3, "receipt": 0.7})
    same = LabelAgreement().compare(a, b)
    assert same.agree
    assert same.distance == pytest.approx(0.2)
    other = LabelAgreement().compare(a, c)
    assert not other.agree
    assert other.distance == pytest.approx(0.5)
    assert other.fields == {"label": False}


class Invoice(BaseModel):
    total: Decimal
    currency: str
    due_date: date


def test_field_match_per_field_with_a_numeric_tolerance() -> None:
    a = Invoice(total=Decimal("1234.50"), currency="EUR", due_date=date(2026, 4, 3))
    b = Invoice(total=Decimal("1234.5"), currency="EUR", due_date=date(2026, 3, 4))
    cmp = FieldMatch(["total", "currency", "due_date"], tolerance=0.005).compare(a, b)
    assert cmp.fields == {"total": True, "currency": True, "due_date": False}
    assert not cmp.agree
    assert cmp.distance == pytest.approx(1 / 3)
    assert FieldMatch(["total", "currency"]).compare(a, b).agree


def test_field_match_needs_fields() -> None:
    with pytest.raises(ValueError, match="at least one field"):
        FieldMatch([])


class Score(BaseModel):
    value: float


def test_absolute_error_within_tolerance() -> None:
    assert AbsoluteError(tolerance=0.1).compare(Score(value=1.0), Score(value=1.05)).agree
    far = AbsoluteError(tolerance=0.1).compare(Score(value=1.0), Score(value=1.5))
    assert not far.agree
    assert far.distance == pytest.approx(0.5)


def test_summary_per_field_and_not_judged_without_data() -> None:
    empty = summarize([])
    assert empty.n == 0
    assert empty.agreement is None  # not judged, never a pass
    rows = [
        Comparison(agree=True, distance=0.0, fields={"total": True, "due_date": True}),
        Comparison(agree=False, distance=0.5, fields={"total": True, "due_date": False}),
        Comparison(agree=False, distance=1.0, fields={"total": False, "due_date": False}),
        Comparison(agree=True, distance=0.0, fields={"total": True, "due_date": True}),
    ]
    s = summarize(rows)
    assert s.n == 4
    assert s.agreement == 0.5
    assert s.by_field == {"due_date": 0.5, "total": 0.75}
    assert s.mean_distance == pytest.approx(0.375)


def test_the_classification_shadow_uses_label_agreement_with_jensen_shannon() -> None:
    from modelbaton.shadow.compare import AGREEMENT
    from modelbaton.stats.fixed_sample import jensen_shannon

    a = result("invoice", {"invoice": 0.8, "receipt": 0.2})
    b = result("invoice", {"invoice": 0.5, "receipt": 0.5})
    got = AGREEMENT.compare(a, b)
    assert got.agree
    assert got.distance == pytest.approx(jensen_shannon(a.scores_by_class, b.scores_by_class))
    assert got.distance != pytest.approx(LabelAgreement().compare(a, b).distance)
