"""Shadow comparison: per-document comparison rows, their table, and the report that gates
promotion (``baton shadow report``)."""
