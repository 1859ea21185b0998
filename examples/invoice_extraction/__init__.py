"""A second reference pipeline, invoice field extraction, built only on modelbaton's public API.

Model v1 answers flat strings, v2 nested typed values; both normalize to one canonical
:class:`~invoice_extraction.contracts.Invoice`. See README.md in this folder.
"""
