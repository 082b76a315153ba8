"""Fixed-width text tables for the commands that print one (frameworks, doctor, ecosystem)."""

from __future__ import annotations


def render(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Columns as wide as their widest cell, separated by two spaces, a rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return [line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]
