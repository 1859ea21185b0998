"""The reference pipeline's models: the catalog of versions, the HTTP model server and its client,
and the corpus they are trained and tested on.

The package's public names, imported lazily (see :mod:`modelbaton._lazy`): importing the package, in
the workflow sandbox too, costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

if TYPE_CHECKING:
    from modelbaton.models.catalog import (
        Catalog,
        PipelineSection,
        load_catalog,
    )
    from modelbaton.models.client import (
        call_model_endpoint,
        make_http_client,
    )
    from modelbaton.models.corpus import generate_documents
    from modelbaton.models.resolver import CatalogSource

_EXPORTS = {
    "Catalog": "modelbaton.models.catalog",
    "PipelineSection": "modelbaton.models.catalog",
    "load_catalog": "modelbaton.models.catalog",
    "call_model_endpoint": "modelbaton.models.client",
    "make_http_client": "modelbaton.models.client",
    "generate_documents": "modelbaton.models.corpus",
    "CatalogSource": "modelbaton.models.resolver",
}

__all__ = [
    "Catalog",
    "CatalogSource",
    "PipelineSection",
    "call_model_endpoint",
    "generate_documents",
    "load_catalog",
    "make_http_client",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
