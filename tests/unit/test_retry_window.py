"""Transient model failures retry for the catalog's window, read at call time, then stop."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from modelbaton.contracts import ModelVersionConfig
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.activities import ClassifyActivities
from modelbaton.pipeline.messages import ClassifyActivityInput
from modelbaton.settings import Settings


def catalog_with(window: float) -> Catalog:
    base = load_catalog(Settings.from_env().catalog_path)
    down = ModelVersionConfig(
        model_id="doc-classifier",
        version="down",
        endpoint="http://127.0.0.1:9/classify",  # discard port: connection refused
        output_schema_version=2,
        retry_window_seconds=window,
    )
    return base.extended(down)


INPUT = ClassifyActivityInput(
    document_id="d",
    text="x",
    model_id="doc-classifier",
    model_version="down",
    output_schema_version=2,
)


@pytest.mark.parametrize(("scheduled_ago", "retryable"), [(10.0, True), (7200.0, False)])
async def test_refused_connection_retries_until_the_window_closes(
    scheduled_ago: float, retryable: bool
) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, scheduled_time=datetime.now(UTC) - timedelta(seconds=scheduled_ago)
    )
    async with httpx.AsyncClient() as http:
        acts = ClassifyActivities(CatalogSource.fixed(catalog_with(3600.0)), http)
        with pytest.raises(ApplicationError) as err:
            await env.run(acts.classify_document_v2, INPUT)
    assert err.value.type == "ModelEndpointError"
    assert err.value.non_retryable is (not retryable)
    if not retryable:
        assert "gave up after retrying" in err.value.message
