"""The invoice contract: two raw output schemas and the one canonical type workflows read.

v1 answers flat strings; v2 nested typed values (a breaking change that the normalizers cover).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field

from modelbaton import ContractRegistry, ModelOutputError


class Invoice(BaseModel):
    """Canonical extraction result. Stored in histories: only optional fields may be added."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    total: Decimal | None = None
    currency: str | None = None
    due_date: date | None = None
    model_version: str = Field(min_length=1)
    schema_version: int = Field(ge=1)


#: The fields an extraction is judged on (accuracy, shadow agreement).
FIELDS = ("total", "currency", "due_date")


class InvoiceV1(BaseModel):
    """Raw v1: ``{"total": "1,234.50", "currency": "EUR", "due": "03/04/2026"}`` (day first);
    an empty string means not found."""

    total: str
    currency: str
    due: str


class Amount(BaseModel):
    value: float | None
    currency: str | None


class InvoiceV2(BaseModel):
    """Raw v2: ``{"amount": {"value": 1234.5, "currency": "EUR"}, "due_date": "2026-04-03"}``."""

    amount: Amount
    due_date: str | None


CONTRACTS: ContractRegistry[Invoice] = ContractRegistry("invoice", canonical=Invoice)


def _v1_total(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        return Decimal(text.replace(",", "")).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ModelOutputError(
            f"{text!r} is not an amount", field="total", schema_version=1
        ) from None


def _date(text: str | None, fmt: str, field: str, version: int) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        raise ModelOutputError(
            f"{text!r} is not a date ({fmt})", field=field, schema_version=version
        ) from None


@CONTRACTS.schema(1, InvoiceV1)
def from_v1(raw: InvoiceV1, model_version: str) -> Invoice:
    return Invoice(
        total=_v1_total(raw.total),
        currency=raw.currency.upper() or None,
        due_date=_date(raw.due, "%d/%m/%Y", "due", 1),
        model_version=model_version,
        schema_version=1,
    )


@CONTRACTS.schema(2, InvoiceV2)
def from_v2(raw: InvoiceV2, model_version: str) -> Invoice:
    value = raw.amount.value
    return Invoice(
        total=None if value is None else Decimal(str(value)).quantize(Decimal("0.01")),
        currency=raw.amount.currency.upper() if raw.amount.currency else None,
        due_date=_date(raw.due_date, "%Y-%m-%d", "due_date", 2),
        model_version=model_version,
        schema_version=2,
    )
