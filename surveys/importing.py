"""
Reading and checking a responses file for ``manage.py import_responses``.

The file is long format, one row per answer item or rating:

    group,respondent,department,members,question,tag,text
    customer,C17,Retail,,improvements,,Waited two weeks for an answer
    customer,C17,Retail,,rating:overall,,2
    staff,Team Blue,Support,7,continue_start,start,Call customers back

Everything here is plain Python with no database access: the caller passes
in the target wave's rating item keys and gets back ImportedRespondent values
for ``services.responses_import``, or an ImportRejected listing every problem
with the line a person sees in an editor (the header is line 1; a row whose
quoted text spans several lines is reported at the line where it starts).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .models import QUESTION_TAGS, RATING_MAX, RATING_MIN, STAFF_MEMBERS_MAX, STAFF_MEMBERS_MIN, Group, Respondent
from .services import ImportedRespondent, ImportRejected, ItemInput, LineError, RatingInput
from .validators import control_character

COLUMNS = ("group", "respondent", "department", "members", "question", "tag", "text")
RATING_PREFIX = "rating:"

# The database's limits, so a long value is reported on its line instead of failing the insert.
REF_MAX_LENGTH = Respondent._meta.get_field("external_ref").max_length
DEPARTMENT_MAX_LENGTH = Respondent._meta.get_field("department").max_length

# int() would also take "+3", " 3" or "1_0"; a count or rating in a file is plain digits.
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_MEMBERS_RANGE = f"a whole number from {STAFF_MEMBERS_MIN} to {STAFF_MEMBERS_MAX}"


def read_text(path: Path) -> str:
    """
    The file's text, refused when larger than GAPSURVEY_IMPORT_MAX_BYTES or
    not UTF-8 (a leading byte order mark, as Excel writes, is dropped).
    """
    limit = settings.GAPSURVEY_IMPORT_MAX_BYTES
    with path.open("rb") as file:
        # One byte past the limit tells "too large" without reading a huge file whole.
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ImportRejected(
            [LineError(None, f"The file is larger than {filesizeformat(limit)}; split it into smaller files.")]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # error.object, not data: after a byte order mark the positions start past it.
        line = error.object.count(b"\n", 0, error.start) + 1
        raise ImportRejected(
            [
                LineError(
                    line,
                    f"the file is not UTF-8 text (byte 0x{error.object[error.start]:02x} cannot be read); "
                    "save it as “CSV UTF-8” and try again",
                )
            ]
        ) from None


def parse_responses(text: str, *, rating_keys: Collection[str]) -> list[ImportedRespondent]:
    """
    Check every row of the file and group the rows into respondents, or raise
    ImportRejected with all the problems found. ``rating_keys`` are the target
    wave's rating items, the only ones ``rating:<item>`` may name.
    """
    return _Parser(rating_keys).parse(text)


@dataclass
class _Seen:
    """What earlier rows told about a respondent, to check its later rows against."""

    respondent: ImportedRespondent
    members: str  # as written, so a bad count is reported once, not on every row
    rated: dict[str, int]  # rating item key -> line
    items_per_question: dict[str, int]


class _Parser:
    def __init__(self, rating_keys: Collection[str]):
        self.rating_keys = set(rating_keys)
        self.max_items = settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION
        self.max_length = settings.GAPSURVEY_ITEM_MAX_LENGTH
        self.errors: list[LineError] = []
        # Keyed by (group, respondent id): the same id in two groups is two respondents.
        self.respondents: dict[tuple[str, str], _Seen] = {}

    def error(self, line: int, message: str) -> None:
        self.errors.append(LineError(line, message))

    def parse(self, text: str) -> list[ImportedRespondent]:
        records = self._records(text)
        header = next(records, None)
        if header is None:
            if not self.errors:
                self.error(1, f"the file is empty; its first line must be the header {','.join(COLUMNS)}")
            raise ImportRejected(self.errors)
        header_line, header_cells = header
        columns = self._columns(header_line, header_cells)
        if columns is None:
            raise ImportRejected(self.errors)
        rows = 0
        for line, cells in records:
            # Spreadsheets often save trailing rows of empty cells; they carry nothing.
            if not any(cell.strip() for cell in cells):
                continue
            rows += 1
            self._row(line, cells, columns, width=len(header_cells))
        if rows == 0 and not self.errors:
            self.error(header_line, "the file has a header but no rows of answers")
        if self.errors:
            raise ImportRejected(self.errors)
        return [seen.respondent for seen in self.respondents.values()]

    def _records(self, text: str) -> Iterator[tuple[int, list[str]]]:
        """Non-blank CSV records with the physical line each starts on."""
        # newline="" lets the csv module see the line endings inside quoted values,
        # and reader.line_num then counts physical lines, as an editor does.
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)

        def malformed(line: int, problem: str) -> None:
            self.error(line, f"{problem}; rows after it were not checked")

        for start, cells in csv_records(reader, malformed):
            if cells:
                yield start, cells

    def _columns(self, line: int, cells: list[str]) -> dict[str, int] | None:
        """Where each needed column is, or None (with the errors noted) when some are missing or repeated."""
        names = [cell.strip().lower() for cell in cells]
        missing = [name for name in COLUMNS if name not in names]
        repeated = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
        if missing:
            message = f"the header lacks {_quoted_list(missing)}; it needs the columns {','.join(COLUMNS)}"
            if len(cells) == 1 and (";" in cells[0] or "\t" in cells[0]):
                message += " separated by commas"
            self.error(line, message)
        if repeated:
            self.error(line, f"the header has {_quoted_list(repeated)} more than once")
        if missing or repeated:
            return None
        return {name: names.index(name) for name in COLUMNS}

    def _row(self, line: int, cells: list[str], columns: dict[str, int], *, width: int) -> None:
        if any(cell.strip() for cell in cells[width:]):
            # Likely an unquoted comma in the text, which would shift or cut the answer.
            self.error(
                line,
                f"this row has {len(cells)} values but the header has {width} columns "
                "(put text containing commas in double quotes)",
            )
            return
        value = {name: (cells[index] if index < len(cells) else "") for name, index in columns.items()}
        controls = {name: control_character(text) for name, text in value.items()}
        if any(controls.values()):
            # Said before anything else, and alone: the other messages quote the values.
            for name, found in controls.items():
                if found:
                    self.error(line, f"the {name} contains an invisible {found}; remove it")
            return
        group = value["group"].strip().lower()
        ref = value["respondent"].strip()
        if group not in Group.values:
            if group:
                self.error(line, f"unknown group “{value['group'].strip()}” (use leadership, staff or customer)")
            else:
                self.error(line, "the group is empty (use leadership, staff or customer)")
            group = ""
        if not ref:
            self.error(line, "the respondent id is empty")
        elif len(ref) > REF_MAX_LENGTH:
            self.error(line, f"the respondent id is longer than {REF_MAX_LENGTH} characters")
            ref = ""
        # The answer is checked even when its respondent is not, so one run reports every problem.
        answer = self._answer(line, value)
        if not (group and ref):
            return

        department = " ".join(value["department"].split())
        members = value["members"].strip()
        seen = self.respondents.get((group, ref))
        if seen is None:
            seen = self._first_row(line, group, ref, department, members)
        else:
            self._same_details(line, seen, department, members)
        if isinstance(answer, RatingInput):
            first = seen.rated.setdefault(answer.item_key, line)
            if first != line:
                self.error(line, f"respondent “{ref}” rates “{answer.item_key}” again (first on line {first})")
            else:
                seen.respondent.ratings.append(answer)
        elif isinstance(answer, ItemInput):
            count = seen.items_per_question.get(answer.question_key, 0) + 1
            seen.items_per_question[answer.question_key] = count
            if count == self.max_items + 1:  # said once, on the first row too many
                self.error(
                    line,
                    f"respondent “{ref}” has more than {self.max_items} items for “{answer.question_key}”",
                )
            seen.respondent.items.append(answer)

    def _first_row(self, line: int, group: str, ref: str, department: str, members: str) -> _Seen:
        """Register a respondent, checking its department and member count once."""
        member_count = None
        if group == Group.STAFF:
            if not department:
                self.error(line, "a staff sheet needs a department")
            if not members:
                self.error(line, f"a staff sheet needs members, {_MEMBERS_RANGE}")
            elif not _WHOLE_NUMBER.fullmatch(members) or not STAFF_MEMBERS_MIN <= int(members) <= STAFF_MEMBERS_MAX:
                self.error(line, f"members “{members}” is not {_MEMBERS_RANGE}")
            else:
                member_count = int(members)
        elif members:
            self.error(line, f"members applies to staff sheets only; leave it empty for {group}")
        if group == Group.LEADERSHIP and department:
            self.error(
                line,
                "department applies to staff (department) and customers (segment) only; leave it empty for leadership",
            )
        if len(department) > DEPARTMENT_MAX_LENGTH:
            self.error(line, f"the department is longer than {DEPARTMENT_MAX_LENGTH} characters")
        respondent = ImportedRespondent(group=group, ref=ref, line=line, department=department, members=member_count)
        seen = _Seen(respondent=respondent, members=members, rated={}, items_per_question={})
        self.respondents[(group, ref)] = seen
        return seen

    def _same_details(self, line: int, seen: _Seen, department: str, members: str) -> None:
        # One respondent is one sheet: a second department would silently split or move its answers.
        first = seen.respondent.line
        if department != seen.respondent.department:
            self.error(line, f"department “{department}” differs from “{seen.respondent.department}” on line {first}")
        if members != seen.members:
            self.error(line, f"members “{members}” differs from “{seen.members}” on line {first}")

    def _answer(self, line: int, value: dict[str, str]) -> ItemInput | RatingInput | None:
        """The row's item or rating, or None (with the errors noted)."""
        question = value["question"].strip().lower()
        tag = value["tag"].strip().lower()
        text = value["text"].strip()
        if question.startswith(RATING_PREFIX):
            return self._rating(line, question.removeprefix(RATING_PREFIX).strip(), tag, text)
        if question not in QUESTION_TAGS:
            shown = value["question"].strip()
            what = f"unknown question “{shown}”" if shown else "the question is empty"
            self.error(line, f"{what} (use {', '.join(QUESTION_TAGS)} or {RATING_PREFIX}<item>)")
            return None
        ok = True
        tags = QUESTION_TAGS[question]
        if not tags and tag:
            self.error(line, f"“{question}” items take no tag; leave “{value['tag'].strip()}” out")
            ok = False
        elif tags and not tag:
            self.error(line, f"“{question}” items need a tag: {_or_list(tags)}")
            ok = False
        elif tags and tag not in tags:
            self.error(line, f"tag “{value['tag'].strip()}” does not fit “{question}” (use {_or_list(tags)})")
            ok = False
        if not text:
            self.error(line, "the text is empty; each row carries one answer item")
            ok = False
        elif len(text) > self.max_length:
            self.error(
                line,
                f"the text is {len(text)} characters long; items are at most {self.max_length} "
                "(split it into shorter items)",
            )
            ok = False
        return ItemInput(question_key=question, text=text, tag=tag) if ok else None

    def _rating(self, line: int, item: str, tag: str, text: str) -> RatingInput | None:
        ok = True
        if item not in self.rating_keys:
            known = ", ".join(sorted(self.rating_keys)) or "none"
            self.error(line, f"unknown rating item “{item}” (this wave's rating items: {known})")
            ok = False
        if tag:
            self.error(line, f"ratings take no tag; leave “{tag}” out")
            ok = False
        scale = f"a whole number from {RATING_MIN} to {RATING_MAX}"
        if not text:
            self.error(line, f"the rating is empty; its text must be {scale}")
            return None
        if not _WHOLE_NUMBER.fullmatch(text) or not RATING_MIN <= int(text) <= RATING_MAX:
            self.error(line, f"rating “{text}” is not {scale}")
            return None
        return RatingInput(item_key=item, value=int(text)) if ok else None


