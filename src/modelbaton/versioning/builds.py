"""Builds: a worker runs as one Worker Deployment version.

The deployment is the pipeline (one per task queue, named without dots: Temporal joins deployment
and build with a separator and refuses dots in the name); the build id is the code version of the
workflow the worker runs (by default the release name, so ``assigned`` code is build
``assigned``). Visibility shows the pair as ``TemporalWorkerDeploymentVersion = "<dep>:<build>"``.

Nothing here imports the workflow code, so the CLI can name builds without loading releases.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from modelbaton.errors import ConfigError

#: Characters a derived deployment name keeps; everything else becomes '-'.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
#: Visibility's search attribute holding "<deployment>:<build>" of a versioned workflow.
VERSION_ATTRIBUTE = "TemporalWorkerDeploymentVersion"


class Behavior(StrEnum):
    """How the pipeline's workflows follow builds (``--behavior``)."""

    PINNED = "pinned"  # finish on the build that started them (default: no patch needed)
    AUTO_UPGRADE = "auto-upgrade"  # move to the current build at their next task (needs patches)


def deployment_name_for(task_queue: str) -> str:
    """The pipeline's deployment name, derived from its task queue (dots and the like become -)."""
    name = _UNSAFE.sub("-", task_queue).strip("-")
    if not name:
        raise ConfigError(f"task queue {task_queue!r} gives an empty deployment name")
    return name


def check_deployment_name(name: str) -> str:
    """``name`` if Temporal accepts it as a deployment name, else a ConfigError saying why."""
    if not name:
        raise ConfigError("deployment name: must not be empty")
    if "." in name:
        raise ConfigError(f"deployment name {name!r}: must not contain a dot")
    return name


#: Modules whose source decides what a release's workflow does (its commands), beside the release
#: module itself. Activities are left out: they may change without changing the workflow.
_WORKFLOW_SOURCES = (
    "pipeline/messages.py",
    "pipeline/patches.py",
    "pipeline/search_attributes.py",
    "contracts/rollout.py",
)


def code_version(release: str, root: Path | None = None) -> str:
    """The default build id of ``release``: its name and a digest of its workflow code.

    The name alone does not say which code runs: the live release (``pipeline/workflow.py``)
    changes between deploys, and so do the messages and patches every release imports; two
    deploys with different code are different builds, and pinned workflows must stay on the one
    that started them. The digest changes exactly when the workflow's source does. Read as
    files, so the CLI does not import workflow code.
    """
    from modelbaton.pipeline.releases import source_of

    root = root or Path(__file__).resolve().parent.parent  # the modelbaton package
    digest = hashlib.sha256()
    for rel in (source_of(release), *_WORKFLOW_SOURCES):
        digest.update(rel.encode())
        digest.update((root / rel).read_bytes())
    return f"{release}-{digest.hexdigest()[:10]}"


def check_build_id(build_id: str) -> str:
    if not build_id or not build_id.strip():
        raise ConfigError("build id: must not be empty")
    if build_id != build_id.strip() or ":" in build_id:
        raise ConfigError(f"build id {build_id!r}: no spaces around it and no ':'")
    return build_id


@dataclass(frozen=True)
class Build:
    """One Worker Deployment version: the pipeline's deployment and a code version."""

    deployment: str
    build_id: str

    def __post_init__(self) -> None:
        check_deployment_name(self.deployment)
        check_build_id(self.build_id)

    @property
    def version(self) -> str:
        """As visibility spells it: ``<deployment>:<build>``."""
        return f"{self.deployment}:{self.build_id}"

    def visibility_query(self) -> str:
        """Workflows whose version (pinned, or last run for auto-upgrade) is this build."""
        return f"{VERSION_ATTRIBUTE} = '{self.version}'"

    @classmethod
    def parse(cls, text: str, deployment: str) -> Build:
        """``BUILD`` (in ``deployment``) or ``DEPLOYMENT:BUILD``."""
        if ":" in text:
            dep, _, build = text.partition(":")
            return cls(dep, build)
        return cls(deployment, text)
