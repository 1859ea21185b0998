"""The catalog the project-command tests give the invoice example: its model id and versions,
endpoints that nothing serves (the commands only read it); and the example's config copied
beside it."""

from __future__ import annotations

from pathlib import Path

#: The example's own project config.
EXAMPLE = Path(__file__).parents[1] / "examples" / "invoice_extraction" / "modelbaton.toml"

INVOICE_CATALOG = """
[server]
base_url = "http://127.0.0.1:9"

[pipeline]
primary = "v1"

[[models]]
model_id = "invoice"
version = "v1"
endpoint = "/models/v1/extract"
output_schema_version = 1

[[models]]
model_id = "invoice"
version = "v2"
endpoint = "/models/v2/extract"
output_schema_version = 2
"""


def example_project(tmp_path: Path, catalog: str | None = None, **replace: str) -> Path:
    """The example's config in ``tmp_path`` (importing the example from where it is), with
    ``catalog`` written beside it and named when given; ``replace`` edits its text."""
    text = EXAMPLE.read_text().replace(
        'python_path = [".."]', f'python_path = ["{EXAMPLE.parents[1]}"]'
    )
    text = text.replace('histories = "histories"', f'histories = "{EXAMPLE.parent / "histories"}"')
    for old, new in replace.items():
        text = text.replace(old, new)
    if catalog is not None:
        (tmp_path / "catalog.toml").write_text(catalog)
        text += 'catalog = "catalog.toml"\n'
    path = tmp_path / "modelbaton.toml"
    path.write_text(text)
    return path
