"""Act 5: the rollout controller upgrades the model to v3 unattended while documents arrive: a
shadow of every document until its verdict is READY, a 30 % canary, the promotion."""

from __future__ import annotations

from typing import Any

from modelbaton.demo.documents import Arrivals, Batch, Demo, settle
from modelbaton.demo.traffic import run_plan
from modelbaton.rollout import ChangeBy

#: The controller's plan: seconds, not hours, so the demo sees every step.
UPGRADE_PLAN: dict[str, Any] = {
    "candidate": "v3",
    "poll": 1,
    # Five canary documents cannot show non-inferiority: the gates only watch for harm here.
    "gates": {"waive": ["failure_rate", "p95_latency", "review_share", "reviewed_accuracy"]},
    "steps": [
        {"kind": "shadow", "sample": 1.0, "documents": 120, "noise_sample": 0.1, "budget": 30},
        {"kind": "canary", "fraction": 0.3, "bake": 5, "min_documents": 5},
        {"kind": "promote"},
    ],
}


async def upgrade_to_v3(demo: Demo) -> tuple[Batch, str | None]:
    """Run the upgrade; return the documents that arrived meanwhile and the rollout's id."""
    demo.console.rule("[bold]5. the rollout controller upgrades to v3 while documents arrive")
    demo.console.print(
        "plan: shadow every document until 120 comparisons are in and the verdict is READY; "
        "30 % canary for 5 s and 5 candidate documents; promote"
    )
    upgrade = Batch("upgrade")
    by = ChangeBy(actor="demo", reason="v3 adds the tax_form class")
    ctl = await run_plan(demo, UPGRADE_PLAN, by, upgrade, Arrivals("upgrade", seed=303))
    plan = await demo.rollouts.plan()
    demo.console.print(f"controller {ctl.phase.value}: baseline is now {plan.baseline.version}")
    await settle(upgrade)
    return upgrade, plan.rollout_id
