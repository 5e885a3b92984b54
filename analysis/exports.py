"""
The item export: one row per answer item of a wave with the themes of a
finished analysis run, as CSV or XLSX. The dashboard's download links and the
``export_items`` command both call ``item_rows`` and a writer here, so they give
the same rows with the same neutralisation.

Anonymity follows the run's ``suppressed`` list: a group too small to show is
left out entirely and a department or segment too small to show is blanked.
Respondents appear only as pseudonyms ("L1", "S3", "C17") numbered within
the file, never by database id, name or email.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import IO, BinaryIO

from django.db.models import Case, IntegerField, Value, When
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from surveys.models import AnswerItem, Group, Respondent, Wave

from .models import AnalysisRun, Theme

COLUMNS = ["group", "respondent", "department", "question", "tag", "text", "theme_id", "theme"]

GROUP_ORDER = [Group.LEADERSHIP.value, Group.STAFF.value, Group.CUSTOMER.value]
PSEUDONYM_PREFIX = {Group.LEADERSHIP: "L", Group.STAFF: "S", Group.CUSTOMER: "C"}

# A spreadsheet treats a cell starting with one of these as a formula (OWASP
# "CSV injection"; tab and carriage return included as OWASP advises).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# What an XLSX cell cannot hold: the control characters openpyxl refuses, and U+FFFE
# and U+FFFF, which XML forbids (openpyxl writes them, and the file then fails to open).
XLSX_ILLEGAL_CHARACTERS = re.compile(ILLEGAL_CHARACTERS_RE.pattern + "|[\ufffe\uffff]")

# Rows fetched per round trip: 60,000 items stream in bounded memory.
CHUNK_SIZE = 2000


def neutralise(value: object) -> str:
    """The cell as text, with a leading ``'`` when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _ordering(keys: list[str], field: str) -> Case:
    """Rank ``field`` by its position in ``keys`` (unknown values last), for ORDER BY."""
    return Case(
        *(When(**{field: key}, then=Value(n)) for n, key in enumerate(keys)),
        default=Value(len(keys)),
        output_field=IntegerField(),
    )


def _theme_labels(run: AnalysisRun) -> dict[tuple[str, int], str]:
    """(question, theme id) -> the label the run shows for that theme under that question."""
    return {
        (question, int(theme["theme_id"])): theme["label"]
        for question, block in ((run.result or {}).get("questions") or {}).items()
        for theme in block.get("themes", [])
    }


def item_rows(wave: Wave, run: AnalysisRun) -> Iterator[dict[str, str]]:
    """
    The export's rows (raw values, not yet neutralised), ordered by group,
    respondent, question (in the wave's order) and item order.

    Two queries: the themes for fallback labels, and the items with their
    respondent's group and department, streamed in chunks.
    """
    result = run.result or {}
    hidden_groups = {s["group"] for s in result.get("suppressed", []) if s.get("kind") == "group"}
    hidden_departments = {
        (s["group"], s["name"]) for s in result.get("suppressed", []) if s.get("kind") in ("department", "segment")
    }
    assignments: dict[str, int | None] = run.assignments or {}
    labels = _theme_labels(run)
    assigned_ids = {t for t in assignments.values() if t is not None}
    fallback = {
        pk: custom or label
        for pk, label, custom in Theme.objects.filter(engagement_id=wave.engagement_id, pk__in=assigned_ids).values_list(
            "pk", "label", "custom_label"
        )
    }
    question_keys = list(wave.questions.order_by("order").values_list("key", flat=True))
    items = (
        AnswerItem.objects.filter(respondent__wave=wave, respondent__status=Respondent.Status.SUBMITTED)
        .exclude(respondent__group__in=hidden_groups)
        .annotate(
            group_rank=_ordering(GROUP_ORDER, "respondent__group"),
            question_rank=_ordering(question_keys, "question_key"),
        )
        .order_by("group_rank", "respondent__group", "respondent_id", "question_rank", "question_key", "order", "id")
        .values_list("id", "respondent_id", "respondent__group", "respondent__department", "question_key", "tag", "text")
    )
    pseudonyms: dict[int, str] = {}
    counters: dict[str, int] = {}
    for item_id, respondent_id, group, department, question, tag, text in items.iterator(chunk_size=CHUNK_SIZE):
        if respondent_id not in pseudonyms:
            counters[group] = counters.get(group, 0) + 1
            pseudonyms[respondent_id] = f"{PSEUDONYM_PREFIX.get(group, group[:1].upper())}{counters[group]}"
        key = str(item_id)
        # An item the run never saw came in after it: its department was never checked
        # against the threshold (it may be a new one-person segment), so it is blanked.
        if (group, department) in hidden_departments or key not in assignments:
            department = ""
        theme_id = assignments.get(key)
        if theme_id is None:
            theme_label = ""
        else:
            theme_label = labels.get((question, theme_id)) or fallback.get(theme_id) or f"Theme {theme_id}"
        yield export_row(
            group=group,
            respondent=pseudonyms[respondent_id],
            department=department,
            question=question,
            tag=tag,
            text=text,
            theme_id=theme_id,
            theme=theme_label,
        )


