"""Real reference models behind a real HTTP server on an ephemeral port, once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.server import create_app, serve_in_thread
from modelbaton.settings import Settings


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained artifacts for this run (training all three takes a few seconds).

    Under pytest-xdist every worker is a session of its own; they share one cache beside their
    temporary roots, which is safe because artifacts are written atomically."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / "model-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def reference_catalog(model_cache: Path) -> Iterator[Catalog]:
    """The default catalog, its endpoints pointing at a live model server."""
    path = Settings.from_env().catalog_path
    app = create_app(load_catalog(path), model_cache)
    with serve_in_thread(app) as url:
        yield load_catalog(path, base_url=url)
