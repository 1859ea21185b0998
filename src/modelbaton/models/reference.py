"""The reference classifiers served by the bundled model server.

- v1: TF-IDF + logistic regression, raw output schema 1 (scores keyed by class).
- v2: wordllama sentence embeddings beside TF-IDF features + logistic regression, raw output
  schema 2 (positional scores). On this corpus embeddings alone trail TF-IDF (keyword-driven
  text); side by side they add about a point of accuracy over TF-IDF at equal training data.
- v3: the v2 architecture retrained with a ninth class, same raw shape as v2.

Trained artifacts are cached on disk, keyed by the corpus parameters and TRAINING_CODE_VERSION,
written atomically, and never retrained per request.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from modelbaton.files import write_whole
from modelbaton.models.corpus import (
    ALL_CLASSES,
    BASE_CLASSES,
    Document,
    generate_corpus,
    split_corpus,
)

#: Bump when training code changes, so cached artifacts are retrained.
TRAINING_CODE_VERSION = 1
#: The v1 model is the older release: trained on the smaller corpus it had at the time. Every
#: corpus is a prefix of the largest one, so all versions are scored on one held-out split.
CORPUS_SIZE = {"v1": 1200, "v2": 3600, "v3": 3600}
EVAL_CORPUS_SIZE = 3600
CORPUS_SEED = 20261124
#: Weight of the (unit-normalized) embedding block beside the TF-IDF block.
EMBEDDING_WEIGHT = 0.5

Architecture = Literal["tfidf", "wordllama"]


@dataclass(frozen=True)
class ReferenceSpec:
    name: str
    architecture: Architecture
    output_schema_version: int
    classes: tuple[str, ...]
    corpus_size: int

    @property
    def cache_key(self) -> str:
        payload = json.dumps(
            [
                self.name,
                self.architecture,
                self.classes,
                self.corpus_size,
                CORPUS_SEED,
                TRAINING_CODE_VERSION,
            ],
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


REFERENCE_MODELS: dict[str, ReferenceSpec] = {
    "v1": ReferenceSpec("v1", "tfidf", 1, BASE_CLASSES, CORPUS_SIZE["v1"]),
    "v2": ReferenceSpec("v2", "wordllama", 2, BASE_CLASSES, CORPUS_SIZE["v2"]),
    "v3": ReferenceSpec("v3", "wordllama", 2, ALL_CLASSES, CORPUS_SIZE["v3"]),
}


@dataclass(frozen=True)
class QuietlyWrongSpec:
    """A drill: a trained reference model that answers in its valid raw schema, with scores and
    confidence consistent with its label, but swaps its two best classes on ``share`` of the
    documents (chosen by a hash of the text, so the same document is always wrong the same way).

    This is the regression that schema checks and error rates cannot see; only comparing outputs
    (agreement with the baseline) or reviews can."""

    name: str
    base: str
    share: float


#: Drill models the catalog may name as ``reference``: never trained, built on a real one.
QUIETLY_WRONG: dict[str, QuietlyWrongSpec] = {
    "v3-quietly-wrong": QuietlyWrongSpec("v3-quietly-wrong", "v3", 0.3),
}


def _spec(name: str) -> ReferenceSpec:
    if name in QUIETLY_WRONG:
        return _spec(QUIETLY_WRONG[name].base)
    try:
        return REFERENCE_MODELS[name]
    except KeyError:
        known = ", ".join([*REFERENCE_MODELS, *QUIETLY_WRONG])
        raise KeyError(f"no reference model {name!r} (known: {known})") from None


def reference_labels(name: str) -> tuple[str, ...]:
    """A reference model's classes, known without training."""
    return _spec(name).classes


_WORDLLAMA_LOCK = threading.Lock()


@cache
def _wordllama() -> Any:
    """The wordllama model, loaded offline from the weights its wheel ships."""
    import wordllama
    from wordllama import WordLlama

    with _WORDLLAMA_LOCK:
        # Its default tokenizer lookup fails in 0.4.0; the package folder has everything.
        return WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)


def _embed(texts: list[str]) -> np.ndarray:
    emb = np.asarray(_wordllama().embed(texts), dtype=np.float32)
    normalized: np.ndarray = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)
    return normalized


