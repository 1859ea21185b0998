"""The catalog the project-command tests give the invoice example: its model id and versions,
endpoints that nothing serves (the commands only read it)."""

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
