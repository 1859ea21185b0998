"""The dashboard's web app: FastAPI serving Jinja2 pages of :func:`~.view.build_view`.

Read-only by default. Actions (promote, abort) exist only when the app is given a token
(``baton ui --allow-actions`` with MODELBATON_UI_TOKEN set); a request must then carry it, as an
``Authorization: Bearer`` header or the session cookie that the page's sign-in form sets. They
go through the same rollout updates as ``baton rollout promote`` / ``abort``, with the same
shadow gate: from the shadow stage a promotion needs a READY shadow verdict (the page offers no
``--force``).
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from temporalio.client import Client
from temporalio.service import RPCError

from modelbaton.dashboard import charts
from modelbaton.dashboard import controller as controller_ui
from modelbaton.dashboard.view import DashboardSource, PanelProvider, build_view
from modelbaton.errors import ModelBatonError, RolloutError
from modelbaton.models.catalog import Catalog
from modelbaton.pipeline.store import ResultsStore
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.rollout.spec import PipelineSpec
from modelbaton.settings import Settings
from modelbaton.shadow.report import build_report
from modelbaton.shadow.store import ShadowStore

_HERE = Path(__file__).resolve().parent
COOKIE = "baton_ui"
#: Header the page's refresh script sends: the answer is then only the page's <main> part.
PARTIAL_HEADER = "x-baton-partial"

#: An action of the page: (rollouts, who and why, the shadow gate's evidence) -> the new plan.
Action = Callable[[Rollouts, ChangeBy], Awaitable[Any]]


async def _promote(rollouts: Rollouts, by: ChangeBy) -> Any:
    return await rollouts.promote(by)


#: The actions the page offers when enabled; pause, resume and abort go through the rollout
#: controller when one drives the rollout (abort falls back to the rollout itself).
DEFAULT_ACTIONS: dict[str, Action] = {
    "promote": _promote,
    "pause": controller_ui.pause,
    "resume": controller_ui.resume,
    "abort": controller_ui.abort,
}


@dataclass
class UiConfig:
    """What the app serves and how it reaches its sources."""

    connect: Callable[[], Awaitable[Client]]
    catalog: Catalog
    task_queue: str
    database_url: str
    temporal_ui_url: str | None = None
    refresh_seconds: float = 5.0
    #: None: read-only (no action is offered, every action request is refused).
    action_token: str | None = None
    actions: dict[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    panel_providers: Sequence[PanelProvider] = (controller_ui.controller_panel,)
    #: The pipeline's workflow types (the project's); None: the reference pipeline's.
    workflow_types: tuple[str, ...] | None = None
    #: The pipeline as the rollout tools see it (the project's); None: the reference pipeline's.
    spec: PipelineSpec | None = None


def _session_value(token: str) -> str:
    # The cookie holds a digest of the token, not the token itself.
    return hmac.new(token.encode(), b"modelbaton-ui-session", hashlib.sha256).hexdigest()


def authenticated(request: Request, token: str | None) -> bool:
    """Whether ``request`` carries ``token`` (bearer header) or the session cookie it makes."""
    if not token:
        return False
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(
        header[7:].strip().encode(), token.encode()
    ):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, _session_value(token))


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, d=0: "-" if v is None else f"{v:.{d}%}".replace("%", " %")
    env.filters["ms"] = lambda v: f"{v:,.0f} ms"
    env.filters["hms"] = lambda at: "-" if at is None else at.strftime("%H:%M:%S")
    env.filters["when"] = lambda at: "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")
    env.filters["count"] = lambda n, unit: f"{n:,} {unit if n == 1 else unit + 's'}"
    return env


def create_app(config: UiConfig) -> FastAPI:
    """The dashboard app for ``config``."""
    app = FastAPI(title="modelbaton dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    templates = _templates()
    store = ResultsStore(config.database_url)
    ShadowStore(store.engine)  # creates the comparisons table when the database is new
    state: dict[str, Client] = {}

    async def client() -> Client:
        if "client" not in state:
            state["client"] = await config.connect()
        return state["client"]

    async def source() -> DashboardSource:
        made = DashboardSource(
            client=await client(),
            catalog=config.catalog,
            task_queue=config.task_queue,
            engine=store.engine,
            temporal_ui_url=config.temporal_ui_url,
        )
        if config.workflow_types:
            made = replace(made, workflow_types=config.workflow_types)
        return replace(made, spec=config.spec) if config.spec else made

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(charts=charts, config=config, **context)
        return HTMLResponse(html, status_code=status)

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request, rollout: str | None = None, notice: str = "") -> Response:
        signed_in = authenticated(request, config.action_token)
        partial = request.headers.get(PARTIAL_HEADER) == "1"
        try:
            view = await build_view(await source(), rollout, config.panel_providers)
        except (ModelBatonError, RPCError, RuntimeError) as exc:
            message = " ".join(str(exc).split())
            return render(
                "error.html" if not partial else "_error.html",
                503,
                message=message,
                now=datetime.now(UTC),
            )
        return render(
            "_main.html" if partial else "page.html",
            view=view,
            signed_in=signed_in,
            actions_enabled=config.action_token is not None,
            actions=sorted(config.actions),
            notice=notice,
        )

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        given = (form.get("token") or [""])[0]
        if not config.action_token:
            return PlainTextResponse("actions are disabled on this dashboard", 403)
        if not hmac.compare_digest(given.encode(), config.action_token.encode()):
            return PlainTextResponse("wrong token", 401)
        response = RedirectResponse("/?" + urlencode({"notice": "signed in"}), 303)
        response.set_cookie(
            COOKIE, _session_value(config.action_token), httponly=True, samesite="strict"
        )
        return response

    @app.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/", 303)
        response.delete_cookie(COOKIE)
        return response

    @app.post("/actions/{name}")
    async def act(name: str, request: Request) -> Response:
        if config.action_token is None:
            return PlainTextResponse(
                "actions are disabled: start 'baton ui --allow-actions' with MODELBATON_UI_TOKEN",
                403,
            )
        if not authenticated(request, config.action_token):
            return PlainTextResponse(
                "not authenticated: send Authorization: Bearer <MODELBATON_UI_TOKEN>",
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        action = config.actions.get(name)
        if action is None:
            return PlainTextResponse(f"unknown action {name!r}", 404)
        form = parse_qs((await request.body()).decode())
        reason = (form.get("reason") or [""])[0]
        actor = (form.get("by") or [""])[0] or f"dashboard@{socket.gethostname()}"
        rollouts = (await source()).rollouts
        try:
            # Only leaving the shadow stage needs its verdict; stopping never does.
            evidence = (
                await _shadow_evidence(rollouts, store, config.catalog) if name == "promote" else ""
            )
            plan = await action(rollouts, ChangeBy(actor=actor, reason=reason, evidence=evidence))
        except ModelBatonError as exc:
            message = " ".join(str(exc).split())
            if "application/json" in request.headers.get("accept", ""):
                return PlainTextResponse(message, 409)
            return RedirectResponse("/?" + urlencode({"notice": f"{name}: {message}"}), 303)
        done = f"{name}: done, revision {getattr(plan, 'revision', '?')}"
        if "application/json" in request.headers.get("accept", ""):
            return PlainTextResponse(done, 200)
        return RedirectResponse("/?" + urlencode({"notice": done}), 303)

    app.state.store = store  # closed by the caller when the server stops
    return app


async def _shadow_evidence(rollouts: Rollouts, store: ResultsStore, catalog: Catalog) -> str:
    """As the CLI: leaving the shadow stage needs a READY verdict, recorded as evidence."""
    plan = await rollouts.plan()
    if plan.stage != "shadow" or not plan.rollout_id:
        return ""
    rows = ShadowStore(store.engine).rows(plan.rollout_id)
    if not rows:
        raise RolloutError(f"rollout {plan.rollout_id} has no shadow comparisons yet")
    report = build_report(plan.rollout_id, rows, catalog.shadow_gate)
    if not report.ready:
        raise RolloutError(f"refused: {report.summary()}")
    return str(report.summary())


def token_from_env() -> str | None:
    """The action token (MODELBATON_UI_TOKEN), or None when unset or empty."""
    return Settings.from_env().ui_token


def serve(app: FastAPI, sock: Any) -> None:
    """Serve ``app`` on the bound socket ``sock`` until SIGINT or SIGTERM."""
    import asyncio

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        app.state.store.close()
        sock.close()
