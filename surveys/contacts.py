"""Reading a customer contact list (pasted lines or an uploaded CSV) into contacts, or line-numbered errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .importing import csv_records
from .services import Contact
from .validators import control_character

# A contact list is a few thousand lines; anything far bigger is a wrong file.
MAX_CONTACT_BYTES = 2 * 1024 * 1024
MAX_CONTACTS = 20000


def parse_contacts(text: str, *, has_header: bool) -> tuple[list[Contact], list[str]]:
    """
    Parse ``email, name, segment`` rows. With a header, columns are found by
    name (extra columns ignored); without one, by position. Returns contacts
    and errors naming the line; any error means nothing should be imported.
    """
    errors: list[str] = []
    contacts: list[Contact] = []
    records = _records(text, errors)
    columns = {"email": 0, "name": 1, "segment": 2}
    if has_header:
        _, header = next(records, (1, []))
        names = [h.strip().lower() for h in header]
        if "email" not in names:
            return [], errors or ["line 1: the header has no “email” column (expected email, name, segment)."]
        columns = {name: names.index(name) if name in names else None for name in columns}
    for start, row in records:
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str) -> str:
            index = columns[name]
            return row[index].strip() if index is not None and index < len(row) else ""

        email = cell("email")
        try:
            validate_email(email)
        except ValidationError:
            errors.append(f"line {start}: “{email[:80]}” is not a valid email address.")
            continue
        name, segment = cell("name"), cell("segment")
        for column, value in (("name", name), ("segment", segment)):
            found = control_character(value)
            if found:
                errors.append(f"line {start}: the {column} contains an invisible {found}; remove it.")
        if len(name) > 200:
            errors.append(f"line {start}: the name is longer than 200 characters.")
        if len(segment) > 120:
            errors.append(f"line {start}: the segment is longer than 120 characters.")
        contacts.append(Contact(email=email, name=name, segment=segment))
        if len(contacts) > MAX_CONTACTS:
            return [], [f"More than {MAX_CONTACTS} contacts: split the list into smaller files."]
    if not contacts and not errors:
        errors.append("No contacts found.")
    return contacts, errors


def _records(text: str, errors: list[str]) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    return csv_records(reader, lambda line, problem: errors.append(f"line {line}: {problem}."))


def read_upload(upload) -> tuple[str | None, str | None]:
    """The uploaded file's text, or an error message."""
    if upload.size > MAX_CONTACT_BYTES:
        return None, f"The file is larger than {MAX_CONTACT_BYTES // (1024 * 1024)} MB; split it into smaller files."
    try:
        return upload.read().decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, "The file is not UTF-8 text; save it as “CSV UTF-8” and try again."
