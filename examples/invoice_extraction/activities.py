"""Activities: every model and database call of the invoice pipeline.

``extract_invoice_v1`` and ``extract_invoice_v2`` read one raw output schema each and return the
canonical :class:`Invoice`, normalized before anything leaves the activity. A pool registers the
one its version answers. ``extract_invoice`` is the first release's call (v1 only, on the
workflow's own queue), kept for the workflows that release started.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError

from invoice_extraction.contracts import CONTRACTS, Invoice
from invoice_extraction.messages import BookInput, InvoiceDocument
from invoice_extraction.models import VERSIONS
from modelbaton import ComparisonActivities, ModelBatonError, ModelTarget

EXTRACT_LEGACY = "extract_invoice"
EXTRACT_V1 = "extract_invoice_v1"
EXTRACT_V2 = "extract_invoice_v2"
BOOK = "book_invoice"

METADATA = sa.MetaData()
BOOKINGS = sa.Table(
    "invoice_bookings",
    METADATA,
    sa.Column("invoice_id", sa.String, primary_key=True),
    sa.Column("total", sa.String),
    sa.Column("currency", sa.String),
    sa.Column("due_date", sa.Date),
    sa.Column("model_version", sa.String, nullable=False),
    sa.Column("approver", sa.String, nullable=False),
    sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rollout_id", sa.String),  # None: booked outside a rollout
    sa.Column("arm", sa.String),
)


def _permanent(exc: Exception) -> ApplicationError:
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


class InvoiceActivities:
    """The model server at ``base_url`` serves every version at its path (``models.VERSIONS``)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, engine: sa.Engine) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._engine = engine
        METADATA.create_all(engine)

    async def _extract(self, target: ModelTarget, doc: InvoiceDocument, schema: int) -> Invoice:
        known = VERSIONS.get(target.model_version)
        if known is None or known[0] != schema or target.output_schema_version != schema:
            raise ApplicationError(
                f"{activity.info().activity_type} reads output schema v{schema}; "
                f"{target.model_version} is assigned v{target.output_schema_version}",
                type="ConfigError",
                non_retryable=True,
            )
        try:
            response = await self._http.post(
                self._base_url + known[1], json={"text": doc.text}, timeout=10.0
            )
        except httpx.HTTPError as exc:
            raise ApplicationError(f"model {target.model_version}: {exc}") from None  # retried
        if response.status_code >= 500:
            raise ApplicationError(f"model {target.model_version}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise _permanent(ValueError(f"HTTP {response.status_code}: {response.text[:200]}"))
        try:
            return CONTRACTS.normalize(schema, response.json(), target.model_version)
        except (ModelBatonError, ValueError) as exc:
            raise _permanent(exc) from None

    @activity.defn(name=EXTRACT_V1)
    async def extract_v1(self, target: ModelTarget, doc: InvoiceDocument) -> Invoice:
        return await self._extract(target, doc, 1)

    @activity.defn(name=EXTRACT_V2)
    async def extract_v2(self, target: ModelTarget, doc: InvoiceDocument) -> Invoice:
        return await self._extract(target, doc, 2)

    @activity.defn(name=EXTRACT_LEGACY)
    async def extract_legacy(self, doc: InvoiceDocument) -> Invoice:
        """The first release's call: always model v1."""
        target = ModelTarget(model_id="invoice", model_version="v1", output_schema_version=1)
        return await self._extract(target, doc, 1)

    @activity.defn(name=BOOK)
    async def book(self, inp: BookInput) -> bool:
        """Store the approved invoice (a retry or re-run overwrites its own row)."""
        row = {
            "invoice_id": inp.invoice_id,
            "total": None if inp.invoice.total is None else str(inp.invoice.total),
            "currency": inp.invoice.currency,
            "due_date": inp.invoice.due_date,
            "model_version": inp.invoice.model_version,
            "approver": inp.approver,
            "booked_at": datetime.now(UTC),
            "rollout_id": inp.assignment.rollout_id if inp.assignment else None,
            "arm": inp.assignment.arm.value if inp.assignment else None,
        }
        with self._engine.begin() as conn:
            conn.execute(BOOKINGS.delete().where(BOOKINGS.c.invoice_id == inp.invoice_id))
            conn.execute(BOOKINGS.insert().values(**row))
        return True

    def for_pool(self, version: str) -> list[object]:
        """The activity a pool of ``version`` registers."""
        return [self.extract_v1 if VERSIONS[version][0] == 1 else self.extract_v2]

    def for_workflow_worker(self) -> list[object]:
        """The first release's call, the booking, and the comparisons' record (in the same
        database as the bookings)."""
        return [self.extract_legacy, self.book, ComparisonActivities(self._engine).record]
