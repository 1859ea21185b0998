"""Per-field accuracy of each model version on the bundled corpus, through the normalizers.

Run it: ``python -m invoice_extraction.accuracy`` (from ``examples/``), or over HTTP with
``--url`` pointing at a running model server.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from invoice_extraction.contracts import CONTRACTS, FIELDS, Invoice
from invoice_extraction.corpus import Sample, generate
from invoice_extraction.models import MODELS, VERSIONS


def per_field_accuracy(
    version: str, samples: list[Sample], answer: Callable[[str], dict[str, Any]]
) -> dict[str, float]:
    """Share of samples whose normalized field equals the truth, per field."""
    schema = VERSIONS[version][0]
    hits = dict.fromkeys(FIELDS, 0)
    for s in samples:
        got: Invoice = CONTRACTS.normalize(schema, answer(s.text), version)
        truth = {"total": s.total, "currency": s.currency, "due_date": s.due_date}
        for name in FIELDS:
            hits[name] += getattr(got, name) == truth[name]
    return {name: hits[name] / len(samples) for name in FIELDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running model server (default: call the rules in-process)")
    args = parser.parse_args()
    samples = generate()
    answer: Callable[..., dict[str, Any]]
    for version in VERSIONS:
        if args.url:
            import httpx

            path = VERSIONS[version][1]

            def answer(text: str, path: str = path) -> dict[str, Any]:
                r = httpx.post(f"{args.url}{path}", json={"text": text}, timeout=10)
                r.raise_for_status()
                out: dict[str, Any] = r.json()
                return out
        else:
            answer = MODELS[version]
        acc = per_field_accuracy(version, samples, answer)
        print(version, " ".join(f"{k}={v:.3f}" for k, v in acc.items()))


if __name__ == "__main__":
    main()
