"""The model server: each reference model version at its own endpoint, in its own raw format.

The formats differ on purpose, as in the incident: v1 returns scores keyed by class, v2 and v3 a
positional list with the class order beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from modelbaton import polling
from modelbaton.models.catalog import Catalog
from modelbaton.models.reference import ReferenceModel, load_or_train

log = logging.getLogger("modelbaton.models.server")

DEFAULT_MAX_TEXT_BYTES = 256 * 1024


class ClassifyRequest(BaseModel):
    text: str


def create_app(
    catalog: Catalog,
    cache_dir: Path,
    *,
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
    auth_token: str | None = None,
) -> FastAPI:
    """Load (or train once) every catalog model with a ``reference`` and serve it."""
    models: dict[str, ReferenceModel] = {}
    for entry in catalog.entries:
        if entry.reference is not None:
            model = load_or_train(entry.reference, cache_dir)
            if model.output_schema_version != entry.config.output_schema_version:
                raise ValueError(
                    f"{catalog.path}: version {entry.config.version} declares output schema "
                    f"v{entry.config.output_schema_version} but reference {entry.reference!r} "
                    f"emits v{model.output_schema_version}"
                )
            models[entry.config.version] = model
    app = FastAPI(title="modelbaton model server")

    def check_auth(request: Request) -> None:
        if auth_token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {auth_token}".encode()):
            raise HTTPException(401, "missing or wrong bearer token")

    def validate(text: str) -> None:
        if not text.strip():
            raise HTTPException(422, "text is empty")
        size = len(text.encode("utf-8"))
        if size > max_text_bytes:
            raise HTTPException(
                413, f"text is {size} bytes, above this server's limit of {max_text_bytes}"
            )

    def add_route(version: str, path: str, model: ReferenceModel) -> None:
        async def classify(body: ClassifyRequest, request: Request) -> dict[str, Any]:
            check_auth(request)
            validate(body.text)
            # Inference is CPU-bound: keep it off the event loop that accepts requests.
            return await run_in_threadpool(model.render, body.text)

        app.add_api_route(
            path,
            classify,
            methods=["POST"],
            name=f"classify_{version}",
            summary=f"Classify with {version} (output schema v{model.output_schema_version})",
        )

    for entry in catalog.entries:
        if entry.config.version in models:
            path = urlsplit(entry.config.endpoint).path
            add_route(entry.config.version, path, models[entry.config.version])

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "versions": sorted(models)}

    @app.get("/models")
    async def list_models() -> dict[str, Any]:
        return {
            "models": [
                {
                    "version": v,
                    "output_schema_version": m.output_schema_version,
                    "classes": list(m.classes),
                }
                for v, m in sorted(models.items())
            ]
        }

    return app


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn server on a background thread; yield its base URL."""
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("model server thread stopped before it started serving")
        return bool(server.started)

    polling.wait_until(
        started,
        within=30,
        every=0.02,
        give_up=lambda: RuntimeError("model server thread did not start within 30 s"),
    )
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT/SIGTERM (uvicorn handles both gracefully)."""
    print(f"serving on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
