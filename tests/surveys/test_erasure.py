"""
Erasing contacts' personal data on request: per contact, per wave, and by
address from the command line. Their answers stay, anonymous.
"""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from surveys import mailing, services
from surveys.models import AnswerItem, Invitation, InvitationEmail, Respondent
from surveys.services import Contact
from tests.surveys.factories import PASSWORD, answer_post_data, consultant_create, engagement_create, first_wave

CONTACTS = [
    Contact(email="ada@example.com", name="Ada Lovelace", segment="Residential"),
    Contact(email="bob@example.com", name="Bob Brown", segment="Business"),
]


@pytest.fixture
def wave(db, client, django_capture_on_commit_callbacks):
    _user, workspace = consultant_create()
    wave = first_wave(engagement_create(workspace=workspace))
    services.invitations_create(wave=wave, contacts=CONTACTS)
    with django_capture_on_commit_callbacks(execute=True):
        mailing.invitations_send(wave=wave)
    ada = wave.invitations.get(email="ada@example.com")
    client.post(
        reverse("public:customer_answer", args=[ada.token]),
        answer_post_data(wave, items={"strengths": ["Friendly engineers"]}),
    )
    assert Respondent.objects.filter(invitation=ada).exists()
    client.login(username="consultant", password=PASSWORD)
    return wave


def erase_url(wave):
    return reverse("surveys:contacts_erase", args=[wave.engagement.slug, wave.number])


def personal_data_left(wave) -> set[str]:
    """Every stored value that names a contact."""
    left = set(Invitation.objects.filter(wave=wave).values_list("email", flat=True))
    left |= set(Invitation.objects.filter(wave=wave).values_list("name", flat=True))
    return left


class EraseContactTests:
    def test_one_contact_is_erased_and_their_answers_stay_anonymous(self, client, wave):
        ada = wave.invitations.get(email="ada@example.com")
        respondent = Respondent.objects.get(invitation=ada)

        page = client.post(erase_url(wave), {"contact": ada.pk}, follow=True)

        assert "The contact erased" in page.content.decode()
        assert "ada@example.com" not in page.content.decode()
        assert personal_data_left(wave) == {"bob@example.com", "Bob Brown"}
        assert not InvitationEmail.objects.filter(invitation_id=ada.pk).exists()
        respondent.refresh_from_db()
        assert respondent.invitation_id is None and respondent.department == "Residential"
        assert list(AnswerItem.objects.filter(respondent=respondent).values_list("text", flat=True)) == [
            "Friendly engineers"
        ]

    def test_erasing_the_wave_leaves_no_contact_and_every_answer(self, client, wave):
        answers = AnswerItem.objects.filter(respondent__wave=wave).count()

        page = client.post(erase_url(wave), {"everyone": "on"}, follow=True)

        assert "2 contacts erased" in page.content.decode()
        assert personal_data_left(wave) == set()
        assert AnswerItem.objects.filter(respondent__wave=wave).count() == answers
        assert mailing.invitation_reminders_queue() == 0

    def test_nothing_chosen_is_refused_and_nothing_changes(self, client, wave):
        page = client.post(erase_url(wave), {}, follow=True)

        assert "Choose a contact to erase" in page.content.decode()
        assert wave.invitations.count() == 2

    def test_another_workspaces_contact_is_not_erased(self, client, wave):
        _user, other_workspace = consultant_create(username="other", workspace_name="Other")
        other = first_wave(engagement_create(workspace=other_workspace, name="Other Co"))
        services.invitations_create(wave=other, contacts=CONTACTS[:1])

        client.post(erase_url(wave), {"contact": other.invitations.get().pk}, follow=True)

        assert other.invitations.count() == 1


class EraseContactCommandTests:
    def test_address_is_erased_in_every_wave_case_blind(self, wave):
        _user, other_workspace = consultant_create(username="other", workspace_name="Other")
        other = first_wave(engagement_create(workspace=other_workspace, name="Other Co"))
        services.invitations_create(wave=other, contacts=CONTACTS[:1])
        out = io.StringIO()

        call_command("erase_contact", "ADA@example.com", stdout=out)

        assert "2 contact records erased" in out.getvalue()
        assert not Invitation.objects.filter(email="ada@example.com").exists()
        assert Invitation.objects.filter(email="bob@example.com").exists()

    def test_unknown_address_erases_nothing_and_says_so(self, wave):
        out = io.StringIO()

        call_command("erase_contact", "nobody@example.com", stdout=out)

        assert "nothing erased" in out.getvalue()
        assert Invitation.objects.count() == 2

    def test_unknown_engagement_is_a_clear_error(self, wave):
        with pytest.raises(CommandError, match="No engagement"):
            call_command("erase_contact", "ada@example.com", "--engagement", "nope")
