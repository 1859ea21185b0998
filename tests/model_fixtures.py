"""Real reference models behind a real HTTP server on an ephemeral port, once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.server import create_app, serve_in_thread
from modelbaton.settings import Settings


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained artifacts for this session (training all three takes a few seconds)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def reference_catalog(model_cache: Path) -> Iterator[Catalog]:
    """The default catalog, its endpoints pointing at a live model server."""
    path = Settings.from_env().catalog_path
    app = create_app(load_catalog(path), model_cache)
    with serve_in_thread(app) as url:
        yield load_catalog(path, base_url=url)
