"""The invoice pipeline's ground truth for the accuracy gate: audits.

Finance audits a sample of booked invoices against the paper invoice and records the true
total, currency and due date (:data:`AUDITS`). :class:`InvoiceAudits` counts, per rollout arm,
the audited bookings and those whose three fields the model had right: a
``modelbaton.GroundTruth``, handed to ``RolloutControl(..., ground_truth=...)``. An approval is
not a correction (the clerk approves what the model read), so approvals are never counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from invoice_extraction.activities import BOOKINGS, METADATA

AUDITS = sa.Table(
    "invoice_audits",
    METADATA,
    sa.Column("invoice_id", sa.String, primary_key=True),
    sa.Column("total", sa.String, nullable=False),
    sa.Column("currency", sa.String, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
)


def record_audits(engine: sa.Engine, audits: Iterable[tuple[str, Decimal, str, date]]) -> None:
    """Store audits: (invoice id, true total, currency, due date); a re-audit replaces one."""
    METADATA.create_all(engine)
    with engine.begin() as conn:
        for invoice_id, total, currency, due in audits:
            conn.execute(AUDITS.delete().where(AUDITS.c.invoice_id == invoice_id))
            conn.execute(
                AUDITS.insert().values(
                    invoice_id=invoice_id, total=str(total), currency=currency, due_date=due
                )
            )


class InvoiceAudits:
    """Per arm of a rollout: (audited bookings, of which every field was right)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        METADATA.create_all(engine)

    def judged(self, rollout_id: str) -> dict[str, tuple[int, int]]:
        query = (
            sa.select(
                BOOKINGS.c.arm,
                BOOKINGS.c.total,
                BOOKINGS.c.currency,
                BOOKINGS.c.due_date,
                AUDITS.c.total,
                AUDITS.c.currency,
                AUDITS.c.due_date,
            )
            .join(AUDITS, AUDITS.c.invoice_id == BOOKINGS.c.invoice_id)
            .where(BOOKINGS.c.rollout_id == rollout_id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        judged: Counter[str] = Counter()
        right: Counter[str] = Counter()
        for arm, total, currency, due, true_total, true_currency, true_due in rows:
            judged[arm] += 1
            right[arm] += (
                total is not None
                and Decimal(total) == Decimal(true_total)
                and currency == true_currency
                and due == true_due
            )
        return {arm: (judged[arm], right[arm]) for arm in judged}
