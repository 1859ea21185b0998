"""The replay gate's sample of live histories: uniform, seeded, bounded by the listing."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from temporalio.client import Client

from modelbaton.errors import ConfigError
from modelbaton.ops.replay import sample_executions


class _Listed:
    def __init__(self, i: int) -> None:
        self.id = f"wf-{i}"
        self.run_id = f"run-{i}"


class _Listing:
    """A client whose ``list_workflows`` yields ``n`` executions (up to ``limit``)."""

    def __init__(self, n: int) -> None:
        self.n = n

    async def list_workflows(self, query: str, limit: int | None = None) -> AsyncIterator[Any]:
        for i in range(min(self.n, limit or self.n)):
            yield _Listed(i)


def client(n: int) -> Client:
    return cast(Client, _Listing(n))


async def test_no_sample_takes_every_execution() -> None:
    seen, chosen = await sample_executions(client(5), "q")
    assert seen == 5
    assert chosen == [(f"wf-{i}", f"run-{i}") for i in range(5)]


async def test_a_sample_larger_than_the_listing_takes_it_all() -> None:
    seen, chosen = await sample_executions(client(4), "q", sample=10)
    assert seen == 4
    assert len(chosen) == 4


async def test_the_limit_bounds_what_is_read() -> None:
    seen, chosen = await sample_executions(client(100), "q", sample=3, limit=20)
    assert seen == 20
    assert all(int(wid.split("-")[1]) < 20 for wid, _ in chosen)


async def test_the_same_seed_picks_the_same_sample() -> None:
    a = await sample_executions(client(50), "q", sample=5, seed=3)
    b = await sample_executions(client(50), "q", sample=5, seed=3)
    assert a == b
    assert len(set(a[1])) == 5


async def test_every_execution_is_equally_likely() -> None:
    """3 of 10 over 2,000 seeds: each execution chosen 600 times expected (sd about 20.5); the
    bounds are 5 sd, and the seeds are fixed, so the test is deterministic."""
    counts: Counter[str] = Counter()
    for seed in range(2000):
        _, chosen = await sample_executions(client(10), "q", sample=3, seed=seed)
        counts.update(wid for wid, _ in chosen)
    assert sorted(counts) == [f"wf-{i}" for i in range(10)]
    assert all(500 <= c <= 700 for c in counts.values()), counts


async def test_a_sample_of_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="--sample"):
        await sample_executions(client(3), "q", sample=0)
