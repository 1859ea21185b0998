"""Two rule-based extraction models and the HTTP server that serves them.

v1 knows one layout family: a currency code next to a dot-decimal amount, and day-first numeric
dates; it answers flat strings. v2 also reads currency symbols, continental amounts (1.234,50),
ISO dates and day-first written months, and answers nested typed values. Neither is told the
truth: accuracy is measured against the corpus (see ``accuracy.py``).

v3 is the quietly wrong candidate of the demo: v2's rules, except that on about 30 % of invoices
(chosen by a hash of the text, so the same ones every run) it answers the net amount (the total
divided by 1.2, rounded to the cent) as the total. Its output is valid schema v2 and plausible:
only a comparison with another model (or the truth) shows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

_MONTH_NAMES = (
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
MONTHS = {name.lower(): i + 1 for i, name in enumerate(_MONTH_NAMES)}
SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP"}
CODE = r"(EUR|USD|GBP|CHF)"
MONEY = r"(\d[\d.,]*\d)"

#: The catalog of this example: version -> (output schema version, path on the server).
VERSIONS: dict[str, tuple[int, str]] = {
    "v1": (1, "/v1/extract"),
    "v2": (2, "/v2/extract"),
    "v3": (2, "/v3/extract"),
}
#: Share of invoices on which v3 answers the net amount as the total.
V3_WRONG_SHARE = 0.3


def extract_v1(text: str) -> dict[str, Any]:
    """Flat strings; "" for a field not found."""
    total = currency = due = ""
    m = re.search(rf"{CODE}\s+(\d[\d,]*\.\d\d)\b", text) or re.search(
        rf"(\d[\d,]*\.\d\d)\s+{CODE}", text
    )
    if m:
        a, b = m.groups()
        currency, total = (a, b) if a.isalpha() else (b, a)
    d = re.search(r"\b(\d\d/\d\d/\d{4})\b", text)
    if d:
        due = d.group(1)
    return {"total": total, "currency": currency, "due": due}


def _amount(money: str) -> float:
    if re.search(r",\d\d$", money):  # continental: 1.234,50
        return float(money.replace(".", "").replace(",", "."))
    return float(money.replace(",", ""))


def extract_v2(text: str) -> dict[str, Any]:
    """Nested typed values; null for a field not found."""
    value: float | None = None
    currency: str | None = None
    for pattern, order in (
        (rf"{CODE}\s+{MONEY}", "cm"),
        (rf"{MONEY}\s+{CODE}", "mc"),
        (r"([€$£])" + MONEY, "sm"),
    ):
        m = re.search(pattern, text)
        if m:
            a, b = m.groups()
            if order == "cm":
                currency, value = a, _amount(b)
            elif order == "mc":
                currency, value = b, _amount(a)
            else:
                currency, value = SYMBOLS[a], _amount(b)
            break
    due: str | None = None
    if d := re.search(r"\b(\d\d)/(\d\d)/(\d{4})\b", text):
        due = f"{d.group(3)}-{d.group(2)}-{d.group(1)}"
    elif d := re.search(r"(?:due|Pay by)\s+(\d{4}-\d\d-\d\d)\b", text):
        due = d.group(1)
    elif d := re.search(r"\b(\d{1,2}) ([A-Z][a-z]+) (\d{4})\b", text):
        month = MONTHS.get(d.group(2).lower())
        if month:
            due = f"{d.group(3)}-{month:02d}-{int(d.group(1)):02d}"
    return {"amount": {"value": value, "currency": currency}, "due_date": due}


def v3_is_wrong(text: str) -> bool:
    """Whether v3 answers the net amount on this invoice (a stable hash of its text)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1000 < V3_WRONG_SHARE * 1000


def extract_v3(text: str) -> dict[str, Any]:
    """v2's answer, with the net amount as the total on about 30 % of invoices."""
    answer = extract_v2(text)
    value = answer["amount"]["value"]
    if value is not None and v3_is_wrong(text):
        answer["amount"]["value"] = round(value / 1.2, 2)
    return answer


MODELS = {"v1": extract_v1, "v2": extract_v2, "v3": extract_v3}


class ExtractRequest(BaseModel):
    text: str


def create_app() -> FastAPI:
    app = FastAPI(title="invoice extraction models")
    for version, (_, path) in VERSIONS.items():
        model = MODELS[version]

        def route(body: ExtractRequest, model: Any = model) -> dict[str, Any]:
            if not body.text.strip():
                raise HTTPException(422, "empty text")
            result: dict[str, Any] = model(body.text)
            return result

        app.post(path)(route)
    return app


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on an ephemeral port on a background thread; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the model server did not start")
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
