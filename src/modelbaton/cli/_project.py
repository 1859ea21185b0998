"""What every ``baton`` command that reads workflows works on: the project, its task queue and
catalog, resolved one way.

- The project: ``--project PATH``, else ``MODELBATON_PROJECT``, else a ``modelbaton.toml`` (or a
  ``pyproject.toml`` with ``[tool.modelbaton]``) in the working folder or a parent up to the
  repository root, else the reference pipeline built in (``modelbaton.project.resolve_project``).
- The task queue: ``--task-queue``, else ``MODELBATON_TASK_QUEUE``, else the project's.
- The catalog: ``MODELBATON_CATALOG``, else the project's ``catalog``; a command that needs one
  refuses a project without it, naming the file and the key.

Options first, environment next, the config file last: the usual order, and the one that keeps
scripts that set ``MODELBATON_TASK_QUEUE`` working where a config is found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import fail
from modelbaton.durations import parse_duration
from modelbaton.errors import ModelBatonError
from modelbaton.settings import Settings

if TYPE_CHECKING:
    from modelbaton.models.catalog import Catalog
    from modelbaton.project import Project
    from modelbaton.rollout.spec import PipelineSpec

ProjectOption = typer.Option(
    None,
    "--project",
    help="Project config (modelbaton.toml, or pyproject.toml with [tool.modelbaton]); default "
    "MODELBATON_PROJECT, else one found here or above, else the reference pipeline.",
)
TaskQueueOption = typer.Option(
    None,
    "--task-queue",
    help="The pipeline's task queue (default MODELBATON_TASK_QUEUE, else the project's).",
)


@dataclass(frozen=True)
class Context:
    """A command's project, with its task queue and catalog resolved into ``settings``."""

    project: Project
    settings: Settings
    #: Where the catalog came from: ``MODELBATON_CATALOG``, the project's key, or None (none).
    catalog_source: str | None

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue

    @property
    def workflow_types(self) -> list[str]:
        return self.project.workflow_types

    def types_condition(self) -> str:
        """A visibility condition selecting the project's workflow types."""
        types = self.project.workflow_types
        if len(types) == 1:
            return f"WorkflowType = '{types[0]}'"
        return "WorkflowType IN (" + ", ".join(f"'{t}'" for t in types) + ")"

    def deployment(self, name: str | None = None) -> str:
        """The Worker Deployment: ``name`` (``--deployment``), else the task queue's."""
        from modelbaton.versioning.builds import check_deployment_name, deployment_name_for

        try:
            return check_deployment_name(name) if name else deployment_name_for(self.task_queue)
        except ModelBatonError as exc:
            raise fail_error(exc) from None

    def spec(self, release: str | None = None) -> PipelineSpec:
        """The project's pipeline as the rollout tools see it; ``release`` (the reference
        pipeline's ``--release``) says which schemas the workers' code serves."""
        try:
            spec = self.project.spec()
        except ModelBatonError as exc:
            raise fail_error(exc) from None
        if release is None:
            return spec
        from modelbaton.pipeline.releases import RELEASES, served_schemas

        if release not in RELEASES:
            raise fail(f"--release {release!r}: unknown; choose one of {', '.join(RELEASES)}")
        return replace(spec, schema_versions=served_schemas(release))

    def catalog(self) -> Catalog:
        """The catalog (with ``MODELBATON_MODEL_BASE_URL``); a ModelBatonError if invalid."""
        from modelbaton.models.catalog import load_catalog

        return load_catalog(
            self.settings.catalog_path,
            base_url=self.settings.model_base_url,
            contracts=self.project.contracts,
        )


def context(
    project: Path | None,
    task_queue: str | None = None,
    *,
    needs_catalog: str | None = None,
) -> Context:
    """Resolve the project and the settings a command runs with; bad input exits 2 in one line.

    ``needs_catalog`` names the command, which then refuses a project without a catalog.
    """
    from modelbaton.project import resolve_project

    try:
        loaded = resolve_project(project)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    settings = Settings.from_env()
    if task_queue is not None and not task_queue.strip():
        raise fail(f"--task-queue {task_queue!r}: must not be empty")
    # Any other name is Temporal's to judge (test fixtures use brackets, for one).
    from_env = settings.model_fields_set  # the variables that are set, by field
    queue = task_queue or (settings.task_queue if "task_queue" in from_env else loaded.task_queue)
    source: str | None
    if "catalog_path" in from_env:
        catalog, source = settings.catalog_path, "MODELBATON_CATALOG"
    elif loaded.catalog_path is not None:
        catalog, source = loaded.catalog_path, loaded.key("catalog")
    else:
        catalog, source = settings.catalog_path, None
    if needs_catalog and source is None:
        raise fail_error(
            loaded.error(
                "catalog",
                f"'{needs_catalog}' needs a model catalog and this project declares none "
                '(add catalog = "catalog.toml", or set MODELBATON_CATALOG)',
            )
        )
    return Context(
        loaded, settings.model_copy(update={"task_queue": queue, "catalog_path": catalog}), source
    )


def duration(value: str, option: str, *, positive: bool = True) -> float:
    """Seconds of a duration option (``30s``, ``5m``, ``24h``, ``1h30m``, plain seconds); a bad
    one exits 2 naming the option and the value."""
    try:
        return parse_duration(value, positive=positive)
    except ValueError as exc:  # the message ends with the value: ", got '5x'"
        reason = str(exc)
        message = f"{option} {reason}" if reason.startswith("must") else f"{option}: {reason}"
        raise fail(message) from None


#: ``--deployment`` of the commands that act on Worker Versioning builds.
DeploymentOption = typer.Option(
    None,
    "--deployment",
    help="Worker Deployment name (default: derived from the task queue, as workers do).",
)
