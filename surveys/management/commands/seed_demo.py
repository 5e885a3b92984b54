from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import URLValidator

from surveys import demo
from surveys.models import Group, Wave
from surveys.selectors import wave_response_counts


class Command(BaseCommand):
    help = (
        f"Create the demo engagement “{demo.COMPANY}” with leaders, staff sheets and customers, "
        f"and the consultant login “{demo.USERNAME}”. Run again: the data is left as it is, the login reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default="",
            help=(
                f"The demo consultant's password (default: “{demo.DEBUG_PASSWORD}” with DEBUG on, "
                "a new random one otherwise)."
            ),
        )
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the app runs, for the login line printed."
        )

    def handle(self, *args, password: str, url: str, **options) -> None:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise CommandError(f"--url must be an http(s) address, not “{url}”.") from None
        if password != password.strip():
            raise CommandError("--password must not start or end with spaces.")
        password_given = bool(password)
        password = demo.demo_password(debug=settings.DEBUG, given=password)
        try:
            result = demo.demo_seed(password=password)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None

        engagement = result.engagement
        wave = engagement.waves.order_by("-number").first()
        if result.created:
            self.stdout.write(
                f"Created the demo engagement “{engagement}” (slug {engagement.slug}) "
                f"in the workspace “{engagement.workspace}”."
            )
        else:
            self.stdout.write(f"The demo engagement “{engagement}” (slug {engagement.slug}) exists; left as it is.")
        if wave is not None:
            self._write_counts(wave)
        self.stdout.write(f"Log in at {url} as {demo.USERNAME} / {result.password}")
        if not settings.DEBUG and not password_given:
            self.stdout.write("(A new random password: running seed_demo again replaces it.)")

    def _write_counts(self, wave: Wave) -> None:
        counts = wave_response_counts(wave)
        by_group = {group["key"]: group for group in counts["groups"]}
        staff = by_group[Group.STAFF]
        first_session = wave.sessions.order_by("opened_at").first()
        session = f" in workshop session {first_session.code}" if first_session else ""
        departments = ", ".join(f"{d['name']} {d['count']}" for d in counts["departments"])
        segments = ", ".join(f"{s['name']} {s['count']}" for s in counts["segments"])
        invitations = counts["invitations"]
        self.stdout.write(f"  {wave.engagement} — wave {wave.number} ({wave.get_status_display().lower()})")
        self.stdout.write(f"  Leaders:   {by_group[Group.LEADERSHIP]['count']} submitted{session}")
        self.stdout.write(
            f"  Staff:     {staff['count']} sheets submitted ({staff['people'] or 0} people), "
            f"{counts['drafts']} draft; {departments}"
        )
        self.stdout.write(f"  Customers: {by_group[Group.CUSTOMER]['count']} submitted; {segments}")
        self.stdout.write(
            f"  Invitations: {invitations['total']} sent, {invitations['opened']} opened, "
            f"{invitations['completed']} completed"
        )
