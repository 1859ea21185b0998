"""Property tests: both raw renderings normalize to the same scores; every violation is named."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelbaton.contracts import (
    ClassificationResultV1,
    ClassificationResultV2,
    ModelVersionConfig,
    normalize,
    parse_raw,
)
from modelbaton.errors import ModelOutputError


def config(schema: int, labels: tuple[str, ...] | None = None) -> ModelVersionConfig:
    return ModelVersionConfig(
        model_id="m",
        version=f"v{schema}",
        endpoint="http://127.0.0.1:1/classify",
        output_schema_version=schema,
        labels=labels,
    )


class_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
scored = st.dictionaries(
    class_names, st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12
)


def renderings(scores: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    label = max(scores, key=lambda c: scores[c])
    v1 = {"label": label, "confidence": scores[label], "raw_scores": scores}
    v2 = {
        "label": label,
        "confidence": scores[label],
        "raw_scores": list(scores.values()),
        "class_order": list(scores),
    }
    return v1, v2


@given(scored)
def test_v1_and_v2_renderings_normalize_to_the_same_scores(scores: dict[str, float]) -> None:
    v1, v2 = renderings(scores)
    a = normalize(v1, config(1))
    b = normalize(v2, config(2))
    assert a.scores_by_class == b.scores_by_class == scores
    assert (a.label, a.confidence) == (b.label, b.confidence)
    assert (a.schema_version, b.schema_version) == (1, 2)


@given(scored, st.integers(min_value=1, max_value=3))
def test_length_mismatch_names_raw_scores(scores: dict[str, float], extra: int) -> None:
    _, v2 = renderings(scores)
    v2["raw_scores"] = v2["raw_scores"] + [0.0] * extra
    with pytest.raises(ModelOutputError) as err:
        normalize(v2, config(2))
    assert err.value.field == "raw_scores"
    assert err.value.schema_version == 2


@given(scored.filter(lambda s: len(s) >= 2))
def test_duplicate_classes_name_class_order(scores: dict[str, float]) -> None:
    _, v2 = renderings(scores)
    v2["class_order"] = [v2["class_order"][0]] * len(v2["class_order"])
    with pytest.raises(ModelOutputError) as err:
        normalize(v2, config(2))
    assert err.value.field == "class_order"


@given(
    scored,
    st.sampled_from([math.nan, math.inf, -math.inf, -0.1, 1.5]),
    st.sampled_from([1, 2]),
)
def test_bad_score_names_raw_scores(scores: dict[str, float], bad: float, schema: int) -> None:
    victim = min(scores, key=lambda c: scores[c])
    label = max(scores, key=lambda c: scores[c])
    if victim == label and len(scores) == 1:
        scores = {**scores, "zz_other": 0.0}
        victim = "zz_other"
    scores = {**scores, victim: bad}
    v1, v2 = renderings({**scores, victim: 0.0})
    v1["raw_scores"] = scores
    v2["raw_scores"] = [scores[c] for c in v2["class_order"]]
    with pytest.raises(ModelOutputError) as err:
        normalize(v1 if schema == 1 else v2, config(schema))
    assert err.value.field == "raw_scores"


@given(scored, st.sampled_from([1, 2]))
def test_label_not_among_classes_names_label(scores: dict[str, float], schema: int) -> None:
    v1, v2 = renderings(scores)
    raw = v1 if schema == 1 else v2
    raw["label"] = "NOT_A_CLASS"
    with pytest.raises(ModelOutputError) as err:
        normalize(raw, config(schema))
    assert err.value.field == "label"


@given(scored, st.floats(min_value=0.01, max_value=0.5), st.sampled_from([1, 2]))
def test_inconsistent_confidence_names_confidence(
    scores: dict[str, float], delta: float, schema: int
) -> None:
    v1, v2 = renderings(scores)
    raw = v1 if schema == 1 else v2
    label_score = scores[raw["label"]]
    raw["confidence"] = label_score - delta if label_score - delta >= 0 else label_score + delta
    with pytest.raises(ModelOutputError) as err:
        normalize(raw, config(schema))
    assert err.value.field == "confidence"


def test_undeclared_class_against_catalog_labels() -> None:
    v1, _ = renderings({"invoice": 0.7, "alien": 0.3})
    with pytest.raises(ModelOutputError) as err:
        normalize(v1, config(1, labels=("invoice", "receipt")))
    assert err.value.field == "raw_scores"
    assert "['alien']" in str(err.value)


@pytest.mark.parametrize(
    ("schema", "payload", "field"),
    [
        (1, {"label": "a", "confidence": 0.5}, "raw_scores"),
        (1, {"label": "a", "confidence": "high", "raw_scores": {"a": 0.5}}, "confidence"),
        (
            2,
            {"label": "a", "confidence": 0.5, "raw_scores": {"a": 0.5}, "class_order": ["a"]},
            "raw_scores",
        ),
        (2, {"label": "a", "confidence": 0.5, "raw_scores": [0.5]}, "class_order"),
    ],
)
def test_schema_violations_name_the_field(schema: int, payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ModelOutputError) as err:
        parse_raw(schema, payload)
    assert err.value.field == field
    assert f"output schema v{schema}" in str(err.value)


def test_a_v1_object_is_refused_by_the_v2_normalizer_path() -> None:
    raw = ClassificationResultV1(label="a", confidence=1.0, raw_scores={"a": 1.0})
    with pytest.raises(ModelOutputError, match="expected ClassificationResultV2"):
        normalize(raw, config(2))
    ok = ClassificationResultV2(label="a", confidence=1.0, raw_scores=[1.0], class_order=["a"])
    assert normalize(ok, config(2)).scores_by_class == {"a": 1.0}
