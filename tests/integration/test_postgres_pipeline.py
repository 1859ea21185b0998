"""A batch through the pipeline with its results in PostgreSQL, as production would store them.

The dev server, the model server and the PostgreSQL server are the sessions' real ones; the results
go to a database of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecutionStatus

from modelbaton.models.catalog import Catalog
from modelbaton.pipeline.store import ClassificationRecord, ResultsStore
from pipeline_fixtures import INVOICE, Pipeline

pytestmark = pytest.mark.integration

BATCH = 10


@pytest.fixture
def pg_pipeline(
    client: Client, reference_catalog: Catalog, task_queue: str, postgres_url: str
) -> Iterator[Pipeline]:
    store = ResultsStore(postgres_url)
    yield Pipeline(client, reference_catalog, store, task_queue)
    store.close()


async def test_batch_stores_one_current_record_per_document_in_postgres(
    pg_pipeline: Pipeline,
) -> None:
    docs = [pg_pipeline.doc(f"{INVOICE}\nline {i}") for i in range(BATCH)]
    async with pg_pipeline.worker(pools=["v2"]):
        handles = [await pg_pipeline.start(doc) for doc in docs]
        outcomes = await asyncio.gather(*(h.result() for h in handles))
    assert sorted(o.document_id for o in outcomes) == sorted(d.document_id for d in docs)
    for handle in handles:
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    assert pg_pipeline.store.engine.dialect.name == "postgresql"
    with Session(pg_pipeline.store.engine) as session:
        per_doc = dict(
            session.execute(
                select(ClassificationRecord.document_id, func.count()).group_by(
                    ClassificationRecord.document_id
                )
            ).all()
        )
    assert per_doc == {d.document_id: 1 for d in docs}
    assert pg_pipeline.store.summary()["by_model_version"] == {"v2": BATCH}
    assert pg_pipeline.store.superseded() == []
