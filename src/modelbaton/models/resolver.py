"""Model configuration resolved when a model is called, never when a workflow starts.

Workflow histories record which model a document runs on (id and version); everything that can
change while a workflow lives (endpoint, timeouts, token variable, retry window) is read here from
the catalog at call time. The catalog file is reread when it changes, so an edited endpoint takes
effect on the next attempt without restarting a worker.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from modelbaton.contracts import ModelVersionConfig
from modelbaton.errors import CatalogError, ConfigError
from modelbaton.models.catalog import Catalog, load_catalog


class CatalogSource:
    """The catalog as of now: a fixed one, or a file reread whenever it changes."""

    def __init__(self, path: Path | None, base_url: str | None = None) -> None:
        self._path = path
        self._base_url = base_url
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._catalog: Catalog | None = None

    @classmethod
    def fixed(cls, catalog: Catalog) -> CatalogSource:
        """A source that always answers ``catalog`` (tests, benchmarks)."""
        source = cls(None)
        source._catalog = catalog
        return source

    def current(self) -> Catalog:
        """The catalog, reloaded when the file's size or modification time changed."""
        if self._path is None:
            assert self._catalog is not None
            return self._catalog
        try:
            st = os.stat(self._path)
        except OSError as exc:
            raise CatalogError(f"{self._path}: cannot read catalog: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._catalog is None or stamp != self._stamp:
                self._catalog = load_catalog(self._path, base_url=self._base_url)
                self._stamp = stamp
            return self._catalog

    def resolve(self, model_id: str, version: str) -> ModelVersionConfig:
        """The configuration of ``model_id`` version ``version`` in the current catalog."""
        config = self.current().get(version)
        if config.model_id != model_id:
            raise ConfigError(
                f"catalog version {version} belongs to model {config.model_id!r}, not {model_id!r}"
            )
        return config
