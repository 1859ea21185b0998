"""Direction-aware compatibility of JSON Schemas. Pure: no I/O, no Temporal.

The model is the writer and workflow code the reader (Confluent's vocabulary):

- BACKWARD: a new reader reads old data, as when new worker code replays old histories;
- FORWARD: an old reader reads new data, as when in-flight old code receives a new model's output;
- FULL: both; FULL_TRANSITIVE: both, against every earlier version.

The checker fails closed. Every keyword is either modelled (it has a change kind with a direction),
on the :data:`ANNOTATIONS` allow-list (it cannot change which instances validate), or reported as
:attr:`ChangeKind.UNKNOWN`, which breaks both directions. A shape it cannot compare (an ambiguous
union, a recursive ``$ref``, a keyword whose meaning depends on its siblings) is UNKNOWN too.

Assumptions, stated once:

- Writers emit only the fields their schema declares (they are Pydantic models or models checked
  against one), and Pydantic readers ignore extra fields by default. So a field added to the writer
  breaks no reader unless the reader forbids extras (``additionalProperties: false``), and a
  reader's optional field cannot meet a value of another type under the same name.
- Each keyword is compared on its own. Where two keywords interact (``minimum`` replaced by
  ``exclusiveMinimum``, ``int | float`` narrowed to ``float``) the report may name a break the pair
  does not really have: that over-reports, it never under-reports.
- Identical subschemas (after resolving ``$ref`` and dropping annotations) are compatible.
"""

from __future__ import annotations

from modelbaton.compat._changes import Change, ChangeKind
from modelbaton.compat._keywords import ANNOTATIONS, LABEL_SET_KEY
from modelbaton.compat._reports import (
    PairReport,
    TransitiveReport,
    check_transitive,
    compare_schemas,
    model_schema,
    schema_for,
)
from modelbaton.compat._walker import diff_schemas

__all__ = [
    "ANNOTATIONS",
    "LABEL_SET_KEY",
    "Change",
    "ChangeKind",
    "PairReport",
    "TransitiveReport",
    "check_transitive",
    "compare_schemas",
    "diff_schemas",
    "model_schema",
    "schema_for",
]
