"""The invoice example's corpus, contracts and models: deterministic corpus, both raw schemas
normalizing to one canonical type, and per-field accuracy measured against the corpus truth."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest

from invoice_extraction.accuracy import per_field_accuracy
from invoice_extraction.contracts import CONTRACTS, Invoice
from invoice_extraction.corpus import generate
from invoice_extraction.models import MODELS, VERSIONS, create_app, serve_in_thread
from modelbaton import DuplicateSchemaError, ModelOutputError


def test_the_corpus_is_the_same_on_every_run() -> None:
    a, b = generate(), generate()
    assert a == b
    assert len(a) == 400
    assert len({s.invoice_id for s in a}) == 400
    assert generate(seed=1) != a


def test_the_issue_s_two_shapes_normalize_to_the_same_invoice() -> None:
    v1 = CONTRACTS.normalize(1, {"total": "1,234.50", "currency": "EUR", "due": "03/04/2026"}, "v1")
    v2 = CONTRACTS.normalize(
        2, {"amount": {"value": 1234.5, "currency": "EUR"}, "due_date": "2026-04-03"}, "v2"
    )
    expected = (Decimal("1234.50"), "EUR", date(2026, 4, 3))
    assert (v1.total, v1.currency, v1.due_date) == expected
    assert (v2.total, v2.currency, v2.due_date) == expected
    assert isinstance(v1, Invoice)
    assert (v1.schema_version, v2.schema_version) == (1, 2)


def test_bad_raw_values_name_the_field() -> None:
    with pytest.raises(ModelOutputError, match="field 'due'"):
        CONTRACTS.normalize(1, {"total": "1.00", "currency": "EUR", "due": "2026-04-03"}, "v1")
    with pytest.raises(ModelOutputError, match="field 'amount'"):
        CONTRACTS.normalize(2, {"amount": 12, "due_date": None}, "v2")


def test_registering_a_version_again_names_it() -> None:
    with pytest.raises(DuplicateSchemaError, match="'invoice': output schema v2"):
        CONTRACTS.register(2, Invoice, lambda raw, v: raw)


def test_per_field_accuracy_on_the_corpus() -> None:
    samples = generate()
    v1 = per_field_accuracy("v1", samples, MODELS["v1"])
    v2 = per_field_accuracy("v2", samples, MODELS["v2"])
    # Measured once and pinned (docs/README quote them): v2 reads layouts v1 does not.
    assert v1 == pytest.approx({"total": 0.715, "currency": 0.715, "due_date": 0.5175})
    assert v2 == pytest.approx({"total": 1.0, "currency": 1.0, "due_date": 0.8875})


def test_the_models_answer_over_http() -> None:
    text = generate()[0].text
    with serve_in_thread(create_app()) as url:
        for version, (schema, path) in VERSIONS.items():
            r = httpx.post(url + path, json={"text": text}, timeout=10)
            assert r.status_code == 200
            CONTRACTS.normalize(schema, r.json(), version)
        empty = httpx.post(url + VERSIONS["v1"][1], json={"text": " "}, timeout=10)
        assert empty.status_code == 422
