"""The published data against the documents it was read from (../shared/seeds).

These run where the documents are (CI) and skip with a reason in a user's clone.
Every quote must be verbatim, every figure must sit in its quote, every table row must be
printed in the document with its cells in order, and every number the document prints must be
in the fixtures or be one of the documented kinds of non-figures.
"""

import re
from pathlib import Path

import pytest

from stats.printed import collapse_whitespace
from stats.services.reports import reports_read, source_rows
from stats.services.tables import is_total


def normalized_document(path: Path) -> str:
    text = path.read_text(encoding="utf-8").replace("**", "")
    return collapse_whitespace(text)


def sources():
    return [s for s in reports_read()[1]]


def source_ids():
    return [s.data["source"]["slug"] for s in sources()]


@pytest.fixture(params=source_ids())
def source_and_document(request, seeds_dir):
    source_file = next(s for s in sources() if s.data["source"]["slug"] == request.param)
    return source_file, normalized_document(seeds_dir / source_file.data["source"]["document"])


def test_every_quote_is_verbatim(source_and_document):
    source_file, document = source_and_document
    missing = [
        fig["quote"]
        for fig in source_file.data.get("figures") or []
        if collapse_whitespace(fig["quote"]) not in document
    ]
    assert missing == []


def test_every_figure_is_printed_in_its_quote(source_and_document):
    source_file, _ = source_and_document
    wrong = [
        (fig["text"], fig["quote"])
        for fig in source_file.data.get("figures") or []
        if fig.get("text") and collapse_whitespace(str(fig["text"])) not in collapse_whitespace(fig["quote"])
    ]
    assert wrong == []


def _printed_in_order(document: str, parts: list[str]) -> bool:
    separator = r"[\s|\-–—]*"
    pattern = separator.join(re.escape(collapse_whitespace(p)) for p in parts if collapse_whitespace(p))
    return re.search(pattern, document) is not None


def test_every_table_row_is_printed_with_its_cells_in_order(source_and_document):
    source_file, document = source_and_document
    not_found = []
    for table in source_file.data.get("tables") or []:
        lines = [line.split("|") for line in str(table["cells"]).strip().splitlines() if line.strip()]
        if "printed transposed" in (table.get("note") or ""):
            # Printed with the measures down the side: each column appears as a printed row.
            for i, header in enumerate(table["header"], start=1):
                column = [cells[i] for cells in lines if not is_total(cells[0])]
                if not _printed_in_order(document, column):
                    not_found.append((table["title"], header, column))
            continue
        for cells in lines:
            if not _printed_in_order(document, cells):
                not_found.append((table["title"], cells))
    assert not_found == []


def test_each_table_cell_becomes_one_observation(source_and_document):
    source_file, _ = source_and_document
    rows, errors = source_rows(source_file)
    assert errors == []
    for table in source_file.data.get("tables") or []:
        lines = [line for line in str(table["cells"]).strip().splitlines() if line.strip()]
        cells = [r for r in rows if r.from_table and r.table == collapse_whitespace(table["title"])]
        assert len(cells) == len(lines) * len(table["header"]), table["title"]


NUMBER = re.compile(r"(?<![\w/.])\d[\d,]*(?:\.\d+)?")
NOT_FIGURES = [
    re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b"),  # dates 1/1/2021
    re.compile(r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}"),  # Dec. 31, 2021
    re.compile(r"\b1-800-[\dA-Z-]+"),  # phone numbers
    re.compile(r"\b501\(c\)\(3\)"),
    re.compile(r"Grant No\. \S+"),
    re.compile(r"\b24/7\b"),
]


def document_numbers(document: str) -> list[str]:
    for pattern in NOT_FIGURES:
        document = pattern.sub(" ", document)
    found = []
    for match in NUMBER.finditer(document):
        token = match.group().rstrip(",.")
        if re.fullmatch(r"(19[89]\d|20[0-3]\d)", token):
            continue  # a year
        found.append(token)
    return found


def test_every_number_in_the_document_is_a_figure_or_a_documented_non_figure(source_and_document):
    source_file, document = source_and_document
    data = source_file.data
    covered = set()
    for fig in data.get("figures") or []:
        covered.update(NUMBER.findall(str(fig.get("text", ""))))
    for table in data.get("tables") or []:
        for line in str(table["cells"]).splitlines():
            for cell in line.split("|"):
                covered.update(NUMBER.findall(cell))
    for entry in data.get("not_figures") or []:
        assert entry.get("reason"), entry
        covered.add(str(entry["text"]))
    missing = sorted({n for n in document_numbers(document) if n not in covered})
    assert missing == []
