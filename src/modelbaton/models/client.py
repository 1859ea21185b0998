"""The model endpoint client: one HTTP call, no retries (retries belong to Temporal)."""

from __future__ import annotations

import os
from json import JSONDecodeError
from typing import Any

import httpx
from pydantic import BaseModel

from modelbaton.contracts import ModelVersionConfig, parse_raw
from modelbaton.errors import ConfigError, ModelEndpointError, ModelOutputError


def make_http_client() -> httpx.AsyncClient:
    """A shared async client whose transport never retries: Temporal's retry policy decides."""
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(retries=0))


def auth_headers(config: ModelVersionConfig) -> dict[str, str]:
    """The bearer header, read from the environment at call time and never logged."""
    if config.auth_token_env is None:
        return {}
    token = os.environ.get(config.auth_token_env)
    if not token:
        raise ConfigError(
            f"model {config.version}: environment variable {config.auth_token_env} "
            "(auth_token_env) is not set"
        )
    return {"Authorization": f"Bearer {token}"}


async def call_model_endpoint(
    config: ModelVersionConfig, text: str, *, client: httpx.AsyncClient
) -> BaseModel:
    """POST the text to the version's endpoint; return its output validated as its raw schema.

    Raises :class:`ModelEndpointError` (retryable for 5xx, timeouts and connection failures,
    non-retryable for 4xx) or :class:`ModelOutputError` for a body that breaks the raw schema.
    """
    where = f"model {config.version} at {config.endpoint}"
    timeout = httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
    try:
        response = await client.post(
            config.endpoint, json={"text": text}, headers=auth_headers(config), timeout=timeout
        )
    except httpx.TimeoutException as exc:
        raise ModelEndpointError(
            f"{where}: timed out ({type(exc).__name__}, limit {config.timeout_seconds}s)",
            retryable=True,
        ) from None
    except httpx.TransportError as exc:
        raise ModelEndpointError(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from None
    status = response.status_code
    if status >= 400:
        detail = response.text[:300]
        raise ModelEndpointError(
            f"{where}: HTTP {status}: {detail}", retryable=status >= 500, status_code=status
        )
    try:
        body: Any = response.json()
    except (JSONDecodeError, UnicodeDecodeError):
        raise ModelOutputError(
            f"{where} returned a body that is not JSON",
            field="<root>",
            schema_version=config.output_schema_version,
        ) from None
    if not isinstance(body, dict):
        raise ModelOutputError(
            f"{where} returned {type(body).__name__}, expected an object",
            field="<root>",
            schema_version=config.output_schema_version,
        )
    return parse_raw(config.output_schema_version, body)
