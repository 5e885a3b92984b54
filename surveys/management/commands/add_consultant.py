from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from surveys import services
from surveys.models import Workspace


class Command(BaseCommand):
    help = "Create a consultant login (or reuse one) and add it to a workspace, creating the workspace if new."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--workspace", required=True, help="The consultancy's workspace name.")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password",
            default="",
            help="Password for a new login; without it the login is created unusable (set one with changepassword).",
        )

    @transaction.atomic
    def handle(self, *args, username, workspace, email, password, **options):
        name = workspace.strip()
        if not name:
            raise CommandError("Give the workspace a name with --workspace.")
        space = Workspace.objects.filter(name=name).first() or services.workspace_create(name=name)
        user, created = services.consultant_ensure(
            username=username, workspace=space, email=email, password=password or None
        )
        verb = "Created" if created else "Found"
        self.stdout.write(f"{verb} consultant “{user.username}” in workspace “{space.name}”.")
        if created and not password:
            self.stdout.write(f"Set a password with: python manage.py changepassword {user.username}")
