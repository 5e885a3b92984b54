"""Checks on free text that every form and importer taking it shares."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# C0 and C1 control characters and DEL, except tab, line feed and carriage return.
# None has a meaning in an answer or a name; PostgreSQL refuses NUL in text (the
# insert fails), XLSX cannot hold most of C0, and the import command prints
# values in its error lines, where ESC and CSI start terminal escape sequences.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(text: str) -> str | None:
    """The first control character in ``text``, named for a person ("control character U+0000"), or None."""
    found = CONTROL_CHARACTER.search(text)
    return None if found is None else f"control character U+{ord(found.group()):04X}"


def validate_plain_text(value: str) -> None:
    """A form field validator: no control characters other than tab and line breaks."""
    found = control_character(value)
    if found:
        raise ValidationError(
            "Remove the invisible %(character)s from this text.",
            code="control_character",
            params={"character": found},
        )