def csv_records(reader, on_error: Callable[[int, str], None]) -> Iterator[tuple[int, list[str]]]:
    """
    The records of a ``csv.reader`` with the line each starts on. Malformed CSV
    ends them, reported to ``on_error`` with its line and what is wrong: the
    reader cannot find its footing again after it.
    """
    end_of_previous = 0
    while True:
        start = end_of_previous + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            on_error(start, csv_problem(error))
            return
        end_of_previous = reader.line_num
        yield start, cells


def csv_problem(error: csv.Error) -> str:
    # The csv module's messages are terse; these are the ones a hand-edited file runs into.
    detail = str(error)
    if "unexpected end of data" in detail:
        return "a quoted value is never closed (a closing “\"” is missing)"
    if "field larger than field limit" in detail:
        return f"a value is longer than {csv.field_size_limit()} characters (is a closing “\"” missing?)"
    return f"this row is not valid CSV ({detail}); a “\"” inside a quoted value must be doubled"


def _or_list(values: Collection[str]) -> str:
    """'good, bad or neutral'."""
    values = list(values)
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def _quoted_list(values: Collection[str]) -> str:
    names = [f"“{value}”" for value in values]
    noun = "the column" if len(names) == 1 else "the columns"
    return f"{noun} {', '.join(names)}"