def export_row(
    *, group: str, respondent: str, department: str, question: str, tag: str, text: str, theme_id: int | None, theme: str
) -> dict[str, str]:
    """One row of the export in ``COLUMNS``, raw (``neutralise`` is applied by the writers)."""
    return {
        "group": group,
        "respondent": respondent,
        "department": department,
        "question": question,
        "tag": tag,
        "text": text,
        "theme_id": "" if theme_id is None else str(theme_id),
        "theme": theme or "",
    }


PREDICTION_GROUP = "leadership-prediction:{target}"


def predicted_item_rows(run: AnalysisRun) -> Iterator[dict[str, str]]:
    """
    The opt-in export of the leaders' predicted items (``export_items
    --predictions`` and the reveal's download link): one row per item a leader
    expected a group to raise, in the item export's columns, group
    ``leadership-prediction:customer`` (or ``:staff``), the theme the run
    matched it to (empty when none). Read from the run's ``predictions``
    block, so a forecast from fewer leaders than the anonymity threshold,
    which the block leaves out, never appears here either.
    """
    targets = (((run.result or {}).get("predictions") or {}).get("targets")) or {}
    for target in ("customer", "staff"):
        questions = (targets.get(target) or {}).get("questions") or {}
        rows = [item | {"question": question} for question, block in questions.items() for item in block.get("items", [])]
        rows.sort(key=lambda item: (int(item["leader"][1:]), item["question"] != "strengths", item["item_id"]))
        for item in rows:
            yield export_row(
                group=PREDICTION_GROUP.format(target=target),
                respondent=item["leader"],
                department="",
                question=item["question"],
                tag="",
                text=item["text"],
                theme_id=item["theme_id"],
                theme=item["theme"] or "",
            )


def _cells(row: dict[str, object]) -> list[str]:
    return [neutralise(row.get(column)) for column in COLUMNS]


def _xlsx_cells(row: dict[str, object]) -> list[str]:
    # Drop what XLSX cannot hold *before* neutralising: "\x01=1" must not become "=1".
    values = ("" if row.get(column) is None else str(row.get(column)) for column in COLUMNS)
    return [neutralise(XLSX_ILLEGAL_CHARACTERS.sub("", value)) for value in values]


def csv_lines(rows: Iterable[dict[str, object]]) -> Iterator[str]:
    """The CSV text line by line (header first), for a streamed response."""

    class _Line:
        def write(self, text: str) -> str:
            return text

    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for row in rows:
        yield writer.writerow(_cells(row))


def write_csv(rows: Iterable[dict[str, object]], file: IO[str]) -> int:
    """Write the header and rows to a text file (open it with ``newline=""``); return the row count."""
    writer = csv.writer(file)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(_cells(row))
        count += 1
    return count


def write_xlsx(rows: Iterable[dict[str, object]], file: BinaryIO | str) -> int:
    """Write one worksheet "Items" to a binary file or path; return the row count.

    Every cell is a string (after ``neutralise`` none starts with "=", so openpyxl
    never stores a formula). Characters XLSX cannot hold are dropped.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Items")
    bold = Font(bold=True)
    header = []
    for column in COLUMNS:
        cell = WriteOnlyCell(sheet, value=column)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    count = 0
    for row in rows:
        sheet.append(_xlsx_cells(row))
        count += 1
    workbook.save(file)
    return count
