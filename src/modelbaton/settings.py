"""Process-wide settings read from the environment, with defaults for the embedded stack.

Temporal connection settings are deliberately absent: they come from Temporal's own environment
configuration (``temporalio.envconfig``: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key,
profiles), see ``modelbaton.stack.connect``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TASK_QUEUE = "modelbaton-classify"
_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Settings:
    """Where modelbaton keeps its state and finds its configuration."""

    home: Path
    catalog_path: Path
    database_url: str
    task_queue: str
    model_base_url: str | None
    cache_dir: Path

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("MODELBATON_HOME", ".modelbaton")).resolve()
        catalog = os.environ.get("MODELBATON_CATALOG")
        db = os.environ.get("MODELBATON_DATABASE_URL") or f"sqlite:///{home / 'results.db'}"
        return cls(
            home=home,
            catalog_path=Path(catalog) if catalog else _PACKAGE_DIR / "models" / "catalog.toml",
            database_url=db,
            task_queue=os.environ.get("MODELBATON_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            model_base_url=os.environ.get("MODELBATON_MODEL_BASE_URL") or None,
            # Trained models are keyed by corpus and code version, so state directories (the
            # demo's, a test's) can share one cache instead of retraining.
            cache_dir=Path(os.environ.get("MODELBATON_CACHE_DIR") or home / "cache").resolve(),
        )
