from django.core.management.base import BaseCommand, CommandError

from analysis import exports
from analysis.selectors import run_served
from surveys.models import Engagement


class _Text:
    """Hands csv.writer's rows to the command's stdout unchanged (OutputWrapper would add endings)."""

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")


class Command(BaseCommand):
    help = (
        "Export a wave's answer items with the themes of its latest finished analysis "
        "(columns group,respondent,department,question,tag,text,theme_id,theme) as CSV or XLSX."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The engagement's short name.")
        parser.add_argument("--wave", type=int, help="Wave number (default: the latest wave).")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv", help="File format (default: csv).")
        parser.add_argument("--output", help="File to write (default: standard output; required for xlsx).")
        parser.add_argument(
            "--predictions",
            action="store_true",
            help="Export the leaders' predicted items of the workshop reveal instead of the answer items "
            "(group leadership-prediction:customer or :staff, theme = the customer theme matched).",
        )

    def handle(
        self, *args, slug: str, wave: int | None, format: str, output: str | None, predictions: bool = False, **options
    ):
        if format == "xlsx" and not output:
            raise CommandError("XLSX is a binary file: give --output FILE.xlsx.")
        engagement = Engagement.objects.filter(slug=slug).first()
        if engagement is None:
            raise CommandError(f"There is no engagement “{slug}”.")
        waves = engagement.waves.order_by("-number")
        target = waves.filter(number=wave).first() if wave is not None else waves.first()
        if target is None:
            raise CommandError(f"{engagement} has no wave {wave}." if wave is not None else f"{engagement} has no wave.")
        run = run_served(target)
        if run is None:
            raise CommandError(
                f"No analysis has finished for {engagement} wave {target.number}: "
                f"run `python manage.py analyze {slug} --wave {target.number}` first."
            )
        rows = exports.predicted_item_rows(run) if predictions else exports.item_rows(target, run)
        if format == "xlsx":
            count = exports.write_xlsx(rows, output)
        elif output:
            with open(output, "w", newline="", encoding="utf-8") as file:
                count = exports.write_csv(rows, file)
        else:
            count = exports.write_csv(rows, _Text(self.stdout))
        # The summary goes to standard error: standard output may be the CSV itself.
        what = "predicted items" if predictions else "items"
        self.stderr.write(f"Wrote {count} {what} of {engagement} wave {target.number}.")
