from django.core.management.base import BaseCommand, CommandError

from surveys import services
from surveys.models import Engagement, Invitation


class Command(BaseCommand):
    help = (
        "Erase a customer's contact details on request: their email address, name and the emails sent, "
        "in every wave (or one engagement's). Their answers stay, anonymous."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="The address to erase (matched without regard to case).")
        parser.add_argument("--engagement", metavar="SLUG", help="Only this engagement's waves.")

    def handle(self, *args, email, engagement=None, **options):
        invitations = Invitation.objects.filter(email__iexact=email.strip()).select_related("wave__engagement")
        if engagement:
            if not Engagement.objects.filter(slug=engagement).exists():
                raise CommandError(f"No engagement with the slug {engagement!r}.")
            invitations = invitations.filter(wave__engagement__slug=engagement)
        found = list(invitations)
        if not found:
            self.stdout.write(f"No contact with the address {email.strip()!r}: nothing erased.")
            return
        for invitation in found:
            services.contacts_erase(wave=invitation.wave, invitation_ids=[invitation.pk])
            self.stdout.write(f"Erased from {invitation.wave.engagement.name}, {invitation.wave}.")
        self.stdout.write(f"{len(found)} contact record{'s' if len(found) != 1 else ''} erased; answers kept, anonymous.")
