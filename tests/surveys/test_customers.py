"""Customers: contacts turned into personal links, answering once, and the open link."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from surveys import services
from surveys.models import Group, Invitation, Respondent

from .factories import (
    answer_post_data,
    answer_row_counts,
    consultant_create,
    engagement_create,
    first_wave,
    stored_items,
    stored_ratings,
    submission_key,
)

CUSTOMER_ITEMS = {
    "strengths": [("The driver always smiles", "")],
    "improvements": [("Waited two weeks for an answer", ""), ("Invoices are hard to read", "")],
    "competition": [("Others let me track my parcel", "good")],
    "continue_start": [("Start answering emails within a day", "start")],
}
CUSTOMER_RATINGS = {"overall": 2, "consistency": 1, "problem_handling": 2, "customer_centricity": 3}


@pytest.mark.django_db
class CustomerLinkTests:
    @pytest.fixture(autouse=True)
    def setup(self, client):
        self.consultant, workspace = consultant_create()
        self.engagement = engagement_create(workspace=workspace, name="Northwind Traders")
        self.wave = first_wave(self.engagement)
        self.client = client
        self.client.force_login(self.consultant)
        # Customers answer in their own browsers, not logged in.
        self.customer = Client()
        self.list_url = reverse("surveys:invitation_list", args=[self.engagement.slug, self.wave.number])

    def _invite(self, email="ana@example.com", name="Ana Ruiz", segment="Retail") -> Invitation:
        services.invitations_create(
            wave=self.wave, contacts=[services.Contact(email=email, name=name, segment=segment)]
        )
        return Invitation.objects.get(wave=self.wave, email=email)

    def _answers(self, **extra):
        return answer_post_data(self.wave, items=CUSTOMER_ITEMS, ratings=CUSTOMER_RATINGS, extra=extra)

    # --- The consultant's contact list ---------------------------------------------

    def test_pasted_contacts_get_one_link_each_and_duplicates_are_merged(self):
        pasted = (
            "a@example.com, Ana, Retail\n"
            "b@example.com, Ben, Wholesale\n"
            "\n"
            "A@Example.com, Ana again, Retail\n"
            "c@example.com\n"
        )

        response = self.client.post(self.list_url, {"pasted": pasted})

        assert response.status_code == 302
        rows = list(self.wave.invitations.order_by("email").values_list("email", "name", "segment"))
        assert rows == [
            ("a@example.com", "Ana", "Retail"),
            ("b@example.com", "Ben", "Wholesale"),
            ("c@example.com", "", ""),
        ]
        page = self.client.get(self.list_url).content.decode()
        assert "3 customer links created. 1 duplicate merged." in page

    def test_links_have_unique_unguessable_tokens(self):
        pasted = "\n".join(f"customer{n}@example.com, Customer {n}, Retail" for n in range(25))

        self.client.post(self.list_url, {"pasted": pasted})

        tokens = list(self.wave.invitations.values_list("token", flat=True))
        assert len(tokens) == 25
        assert len(set(tokens)) == 25
        assert all(len(token) >= 43 for token in tokens)

    def test_pasting_the_same_contacts_again_creates_no_new_links(self):
        self.client.post(self.list_url, {"pasted": "a@example.com, Ana, Retail"})
        token = Invitation.objects.get().token

        self.client.post(self.list_url, {"pasted": "a@example.com, Ana, Retail\nb@example.com, Ben"})

        assert Invitation.objects.count() == 2
        assert Invitation.objects.get(email="a@example.com").token == token

    def test_a_bad_email_line_is_named_and_nothing_is_created(self):
        pasted = "a@example.com, Ana, Retail\nnot-an-email, Bob, Retail\nc@example.com, Cleo, Online\n"

        response = self.client.post(self.list_url, {"pasted": pasted})

        assert response.status_code == 200
        html = response.content.decode()
        assert "Nothing was imported." in html
        assert "line 2:" in html
        assert "not-an-email" in html
        assert Invitation.objects.count() == 0

    def test_csv_upload_with_a_header_and_an_extra_column_creates_links(self):
        upload = SimpleUploadedFile(
            "contacts.csv",
            "email,name,segment,account manager\n"
            "dana@example.com,Dana Ólafsdóttir,Retail,Kim\n"
            "eli@example.com,Eli,Wholesale,Kim\n".encode("utf-8-sig"),
            content_type="text/csv",
        )

        response = self.client.post(self.list_url, {"pasted": "", "upload": upload})

        assert response.status_code == 302
        rows = list(self.wave.invitations.order_by("email").values_list("email", "name", "segment"))
        assert rows == [("dana@example.com", "Dana Ólafsdóttir", "Retail"), ("eli@example.com", "Eli", "Wholesale")]

    # --- A customer's personal link --------------------------------------------------

    def test_opening_the_link_marks_the_invitation_opened(self):
        invitation = self._invite()
        assert invitation.opened_at is None

        response = self.customer.get(reverse("public:customer_answer", args=[invitation.token]))

        assert response.status_code == 200
        assert "Hello Ana Ruiz" in response.content.decode()
        invitation.refresh_from_db()
        assert invitation.opened_at is not None
        assert invitation.completed_at is None

    def test_customer_answer_is_stored_with_the_segment_and_completes_the_invitation(self):
        invitation = self._invite(segment="Retail")
        url = reverse("public:customer_answer", args=[invitation.token])
        page = self.customer.get(url).content.decode()
        assert self.wave.questions.get(key="strengths").text_customer in page
        assert "Northwind Traders" in page

        response = self.customer.post(url, self._answers())

        assert response.status_code == 302
        assert response.url == reverse("public:customer_done", args=[invitation.token])
        respondent = Respondent.objects.get()
        assert respondent.group == Group.CUSTOMER
        assert respondent.channel == Respondent.Channel.INVITATION
        assert respondent.status == Respondent.Status.SUBMITTED
        assert respondent.department == "Retail"
        assert respondent.invitation == invitation
        assert stored_items(respondent) == [
            (key, tag, text) for key, rows in CUSTOMER_ITEMS.items() for text, tag in rows
        ]
        assert stored_ratings(respondent) == {key: [(value, 1)] for key, value in CUSTOMER_RATINGS.items()}
        invitation.refresh_from_db()
        assert invitation.completed_at is not None
        assert invitation.opened_at is not None
        assert self.customer.get(response.url).status_code == 200

    def test_second_submission_shows_already_answered_and_stores_nothing(self):
        invitation = self._invite()
        url = reverse("public:customer_answer", args=[invitation.token])
        self.customer.post(url, self._answers())
        completed_at = Invitation.objects.get().completed_at

        again = self.customer.post(url, answer_post_data(self.wave, items={"strengths": ["Second thoughts"]}))

        assert again.status_code == 200
        assert "You have already answered" in again.content.decode()
        assert answer_row_counts() == (1, 5, 4)
        assert Invitation.objects.get().completed_at == completed_at
        assert "You have already answered" in self.customer.get(url).content.decode()

    def test_guessed_token_is_not_found_and_stores_nothing(self):
        invitation = self._invite()
        guess = invitation.token[:-1] + ("A" if invitation.token[-1] != "A" else "B")
        url = reverse("public:customer_answer", args=[guess])

        assert self.customer.get(url).status_code == 404
        assert self.customer.post(url, self._answers()).status_code == 404
        assert answer_row_counts() == (0, 0, 0)
        assert Invitation.objects.get().opened_at is None

    # --- The open link -----------------------------------------------------------------

    @pytest.mark.parametrize(("typed", "stored"), [("Focus group  Lisbon ", "Focus group Lisbon"), ("", "")])
    def test_open_link_stores_a_customer_with_an_optional_segment(self, typed, stored):
        url = reverse("public:open_answer", args=[self.wave.open_link_token])
        key = submission_key(self.customer, url)

        response = self.customer.post(url, self._answers(segment=typed, submission_key=key))

        assert response.status_code == 302
        assert response.url == reverse("public:open_thanks", args=[self.wave.open_link_token])
        respondent = Respondent.objects.get()
        assert respondent.group == Group.CUSTOMER
        assert respondent.channel == Respondent.Channel.OPEN_LINK
        assert respondent.invitation is None
        assert respondent.department == stored
        assert stored_items(respondent) == [
            (key, tag, text) for key, rows in CUSTOMER_ITEMS.items() for text, tag in rows
        ]

    def test_open_link_takes_one_answer_per_rendered_form_and_many_per_kiosk(self):
        url = reverse("public:open_answer", args=[self.wave.open_link_token])
        data = self._answers(submission_key=submission_key(self.customer, url))

        self.customer.post(url, data)
        self.customer.post(url, data)
        assert Respondent.objects.count() == 1

        # The next person at the kiosk gets a fresh form.
        self.customer.post(url, self._answers(submission_key=submission_key(self.customer, url)))
        assert Respondent.objects.count() == 2

    def test_disabled_open_link_refuses_answers(self):
        url = reverse("public:open_answer", args=[self.wave.open_link_token])
        key = submission_key(self.customer, url)
        services.wave_update(
            wave=self.wave,
            title=self.wave.title,
            opens_on=self.wave.opens_on,
            closes_on=self.wave.closes_on,
            open_link_enabled=False,
        )

        page = self.customer.get(url)
        response = self.customer.post(url, self._answers(submission_key=key))

        for r in (page, response):
            assert r.status_code == 200
            assert "This link is no longer in use" in r.content.decode()
        assert answer_row_counts() == (0, 0, 0)

    def test_guessed_open_link_token_is_not_found(self):
        url = reverse("public:open_answer", args=["x" * 43])

        assert self.customer.get(url).status_code == 404
        assert self.customer.post(url, self._answers()).status_code == 404
        assert answer_row_counts() == (0, 0, 0)
