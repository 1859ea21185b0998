"""Process-wide settings read from the environment, with defaults for the embedded stack.

One pydantic-settings model reads every ``MODELBATON_*`` variable the package knows, validates it,
and names the variable in one line when its value is wrong. Code takes its settings from here
(``Settings.from_env()``), never from ``os.environ``; the one exception is a secret whose variable
name the user chooses (a model endpoint's ``auth_token_env``), read at call time.

Temporal connection settings are deliberately absent: they come from Temporal's own environment
configuration (``temporalio.envconfig``: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key,
profiles), see ``modelbaton.stack.connect``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelbaton.errors import ConfigError

DEFAULT_TASK_QUEUE = "modelbaton-classify"
ENV_PREFIX = "MODELBATON_"
_PACKAGE_DIR = Path(__file__).resolve().parent


class Settings(BaseSettings):
    """Where modelbaton keeps its state and finds its configuration.

    Each field is read from ``MODELBATON_<FIELD>`` (``catalog_path`` from ``MODELBATON_CATALOG``);
    paths are resolved, and the database and model cache default to files under ``home``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    home: Path = Path(".modelbaton")
    catalog_path: Path = Field(
        default=_PACKAGE_DIR / "models" / "catalog.toml", validation_alias="MODELBATON_CATALOG"
    )
    #: Unset means the SQLite file ``results.db`` under ``home``.
    database_url: str
    task_queue: str = DEFAULT_TASK_QUEUE
    model_base_url: str | None = None
    #: Trained models are keyed by corpus and code version, so state directories (the demo's, a
    #: test's) can share one cache instead of retraining. Unset means ``home/cache``.
    cache_dir: Path
    #: A pool counts as live while one of its pollers reached the server this recently.
    pool_liveness_seconds: float = Field(default=4.5, gt=0)
    #: The Temporal Web UI the dashboard links to when the stack file names none.
    temporal_ui_url: str | None = None
    #: The project config every command works on (``--project`` wins; see modelbaton.project).
    project: Path | None = None
    #: A bearer token the dashboard requires for its write actions (none: no token asked).
    ui_token: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _under_home(cls, data: Any) -> Any:
        """The database and the model cache default to files under ``home``."""
        if isinstance(data, dict):
            home = Path(data.get("home") or ".modelbaton").resolve()
            data = {
                "database_url": f"sqlite:///{home / 'results.db'}",
                "cache_dir": home / "cache",
            } | data
        return data

    @model_validator(mode="after")
    def _resolved(self) -> Self:
        self.home = self.home.resolve()
        self.cache_dir = self.cache_dir.resolve()
        return self

    @classmethod
    def from_env(cls) -> Settings:
        """The settings in force; ConfigError naming the variable whose value is wrong."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else "?"
            variable = name if name.startswith(ENV_PREFIX) else ENV_PREFIX + name.upper()
            raise ConfigError(
                f"environment variable {variable}={error.get('input')!r}: {error['msg']}"
            ) from None
