from pathlib import Path

import pytest

from modelbaton.errors import DocumentRejectedError
from modelbaton.pipeline.intake import (
    document_id_for,
    expand_paths,
    read_document,
    validate_text,
    workflow_id_for,
)


def test_same_content_same_workflow_id() -> None:
    a = validate_text("Invoice 42", "a.txt")
    b = validate_text("Invoice 42", "b.txt")
    assert a.workflow_id == b.workflow_id == workflow_id_for(document_id_for("Invoice 42"))
    assert validate_text("Invoice 43", "c.txt").workflow_id != a.workflow_id


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_empty_document_refused(text: str) -> None:
    with pytest.raises(DocumentRejectedError, match=r"x\.txt: document is empty"):
        validate_text(text, "x.txt")


def test_oversized_document_refused_with_size_and_limit() -> None:
    with pytest.raises(DocumentRejectedError, match="is 11 bytes, above the 10-byte limit"):
        validate_text("a" * 11, "x.txt", max_bytes=10)
    assert validate_text("a" * 10, "x.txt", max_bytes=10).text == "a" * 10


def test_size_counts_utf8_bytes_not_characters() -> None:
    with pytest.raises(DocumentRejectedError, match="is 12 bytes"):
        validate_text("é" * 6, "x.txt", max_bytes=11)


def test_non_utf8_file_refused(tmp_path: Path) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes("facture n° 12".encode("latin-1"))
    with pytest.raises(DocumentRejectedError, match="not UTF-8 text"):
        read_document(p)


def test_missing_file_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentRejectedError, match="cannot read"):
        read_document(tmp_path / "nope.txt")


def test_folders_expand_sorted_without_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("c")
    names = [p.name for p in expand_paths([tmp_path])]
    assert names == ["a.txt", "b.txt", "c.txt"]
