"""The commands that compose the whole system: ``baton worker`` (a release's workflow worker,
or a model pool) and ``baton demo`` (which runs its own blue-green workers). They live in the
composition root because they wire every room together; the shell below them (``modelbaton.cli``)
holds every other command. Heavy modules are imported inside the commands, as in the shell."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import fail
from modelbaton.cli.pipeline import catalog_from
from modelbaton.errors import ModelBatonError
from modelbaton.pipeline.releases import CURRENT_RELEASE, RELEASES
from modelbaton.settings import Settings


def worker(
    task_queue: str | None = typer.Option(None, help="Task queue (default MODELBATON_TASK_QUEUE)."),
    release: str = typer.Option(
        CURRENT_RELEASE,
        # From the registry of releases, so that the list cannot go stale.
        help=f"Workflow release, one of: {', '.join(RELEASES)}.",
    ),
    pool: str | None = typer.Option(
        None,
        "--pool",
        help="Run the pool of this model version instead: only its classify activity, on the "
        "queue <task queue>-model-<version>, with the catalog's max_concurrent.",
    ),
    max_concurrent_activities: int = typer.Option(
        64, min=1, help="Workflow worker: activities (downstream writes) run at once."
    ),
    max_concurrent_workflow_tasks: int = typer.Option(
        8, min=1, help="Workflow worker: workflow tasks run at once (CPU-bound replay)."
    ),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        help="Serve Prometheus metrics (Temporal's SDK metrics and ours per model version and "
        "arm) at http://HOST:PORT/metrics.",
    ),
    versioned: bool = typer.Option(
        False,
        "--versioned",
        help="Run as a Worker Deployment version (Worker Versioning); the build id is the "
        "release's code version (name and digest of its workflow code).",
    ),
    build_id: str | None = typer.Option(
        None, "--build-id", help="Run as this build (implies --versioned)."
    ),
    deployment: str | None = typer.Option(
        None, "--deployment", help="Deployment name, no dots (default: from the task queue)."
    ),
    behavior: str = typer.Option(
        "pinned", "--behavior", help="Versioned workflows: pinned (default) or auto-upgrade."
    ),
) -> None:
    """Run a workflow worker (a release, the rollout workflow, shared activities) or a model pool,
    until SIGINT or SIGTERM."""
    from modelbaton.app.worker import WorkerOptions, run_worker
    from modelbaton.stack.connect import connect
    from modelbaton.versioning.builds import Behavior, Build, code_version, deployment_name_for

    if release not in list(RELEASES):  # the names only: a lookup would import the release
        raise fail(f"--release {release!r}: unknown; choose one of {', '.join(RELEASES)}")
    settings = Settings.from_env()
    queue = task_queue or settings.task_queue
    runtime = _metrics_runtime(metrics) if metrics else None
    try:
        chosen_behavior = Behavior(behavior)
    except ValueError:
        raise fail(f"--behavior {behavior!r}: choose pinned or auto-upgrade") from None
    build: Build | None = None
    if versioned or build_id is not None or deployment is not None:
        try:
            build = Build(
                deployment or deployment_name_for(queue), build_id or code_version(release)
            )
        except ModelBatonError as exc:
            raise fail_error(exc) from None
    if pool is not None:
        from modelbaton.app.worker import run_pool

        try:
            catalog_from(settings).get(pool)
        except ModelBatonError as exc:
            raise fail_error(exc) from None

        async def pool_main() -> None:
            client = await connect(settings.home, runtime=runtime)
            await run_pool(client, settings, queue, pool)

        try:
            asyncio.run(pool_main())
        except ModelBatonError as exc:
            raise fail_error(exc) from None
        return
    options = WorkerOptions(
        task_queue=queue,
        release=release,
        build=build,
        behavior=chosen_behavior,
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
    )

    async def main() -> None:
        client = await connect(settings.home, runtime=runtime)
        await run_worker(client, settings, options)

    try:
        asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None


def _metrics_runtime(address: str) -> Any:
    """The Temporal runtime that serves ``--metrics HOST:PORT``; a bad or taken address is a
    usage error."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"--metrics must be HOST:PORT, got {address!r}")
    from modelbaton.metrics import metrics_runtime

    try:
        return metrics_runtime(address)
    except Exception as exc:  # the SDK core reports a failed bind as a plain exception
        raise fail(f"cannot serve metrics at {address}: {exc}") from None


def demo(
    per_batch: int = typer.Option(12, min=2, max=500, help="Documents per batch."),
    review_threshold: float = typer.Option(
        0.8, min=0.0, max=1.0, help="Below this confidence a document waits for review."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Leave the stack running afterwards, to explore the Web UI."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="State directory (default: <MODELBATON_HOME>/demo, cleared first)."
    ),
    example: str | None = typer.Option(
        None,
        "--example",
        help="Run the demo of an example pipeline instead (examples/NAME/demo.py), e.g. "
        "invoice_extraction.",
    ),
) -> None:
    """Run the model-upgrade demo end to end on the embedded stack, then stop it."""
    if example is not None:
        raise typer.Exit(run_example(example))
    from modelbaton.app.worker import DemoWorkers
    from modelbaton.demo import main

    raise typer.Exit(
        main(
            home=home,
            per_batch=per_batch,
            review_threshold=review_threshold,
            keep=keep,
            workers=DemoWorkers(),
        )
    )


#: The repository's examples folder (beside ``src/``; absent from an installed wheel).
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def known_examples(folder: Path = EXAMPLES) -> list[str]:
    """Examples that have a demo: ``examples/NAME/demo.py``."""
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob("*/demo.py"))


def run_example(name: str, folder: Path = EXAMPLES) -> int:
    """Import ``examples/<name>/demo.py`` (with ``examples/`` on the path) and run its ``main``."""
    import importlib
    import sys

    known = known_examples(folder)
    if name not in known:
        where = f"known: {', '.join(known)}" if known else f"no examples folder at {folder}"
        raise fail(f"--example {name!r}: no such example with a demo ({where})")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    code: int = importlib.import_module(f"{name}.demo").main()
    return code


def register(app: typer.Typer) -> None:
    """Add the composing commands to the shell's command tree."""
    app.command()(worker)
    app.command()(demo)
