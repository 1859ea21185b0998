"""The webhook gate: a real HTTP endpoint's verdict on each canary measurement; silence, errors
and nonsense are inconclusive (never a pass), and the plan validates its URL and timeout."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from modelbaton.controller.gates import (
    ArmMetrics,
    Metrics,
    Verdict,
    WebhookAnswer,
    canary_gates,
    overall,
)
from modelbaton.controller.plan import Gates, parse_plan
from modelbaton.controller.webhook import ask_webhook
from modelbaton.errors import ConfigError
from modelbaton.models.server import serve_in_thread

# Enough data for every statistical gate to pass (as in test_controller_plan.py's GOOD case,
# with the latency and review gates off to keep the example short).
BASE = ArmMetrics(completed=20_000, failed=100)
GOOD = ArmMetrics(completed=4_000, failed=20)
GATES = Gates(
    max_p95_latency_ratio=None,
    max_review_share_increase=None,
    max_accuracy_drop=None,
    webhook="http://gate.example/verdict",
)


def measured(answer: WebhookAnswer | None) -> Metrics:
    return Metrics(baseline=BASE, candidate=GOOD, webhook=answer)


def test_without_an_answer_the_step_cannot_pass() -> None:
    results = canary_gates(measured(None), GATES, min_documents=20)
    assert results[-1].gate == "webhook"
    assert results[-1].verdict is Verdict.INCONCLUSIVE
    assert overall(results) is Verdict.INCONCLUSIVE
    # The same measurement passes once the webhook says so, and fails when it says no.
    yes = canary_gates(measured(WebhookAnswer(verdict=Verdict.PASS)), GATES, 20)
    assert overall(yes) is Verdict.PASS
    no = canary_gates(
        measured(WebhookAnswer(verdict=Verdict.FAIL, reason="change freeze")), GATES, 20
    )
    assert overall(no) is Verdict.FAIL
    assert no[-1].line() == "webhook fail (change freeze)"


def test_a_plan_without_a_webhook_has_no_webhook_gate() -> None:
    plain = GATES.model_copy(update={"webhook": None})
    results = canary_gates(measured(None), plain, 20)
    assert "webhook" not in [r.gate for r in results]
    assert overall(results) is Verdict.PASS


def test_the_plan_checks_the_url_and_reads_the_timeout_as_a_duration() -> None:
    base = {"candidate": "v3", "steps": [{"kind": "canary", "fraction": 0.1}]}
    plan = parse_plan(
        {**base, "gates": {"webhook": "https://ops.example/gate", "webhook_timeout": "2s"}}
    )
    assert (plan.gates.webhook, plan.gates.webhook_timeout) == ("https://ops.example/gate", 2.0)
    with pytest.raises(ConfigError, match="webhook"):
        parse_plan({**base, "gates": {"webhook": "ops.example/gate"}})
    with pytest.raises(ConfigError, match="webhook_timeout"):
        parse_plan({**base, "gates": {"webhook": "http://x", "webhook_timeout": "5m"}})


def gate_app() -> FastAPI:
    app = FastAPI()
    app.state.seen = []

    @app.post("/pass")
    async def passing(request: Request) -> JSONResponse:
        app.state.seen.append(await request.json())
        return JSONResponse({"verdict": "pass", "reason": "on-call approved"})

    @app.post("/fail")
    async def failing() -> JSONResponse:
        return JSONResponse({"verdict": "fail", "reason": "x" * 1000})

    @app.post("/nonsense")
    async def nonsense() -> JSONResponse:
        return JSONResponse({"verdict": "maybe"})

    @app.post("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.post("/down")
    async def down() -> Response:
        return Response(status_code=503)

    @app.post("/slow")
    async def slow() -> JSONResponse:
        await asyncio.sleep(3)
        return JSONResponse({"verdict": "pass"})

    return app


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_the_webhook_is_asked_over_http_and_its_answer_read() -> None:
    app = gate_app()
    payload: dict[str, Any] = {"rollout_id": "r-1", "task_queue": "tq", "metrics": {"x": 1}}
    with serve_in_thread(app) as url:
        ok = await ask_webhook(f"{url}/pass", payload, 5)
        assert ok == WebhookAnswer(verdict=Verdict.PASS, reason="on-call approved")
        assert app.state.seen == [payload]
        no = await ask_webhook(f"{url}/fail", payload, 5)
        assert no.verdict is Verdict.FAIL
        assert len(no.reason) == 300
        cases = {
            "nonsense": "without {",
            "text": "without {",
            "down": "HTTP 503",
        }
        for path, why in cases.items():
            answer = await ask_webhook(f"{url}/{path}", payload, 5)
            assert answer.verdict is Verdict.INCONCLUSIVE, path
            assert why in answer.reason, answer.reason
        late = await ask_webhook(f"{url}/slow", payload, 0.5)
        assert late.verdict is Verdict.INCONCLUSIVE
        assert "did not answer within 0.5 s" in late.reason
    gone = await ask_webhook(f"http://127.0.0.1:{closed_port()}/pass", payload, 2)
    assert gone.verdict is Verdict.INCONCLUSIVE
    assert "unreachable" in gone.reason
