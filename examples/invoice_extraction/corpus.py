"""The bundled corpus: invoices generated deterministically (one seed), each with its true fields.

Layouts vary the way real invoices do: thousands separators, currency symbols or codes before or
after the amount, day-first numeric dates, ISO dates and written-out months. Nothing is random at
import time and nothing depends on the machine, so every run measures the same corpus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

SEED = 2026
SIZE = 400
CURRENCIES = ("EUR", "USD", "GBP", "CHF")
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
#: Written out in English whatever the locale (calendar.month_name follows the locale).
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
VENDORS = ("Initech", "Globex", "Umbrella Logistics", "Stark Supplies", "Acme GmbH", "Hooli")


@dataclass(frozen=True)
class Sample:
    invoice_id: str
    text: str
    total: Decimal
    currency: str
    due_date: date


def _money(amount: Decimal, rng: random.Random) -> str:
    whole, cents = f"{amount:.2f}".split(".")
    grouped = f"{int(whole):,}"
    style = rng.random()
    if style < 0.6:
        return f"{grouped}.{cents}"  # 1,234.50
    if style < 0.8:
        return f"{whole}.{cents}"  # 1234.50
    return f"{grouped.replace(',', '.')},{cents}"  # 1.234,50 (continental)


def _amount_line(amount: Decimal, currency: str, rng: random.Random) -> str:
    money = _money(amount, rng)
    style = rng.random()
    if style < 0.5:
        return f"Total due: {currency} {money}"
    if style < 0.7:
        return f"Amount payable {money} {currency}"
    if style < 0.85 and currency in SYMBOLS:
        return f"TOTAL {SYMBOLS[currency]}{money}"
    return f"Grand total: {money} {currency}"


def _due_line(due: date, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.5:
        return f"Due date: {due:%d/%m/%Y}"
    if style < 0.75:
        return f"Payment due {due.isoformat()}"
    if style < 0.9:
        return f"Pay by {due.day} {MONTHS[due.month - 1]} {due.year}"
    return f"Due: {MONTHS[due.month - 1]} {due.day}, {due.year}"


def generate(size: int = SIZE, seed: int = SEED) -> list[Sample]:
    """``size`` invoices from ``seed``: the same list on every machine."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for i in range(size):
        currency = rng.choice(CURRENCIES)
        total = Decimal(rng.randint(500, 2_500_000)) / 100
        due = date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))
        issued = due - timedelta(days=rng.choice((14, 30, 45)))
        lines = [
            f"INVOICE INV-{1000 + i}",
            f"From: {rng.choice(VENDORS)}",
            f"Issued {issued.isoformat()}",
            f"{rng.randint(1, 9)} x consulting services",
        ]
        body = [_amount_line(total, currency, rng), _due_line(due, rng)]
        rng.shuffle(body)
        out.append(
            Sample(
                invoice_id=f"inv-{i:04d}",
                text="\n".join(lines + body),
                total=total,
                currency=currency,
                due_date=due,
            )
        )
    return out
