"""Per-document latency at the model server, per version, over real HTTP.

Starts ``baton models serve`` as a subprocess on a free port, sends the same held-out documents
sequentially to each version, and prints p50 and p95 plus the v2/v1 ratio of p50.

    uv run python bench/latency.py [--docs 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import model_server
from modelbaton.models.corpus import generate_documents
from modelbaton.settings import Settings


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main(n_docs: int) -> None:
    settings = Settings.from_env()
    os.environ["MODELBATON_CACHE_DIR"] = str(settings.cache_dir)
    texts = [d.text for d in generate_documents(n_docs, seed=999)]
    results: dict[str, tuple[float, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="mb-latency-") as tmp,
        model_server(Path(tmp)) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        for version in ("v1", "v2", "v3"):
            path = f"/models/{version}/classify"
            for text in texts[:20]:  # warm-up: threadpool, caches
                http.post(path, json={"text": text}).raise_for_status()
            samples: list[float] = []
            for text in texts:
                t0 = time.perf_counter()
                http.post(path, json={"text": text}).raise_for_status()
                samples.append((time.perf_counter() - t0) * 1000)
            results[version] = (percentile(samples, 50), percentile(samples, 95))
    print(f"{'version':8} {'p50 ms':>8} {'p95 ms':>8}   ({n_docs} sequential requests each)")
    for version, (p50, p95) in results.items():
        print(f"{version:8} {p50:8.2f} {p95:8.2f}")
    print(f"p50 ratio v2/v1: {results['v2'][0] / results['v1'][0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    main(parser.parse_args().docs)
