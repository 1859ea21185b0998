"""``baton ui``: serve the rollout dashboard (read-only unless actions are allowed)."""

from __future__ import annotations

from pathlib import Path

import typer

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import fail
from modelbaton.cli._project import ProjectOption, TaskQueueOption, context, duration
from modelbaton.errors import ModelBatonError

DEFAULT_PORT = 8700


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."
    ),
    task_queue: str | None = TaskQueueOption,
    project: Path | None = ProjectOption,
    temporal_ui: str | None = typer.Option(
        None,
        "--temporal-ui",
        help="Base URL of the Temporal Web UI for workflow links (default: the embedded "
        "stack's, else MODELBATON_TEMPORAL_UI_URL; none: no links).",
    ),
    refresh: str = typer.Option(
        "5s", "--refresh", help="Time between the page's self-refreshes (1s to 1h; e.g. 5s, 1m)."
    ),
    allow_actions: bool = typer.Option(
        False,
        "--allow-actions",
        help="Offer promote and abort to requests that carry MODELBATON_UI_TOKEN (which must "
        "be set); without it the page is read-only.",
    ),
) -> None:
    """Serve the rollout dashboard: plan and steps, per-arm counts, the shadow report, the
    audit trail and links into the Temporal Web UI; the page refreshes by itself."""
    import socket

    from modelbaton.dashboard.app import UiConfig, create_app, serve, token_from_env
    from modelbaton.stack.connect import connect, read_stack_state

    every = duration(refresh, "--refresh")
    if not 1.0 <= every <= 3600.0:
        raise fail(f"--refresh {refresh!r}: must be between 1s and 1h")
    ctx = context(project, task_queue, needs_catalog="ui")
    settings = ctx.settings
    token = token_from_env()
    if allow_actions and token is None:
        raise fail("--allow-actions needs MODELBATON_UI_TOKEN set to the token to require")
    if temporal_ui is not None and not temporal_ui.startswith(("http://", "https://")):
        raise fail(f"--temporal-ui must be an http(s) URL, got {temporal_ui!r}")
    try:
        catalog = ctx.catalog()
        state = read_stack_state(settings.home) or {}
    except (ModelBatonError, OSError, ValueError) as exc:
        raise fail_error(exc) from None
    ui_url = temporal_ui or state.get("ui_url") or settings.temporal_ui_url
    config = UiConfig(
        connect=lambda: connect(settings.home),
        catalog=catalog,
        task_queue=ctx.task_queue,
        workflow_types=tuple(ctx.workflow_types),
        spec=ctx.spec(),
        database_url=settings.database_url,
        temporal_ui_url=ui_url or None,
        refresh_seconds=every,
        action_token=token if allow_actions else None,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until the server accepts them
    except OSError as exc:
        sock.close()
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror}; pass another --port") from None
    bound = sock.getsockname()[1]
    mode = "actions allowed with the token" if config.action_token else "read-only"
    try:
        app = create_app(config)  # opens the results database
    except Exception as exc:  # SQLAlchemy's errors too: one line, never a traceback
        sock.close()
        raise fail(f"cannot open the results database (MODELBATON_DATABASE_URL): {exc}") from None
    typer.echo(f"dashboard on http://{host}:{bound} ({mode}); Ctrl-C stops it")
    serve(app, sock)
