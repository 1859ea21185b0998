"""Model version configuration and deployment strategy (the article's vocabulary).

Histories recorded before the assignment patch hold these as workflow and activity inputs, so they
stay tolerant readers (``extra="ignore"``) that evolve only by adding optional fields. New workflows
record a :class:`~modelbaton.contracts.rollout.ModelAssignment` (identity only) instead, and the
classify activity resolves the configuration below from the catalog when it runs.
``ModelVersionConfig`` carries only the *name* of the environment variable holding an endpoint's
bearer token, never the token itself.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Upper bound of one classify attempt (the activity's start-to-close timeout). A worker that
#: dies mid-call is noticed after this long, so it stays short; an endpoint's timeouts fit in it.
CLASSIFY_ATTEMPT_SECONDS = 60.0


class ModelVersionConfig(BaseModel):
    """One deployable model version as declared in the catalog."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_id: str = Field(min_length=1)
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    endpoint: str = Field(min_length=1, description="Absolute http(s) URL of the classify call")
    output_schema_version: int = Field(ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(default=2.0, gt=0, le=600)
    auth_token_env: str | None = Field(
        default=None, description="Name of the environment variable holding the bearer token"
    )
    labels: tuple[str, ...] | None = Field(
        default=None, description="Declared label set; checked against outputs when given"
    )
    max_tokens: int = Field(default=4096, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_concurrent: int = Field(
        default=32, ge=1, le=1024, description="Classify calls one pool worker runs at once"
    )
    retry_window_seconds: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="How long transient failures (5xx, timeouts, refused connections) are retried",
    )

    @field_validator("endpoint")
    @classmethod
    def _absolute_http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an absolute http(s) URL, got {v!r}")
        return v

    @field_validator("auth_token_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(f"auth_token_env must be an environment variable name, got {v!r}")
        return v

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v or any(not label for label in v):
            raise ValueError("labels must be a non-empty list of non-empty names")
        if len(set(v)) != len(v):
            raise ValueError(f"labels must be unique, got {list(v)}")
        return v


class DeploymentStrategy(BaseModel):
    """Which model version served a workflow recorded before the assignment patch.

    Kept so that those histories decode; new workflows record a ``ModelAssignment``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    primary_version: ModelVersionConfig
    shadow_version: ModelVersionConfig | None = None
    task_queue_override: str | None = Field(default=None, min_length=1)
    canary_fraction: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _shadow_differs(self) -> DeploymentStrategy:
        shadow = self.shadow_version
        if shadow is not None and (shadow.model_id, shadow.version) == (
            self.primary_version.model_id,
            self.primary_version.version,
        ):
            raise ValueError(
                f"shadow_version must differ from primary_version "
                f"(both are {shadow.model_id}:{shadow.version})"
            )
        return self