class ReferenceModel:
    """A trained reference classifier and its raw output rendering."""

    def __init__(self, spec: ReferenceSpec, estimator: Any, vectorizer: Any) -> None:
        self.spec = spec
        self._estimator = estimator
        self._vectorizer = vectorizer
        self.classes: tuple[str, ...] = tuple(str(c) for c in estimator.classes_)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def output_schema_version(self) -> int:
        return self.spec.output_schema_version

    def _features(self, texts: list[str]) -> Any:
        return _features(self.spec, self._vectorizer, texts)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._estimator.predict_proba(self._features(texts)))

    def render(self, text: str) -> dict[str, Any]:
        """The raw wire format of this model's output schema, deliberately version-specific."""
        probs = [round(float(p), 6) for p in self.predict_proba([text])[0]]
        best = int(np.argmax(probs))
        label, confidence = self.classes[best], probs[best]
        if self.output_schema_version == 1:
            return {
                "label": label,
                "confidence": confidence,
                "raw_scores": dict(zip(self.classes, probs, strict=True)),
            }
        return {
            "label": label,
            "confidence": confidence,
            "raw_scores": probs,
            "class_order": list(self.classes),
        }


def wrong_on(text: str, share: float) -> bool:
    """Whether a quietly wrong model of ``share`` is wrong on ``text`` (a hash, not chance)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


class QuietlyWrongModel(ReferenceModel):
    """See :class:`QuietlyWrongSpec`: the base model's probabilities, with the top two classes
    swapped on the chosen documents, so label, confidence and scores stay consistent."""

    def __init__(self, drill: QuietlyWrongSpec, base: ReferenceModel) -> None:
        super().__init__(base.spec, base._estimator, base._vectorizer)
        self.drill = drill

    @property
    def name(self) -> str:
        return self.drill.name

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        probs = super().predict_proba(texts).copy()
        for row, text in zip(probs, texts, strict=True):
            if len(row) > 1 and wrong_on(text, self.drill.share):
                first, second = np.argsort(row)[::-1][:2]
                row[first], row[second] = row[second], row[first]
        return probs


def _features(spec: ReferenceSpec, vectorizer: Any, texts: list[str]) -> Any:
    sparse = vectorizer.transform(texts)
    if spec.architecture == "tfidf":
        return sparse
    return sp.hstack([sparse, sp.csr_matrix(_embed(texts) * EMBEDDING_WEIGHT)]).tocsr()


def _train_split(spec: ReferenceSpec) -> list[Document]:
    return split_corpus(generate_corpus(spec.corpus_size, CORPUS_SEED, spec.classes))[0]


def _test_split(spec: ReferenceSpec) -> list[Document]:
    return split_corpus(generate_corpus(EVAL_CORPUS_SIZE, CORPUS_SEED, spec.classes))[1]


def _train(spec: ReferenceSpec) -> tuple[Any, Any]:
    # scikit-learn comes with the 'reference' extra: imported where it is used, so the catalog's
    # label sets (reference_labels) are known without it.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = _train_split(spec)
    texts, labels = [d.text for d in train], [d.label for d in train]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vectorizer.fit(texts)
    features = _features(spec, vectorizer, texts)
    estimator = LogisticRegression(max_iter=3000, C=4.0)
    estimator.fit(features, labels)
    return estimator, vectorizer


def _artifact_path(spec: ReferenceSpec, cache_dir: Path) -> Path:
    return cache_dir / f"reference-{spec.name}-{spec.cache_key}.pkl"


def load_or_train(name: str, cache_dir: Path) -> ReferenceModel:
    """Load the cached artifact, or train once and cache it atomically."""
    if name in QUIETLY_WRONG:
        drill = QUIETLY_WRONG[name]
        return QuietlyWrongModel(drill, load_or_train(drill.base, cache_dir))
    spec = _spec(name)
    path = _artifact_path(spec, cache_dir)
    if path.exists():
        with path.open("rb") as fh:
            estimator, vectorizer = pickle.load(fh)  # our own artifact, written below
        return ReferenceModel(spec, estimator, vectorizer)
    estimator, vectorizer = _train(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # A concurrent reader (another test worker, a model server) sees no artifact or a whole one.
    write_whole(path, pickle.dumps((estimator, vectorizer)))
    return ReferenceModel(spec, estimator, vectorizer)


@dataclass(frozen=True)
class EvalReport:
    """Held-out quality of one reference model on its fixed test split."""

    version: str
    n_classes: int
    n_test: int
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]


def evaluate(name: str, cache_dir: Path) -> EvalReport:
    from sklearn.metrics import accuracy_score, f1_score

    model = load_or_train(name, cache_dir)
    test = _test_split(model.spec)
    probs = model.predict_proba([d.text for d in test])
    predicted = [model.classes[i] for i in probs.argmax(axis=1)]
    truth = [d.label for d in test]
    per_class = f1_score(truth, predicted, labels=list(model.classes), average=None)
    return EvalReport(
        version=name,
        n_classes=len(model.classes),
        n_test=len(test),
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, average="macro")),
        per_class_f1={c: round(float(f), 4) for c, f in zip(model.classes, per_class, strict=True)},
    )
