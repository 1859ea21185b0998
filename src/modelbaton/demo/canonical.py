"""Act 1, once the stack is up: one document's raw output from v1 and v2 beside the canonical
contract that workflows store."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from modelbaton.contracts import normalize
from modelbaton.models import Catalog, call_model_endpoint, make_http_client


async def show_raw_vs_canonical(console: Console, catalog: Catalog, text: str) -> None:
    table = Table(title="Same document, raw model output vs the canonical contract")
    table.add_column("model")
    table.add_column("raw output (what the model returns)", overflow="fold")
    table.add_column("canonical (what workflows store)", overflow="fold")
    async with make_http_client() as http:
        for version in ("v1", "v2"):
            config = catalog.get(version)
            raw = await call_model_endpoint(config, text, client=http)
            canonical = normalize(raw, config)
            table.add_row(version, raw.model_dump_json(), canonical.model_dump_json())
    console.print(table)
