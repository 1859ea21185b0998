"""The corpus is deterministic and the reference models render valid raw outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelbaton.contracts import ModelVersionConfig, normalize
from modelbaton.models import reference
from modelbaton.models.corpus import ALL_CLASSES, BASE_CLASSES, generate_corpus, split_corpus


def test_corpus_is_deterministic_and_balanced() -> None:
    a = generate_corpus(160, seed=3)
    b = generate_corpus(160, seed=3)
    assert a == b
    assert generate_corpus(160, seed=4) != a
    counts = {c: sum(d.label == c for d in a) for c in BASE_CLASSES}
    assert set(counts.values()) == {20}


def test_split_is_fixed_and_disjoint() -> None:
    docs = generate_corpus(400, seed=3)
    train, test = split_corpus(docs)
    assert split_corpus(list(reversed(docs)))[1] == list(reversed(test))
    assert not {d.doc_id for d in train} & {d.doc_id for d in test}
    assert 0.15 < len(test) / len(docs) < 0.35


def test_smaller_corpora_are_prefixes_so_versions_share_one_test_split() -> None:
    assert generate_corpus(100, seed=9) == generate_corpus(300, seed=9)[:100]


def test_reference_labels_need_no_training() -> None:
    assert reference.reference_labels("v1") == BASE_CLASSES
    assert reference.reference_labels("v3") == ALL_CLASSES
    with pytest.raises(KeyError, match="no reference model 'v9'"):
        reference.reference_labels("v9")


@pytest.mark.parametrize(("name", "n_classes"), [("v1", 8), ("v2", 8), ("v3", 9)])
def test_render_passes_the_contract(model_cache: Path, name: str, n_classes: int) -> None:
    model = reference.load_or_train(name, model_cache)
    config = ModelVersionConfig(
        model_id="doc-classifier",
        version=name,
        endpoint="http://127.0.0.1:1/x",
        output_schema_version=model.output_schema_version,
        labels=reference.reference_labels(name),
    )
    for doc in generate_corpus(30, seed=77, classes=model.spec.classes):
        out = normalize(model.render(doc.text), config)
        assert len(out.scores_by_class) == n_classes


def test_artifacts_are_cached_not_retrained(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference.load_or_train("v1", model_cache)  # trained (or already cached) by now

    def refuse(spec: reference.ReferenceSpec) -> None:
        raise AssertionError(f"retrained {spec.name}")

    monkeypatch.setattr(reference, "_train", refuse)
    assert set(reference.load_or_train("v1", model_cache).classes) == set(BASE_CLASSES)


def test_quietly_wrong_model_answers_validly_and_is_wrong_on_about_30_percent(
    model_cache: Path,
) -> None:
    """The drill model: a valid v2 raw output whose label, confidence and scores agree with each
    other, and whose label differs from v3's on about 30 % of the test split (binomial bounds)."""
    good = reference.load_or_train("v3", model_cache)
    wrong = reference.load_or_train("v3-quietly-wrong", model_cache)
    config = ModelVersionConfig(
        model_id="doc-classifier",
        version="v4",
        endpoint="http://127.0.0.1:1/x",
        output_schema_version=2,
        labels=reference.reference_labels("v3"),
    )
    split = split_corpus(generate_corpus(3600, reference.CORPUS_SEED, ALL_CLASSES))[1][:600]
    differ = 0
    for doc in split:
        raw = wrong.render(doc.text)
        out = normalize(raw, config)
        assert raw["label"] == max(out.scores_by_class, key=out.scores_by_class.__getitem__)
        assert raw["confidence"] == max(raw["raw_scores"])
        differ += raw["label"] != good.render(doc.text)["label"]
    # 600 documents at 30 %: mean 180, sd about 11; 4 sd either side.
    assert 135 <= differ <= 225
    assert reference.load_or_train("v3-quietly-wrong", model_cache).name == "v3-quietly-wrong"
