"""The model server and the endpoint client over real HTTP on ephemeral ports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from modelbaton.contracts import ClassificationResultV1, ClassificationResultV2, ModelVersionConfig
from modelbaton.errors import ConfigError, ModelEndpointError, ModelOutputError
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.client import call_model_endpoint, make_http_client
from modelbaton.models.server import create_app, serve_in_thread
from modelbaton.settings import Settings

pytestmark = pytest.mark.integration

TEXT = "INVOICE number 881, amount due $420.00, bill to Contoso, payment terms net 30"


def test_each_version_answers_in_its_own_raw_format(reference_catalog: Catalog) -> None:
    base = reference_catalog.base_url
    with httpx.Client(base_url=base) as http:
        v1 = http.post("/models/v1/classify", json={"text": TEXT}).json()
        v2 = http.post("/models/v2/classify", json={"text": TEXT}).json()
        v3 = http.post("/models/v3/classify", json={"text": TEXT}).json()
        health = http.get("/healthz").json()
        listing = http.get("/models").json()
    assert isinstance(v1["raw_scores"], dict)
    assert "class_order" not in v1
    assert isinstance(v2["raw_scores"], list)
    assert len(v2["class_order"]) == 8
    assert len(v3["class_order"]) == 9
    assert v1["label"] == v2["label"] == "invoice"
    assert health == {"status": "ok", "versions": ["v1", "v2", "v3"]}
    assert {m["version"]: len(m["classes"]) for m in listing["models"]} == {
        "v1": 8,
        "v2": 8,
        "v3": 9,
    }


def test_request_validation(reference_catalog: Catalog) -> None:
    with httpx.Client(base_url=reference_catalog.base_url) as http:
        empty = http.post("/models/v1/classify", json={"text": "   "})
        assert empty.status_code == 422
        assert "text is empty" in empty.text
        big = http.post("/models/v1/classify", json={"text": "x" * (256 * 1024 + 1)})
        assert big.status_code == 413
        assert "above this server's limit of 262144" in big.text
        assert http.post("/models/v1/classify", json={"txt": "a"}).status_code == 422


@pytest.fixture(scope="module")
def authed_server(model_cache: Path) -> Iterator[str]:
    catalog = load_catalog(Settings.from_env().catalog_path)
    app = create_app(catalog, model_cache, auth_token="s3cret", max_text_bytes=1000)
    with serve_in_thread(app) as url:
        yield url


def test_bearer_auth(authed_server: str) -> None:
    with httpx.Client(base_url=authed_server) as http:
        assert http.post("/models/v1/classify", json={"text": TEXT}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            http.post("/models/v1/classify", json={"text": TEXT}, headers=wrong).status_code == 401
        )
        good = {"Authorization": "Bearer s3cret"}
        assert (
            http.post("/models/v1/classify", json={"text": TEXT}, headers=good).status_code == 200
        )


def config_for(url: str, schema: int = 1, **kw: object) -> ModelVersionConfig:
    return ModelVersionConfig.model_validate(
        {"model_id": "m", "version": "t", "endpoint": url, "output_schema_version": schema} | kw
    )


async def test_client_validates_into_the_raw_schema(reference_catalog: Catalog) -> None:
    async with make_http_client() as http:
        v1 = await call_model_endpoint(reference_catalog.get("v1"), TEXT, client=http)
        v2 = await call_model_endpoint(reference_catalog.get("v2"), TEXT, client=http)
    assert isinstance(v1, ClassificationResultV1)
    assert isinstance(v2, ClassificationResultV2)


async def test_client_reads_the_token_from_the_environment(
    authed_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config_for(f"{authed_server}/models/v1/classify", auth_token_env="MB_TEST_TOKEN")
    async with make_http_client() as http:
        with pytest.raises(ConfigError, match="MB_TEST_TOKEN"):
            await call_model_endpoint(cfg, TEXT, client=http)
        monkeypatch.setenv("MB_TEST_TOKEN", "nope")
        with pytest.raises(ModelEndpointError) as err:
            await call_model_endpoint(cfg, TEXT, client=http)
        assert (err.value.status_code, err.value.retryable) == (401, False)
        monkeypatch.setenv("MB_TEST_TOKEN", "s3cret")
        assert isinstance(await call_model_endpoint(cfg, TEXT, client=http), ClassificationResultV1)
        too_big = "x" * 1001
        with pytest.raises(ModelEndpointError) as err:
            await call_model_endpoint(cfg, too_big, client=http)
        assert (err.value.status_code, err.value.retryable) == (413, False)


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[str]:
    app = FastAPI()

    @app.post("/500")
    async def e500() -> JSONResponse:
        return JSONResponse({"detail": "boom"}, status_code=500)

    @app.post("/slow")
    async def slow() -> JSONResponse:
        await asyncio.sleep(2)
        return JSONResponse({})

    @app.post("/notjson")
    async def notjson() -> PlainTextResponse:
        return PlainTextResponse("<html>oops</html>")

    @app.post("/wrongshape")
    async def wrongshape() -> JSONResponse:
        return JSONResponse({"label": "a", "confidence": 1.0, "raw_scores": [1.0]})

    with serve_in_thread(app) as url:
        yield url


async def test_client_error_mapping(misbehaving: str) -> None:
    async with make_http_client() as http:
        with pytest.raises(ModelEndpointError) as err:
            await call_model_endpoint(config_for(f"{misbehaving}/500"), TEXT, client=http)
        assert (err.value.status_code, err.value.retryable) == (500, True)
        assert "model t at" in str(err.value)

        cfg = config_for(f"{misbehaving}/slow", timeout_seconds=0.3)
        with pytest.raises(ModelEndpointError, match="timed out") as err:
            await call_model_endpoint(cfg, TEXT, client=http)
        assert err.value.retryable

        with pytest.raises(ModelEndpointError) as err:
            await call_model_endpoint(config_for(f"{misbehaving}/nothere"), TEXT, client=http)
        assert (err.value.status_code, err.value.retryable) == (404, False)

        with pytest.raises(ModelOutputError) as out:
            await call_model_endpoint(config_for(f"{misbehaving}/notjson"), TEXT, client=http)
        assert out.value.field == "<root>"

        with pytest.raises(ModelOutputError) as out:
            await call_model_endpoint(config_for(f"{misbehaving}/wrongshape"), TEXT, client=http)
        assert out.value.field == "raw_scores"


async def test_connection_refused_is_retryable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with make_http_client() as http:
        with pytest.raises(ModelEndpointError) as err:
            await call_model_endpoint(config_for(f"http://127.0.0.1:{port}/x"), TEXT, client=http)
    assert err.value.retryable
