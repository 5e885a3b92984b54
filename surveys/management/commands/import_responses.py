from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from surveys import importing
from surveys.models import Engagement, Group
from surveys.services import ImportRejected, import_target_resolve, responses_import

# Past this many, more error lines help nobody: the file needs fixing at its source.
MAX_ERRORS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import answers from a CSV file, one row per item or rating, with the columns "
        f"{','.join(importing.COLUMNS)}. All rows are imported, or none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The engagement's short name (slug).")
        parser.add_argument("file", type=Path, help="The CSV file, UTF-8.")
        parser.add_argument(
            "--wave", type=int, metavar="N", help="Import into wave N, created if missing (default: the latest wave)."
        )
        parser.add_argument(
            "--create-as",
            default="",
            metavar="NAME",
            help="If the slug is new, first create the engagement for this company name.",
        )

    def handle(self, *args, slug: str, file: Path, wave: int | None, create_as: str, **options) -> None:
        if not file.is_file():
            raise CommandError(f"There is no file {file}.")
        try:
            text = importing.read_text(file)
            # One transaction: a file with errors must not leave a new engagement or wave behind.
            with transaction.atomic():
                target = import_target_resolve(slug=slug, wave_number=wave, create_as=create_as)
                rating_keys = list(target.rating_items.values_list("key", flat=True))
                respondents = importing.parse_responses(text, rating_keys=rating_keys)
                summary = responses_import(wave=target, respondents=respondents)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from error
        except Engagement.DoesNotExist:
            raise CommandError(
                f"There is no engagement “{slug}”; add --create-as \"Company name\" to create it."
            ) from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except ImportRejected as rejected:
            for problem in rejected.errors[:MAX_ERRORS_SHOWN]:
                self.stderr.write(str(problem))
            hidden = len(rejected.errors) - MAX_ERRORS_SHOWN
            if hidden > 0:
                self.stderr.write(f"... and {hidden} more")
            raise CommandError(f"Nothing was imported from {file}: fix the problems above and run it again.") from None

        counts = summary.respondents
        self.stdout.write(
            f"Imported {summary.total} respondents ({counts[Group.LEADERSHIP]} leaders, "
            f"{counts[Group.STAFF]} staff sheets, {counts[Group.CUSTOMER]} customers), "
            f"{summary.items} items and {summary.ratings} ratings "
            f"into {summary.wave.engagement} wave {summary.wave.number}."
        )
