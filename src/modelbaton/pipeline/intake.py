"""Document intake: validation, identity and the size policy, before anything is started.

Size policy: documents travel in workflow history (the workflow input and the classify activity
input), and Temporal refuses any payload above 2 MiB. We cap documents at ``max_bytes`` (128 KiB
by default) and refuse larger ones at submit time, rather than adopting the SDK's experimental
claim-check storage: a business document above that size is better split or summarised upstream,
and a refusal leaves nothing half-started.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from modelbaton.errors import DocumentRejectedError

DEFAULT_MAX_DOCUMENT_BYTES = 128 * 1024


@dataclass(frozen=True)
class Document:
    """A validated document ready to submit."""

    document_id: str
    text: str
    source: str

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.document_id)


def document_id_for(text: str) -> str:
    """Content-derived id: the same document resubmitted maps to the same workflow."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def workflow_id_for(document_id: str) -> str:
    return f"classify-{document_id}"


def validate_text(text: str, source: str, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> Document:
    """Return a :class:`Document`, or raise :class:`DocumentRejectedError` saying why not."""
    if not text.strip():
        raise DocumentRejectedError(f"{source}: document is empty")
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise DocumentRejectedError(
            f"{source}: document is {size} bytes, above the {max_bytes}-byte limit "
            "(documents travel in workflow history; split it or raise --max-bytes, "
            "which must stay well below Temporal's 2 MiB payload limit)"
        )
    return Document(document_id=document_id_for(text), text=text, source=source)


def read_document(path: Path, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> Document:
    """Read and validate one UTF-8 text file."""
    try:
        size = path.stat().st_size
        if size > max_bytes * 4:  # never read a huge file whole just to refuse it
            raise DocumentRejectedError(
                f"{path}: document is {size} bytes, above the {max_bytes}-byte limit"
            )
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentRejectedError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DocumentRejectedError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return validate_text(text, str(path), max_bytes)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, and the files of each folder (sorted, recursively), skipping hidden ones."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            out.append(p)
    return out
