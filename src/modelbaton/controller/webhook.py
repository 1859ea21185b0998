"""The webhook gate's call: POST one canary measurement to the plan's URL, read its verdict.

The request body is JSON: ``{"rollout_id", "task_queue", "metrics"}`` (``metrics``: both arms as
the controller measured them). The answer must be HTTP 200 with ``{"verdict": "pass" | "fail" |
"inconclusive", "reason": "..."}``. Anything else (no connection, a timeout, another status, a
body without a known verdict) is an inconclusive answer that says what went wrong, so a webhook
that is down holds the rollout rather than passing it. Flagger's confirm webhooks and Argo
Rollouts' web metric provider play the same part.
"""

from __future__ import annotations

from typing import Any

import httpx

from modelbaton.controller.gates import Verdict, WebhookAnswer

#: Longest reason kept from an answer (it is shown in the audit trail and the dashboard).
MAX_REASON = 300


def _no_answer(why: str) -> WebhookAnswer:
    return WebhookAnswer(verdict=Verdict.INCONCLUSIVE, reason=f"no verdict: {why}")


async def ask_webhook(url: str, payload: dict[str, Any], seconds: float) -> WebhookAnswer:
    """The webhook's verdict on ``payload``, or an inconclusive answer saying why there is none."""
    try:
        async with httpx.AsyncClient(timeout=seconds) as http:
            response = await http.post(url, json=payload)
    except httpx.TimeoutException:
        return _no_answer(f"{url} did not answer within {seconds:g} s")
    except httpx.HTTPError as exc:
        return _no_answer(f"{url} unreachable ({type(exc).__name__})")
    if response.status_code != 200:
        return _no_answer(f"{url} answered HTTP {response.status_code}")
    try:
        body = response.json()
        verdict = Verdict(body["verdict"])
    except (ValueError, KeyError, TypeError):
        return _no_answer(f'{url} answered without {{"verdict": "pass" | "fail" | "inconclusive"}}')
    reason = str(body.get("reason") or "")[:MAX_REASON]
    return WebhookAnswer(verdict=verdict, reason=reason)
