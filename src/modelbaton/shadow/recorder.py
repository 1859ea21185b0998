"""What the pipeline's ``record_shadow_comparison`` activity does: compare the arms' answers and
store the row of (rollout, document).

The activity itself stays with the pipeline's activities, because the document workflow schedules
it by typed reference and the pipeline may not import this room; the pipeline declares the hook
(:class:`modelbaton.pipeline.activities.ShadowRecorder`) and the composition root hands it this.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from modelbaton import metrics
from modelbaton.pipeline.messages import ShadowRecordInput
from modelbaton.shadow.compare import comparison_row
from modelbaton.shadow.store import ShadowStore


class ComparisonRecorder:
    """Stores shadow comparisons in ``shadow_comparisons`` on the results database's engine."""

    def __init__(self, engine: Engine) -> None:
        self._store = ShadowStore(engine)

    async def record(self, inp: ShadowRecordInput) -> None:
        """Compare, upsert the row, and count the first record of a document."""
        row = comparison_row(inp)
        # SQLAlchemy is synchronous: keep it off the event loop that serves other activities.
        await asyncio.to_thread(self._store.record, row)
        if inp.reviewed_label is None:  # the later record with the reviewed label is no new one
            metrics.shadow_compared(
                inp.baseline.model_version, inp.candidate.model_version, row.get("agree")
            )
