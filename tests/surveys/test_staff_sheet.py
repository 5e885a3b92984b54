"""Staff group sheets: the shared staff link, a draft's private link, and paper sheets."""

import pytest
from django.urls import reverse

from surveys import services
from surveys.models import Group, Respondent

from .factories import (
    answer_post_data,
    answer_row_counts,
    consultant_create,
    engagement_create,
    first_wave,
    sheet_details,
    stored_items,
    stored_ratings,
    submission_key,
)

DRAFT_ITEMS = {
    "strengths": [("Regulars know us by name", "")],
    "competition": [("Rivals answer the phone faster", "good")],
}
FINAL_ITEMS = {
    "strengths": [("Regulars know us by name", ""), ("We fix orders the same day", "")],
    "improvements": [("Hand-overs between shifts lose details", "")],
    "competition": [("Rivals answer the phone faster", "good"), ("Rivals push upgrades hard", "bad")],
    "continue_start": [("Start a shared complaints log", "start")],
}
FINAL_RATINGS = {"overall": 3, "consistency": 2, "problem_handling": 4, "customer_centricity": 3}


@pytest.mark.django_db
class StaffSheetTests:
    @pytest.fixture(autouse=True)
    def setup(self, client):
        self.consultant, workspace = consultant_create()
        self.engagement = engagement_create(workspace=workspace)
        self.wave = first_wave(self.engagement)
        services.department_add(engagement=self.engagement, name="Support")
        self.client = client
        self.start_url = reverse("public:staff_start", args=[self.wave.staff_token])

    def _post_start(self, *, button, items, ratings=None, details=None, **fields):
        key = submission_key(self.client, self.start_url)
        data = answer_post_data(
            self.wave,
            items=items,
            ratings=ratings,
            extra={**(details or sheet_details()), "submission_key": key, button: "1", **fields},
        )
        return self.client.post(self.start_url, data)

    def _save_draft(self) -> Respondent:
        response = self._post_start(button="draft", items=DRAFT_ITEMS)
        draft = Respondent.objects.get()
        assert response.status_code == 302
        assert response.url == reverse("public:staff_sheet", args=[draft.edit_token])
        return draft

    def _submit_from_private_link(self, draft: Respondent, *, members=7):
        url = reverse("public:staff_sheet", args=[draft.edit_token])
        key = submission_key(self.client, url)
        data = answer_post_data(
            self.wave,
            items=FINAL_ITEMS,
            ratings=FINAL_RATINGS,
            # The reopened page renders the saved items as initial rows.
            initial_forms={key: len(rows) for key, rows in DRAFT_ITEMS.items()},
            extra={**sheet_details(members=members), "submission_key": key, "submit": "1"},
        )
        return self.client.post(url, data)

    def test_saving_a_draft_gives_a_private_link_and_stores_the_partial_sheet(self):
        draft = self._save_draft()

        assert draft.wave == self.wave
        assert draft.group == Group.STAFF
        assert draft.channel == Respondent.Channel.STAFF_LINK
        assert draft.status == Respondent.Status.DRAFT
        assert draft.submitted_at is None
        assert (draft.group_name, draft.department, draft.members) == ("Team Blue", "Support", 7)
        assert len(draft.edit_token) >= 43
        assert stored_items(draft) == [
            ("strengths", "", "Regulars know us by name"),
            ("competition", "good", "Rivals answer the phone faster"),
        ]
        assert stored_ratings(draft) == {}

    def test_reopening_the_private_link_shows_the_saved_draft(self):
        draft = self._save_draft()

        response = self.client.get(reverse("public:staff_sheet", args=[draft.edit_token]))

        assert response.status_code == 200
        html = response.content.decode()
        assert 'name="strengths-0-text"' in html
        assert 'value="Regulars know us by name"' in html
        assert 'value="Rivals answer the phone faster"' in html
        assert '<option value="good" selected>' in html
        assert 'value="Team Blue"' in html
        assert 'name="strengths-INITIAL_FORMS" value="1"' in html

    def test_submitting_from_the_private_link_makes_the_sheet_final_with_the_final_answers(self):
        draft = self._save_draft()

        response = self._submit_from_private_link(draft, members=8)

        assert response.status_code == 200
        assert "the sheet is submitted" in response.content.decode()
        sheet = Respondent.objects.get()
        assert sheet.pk == draft.pk
        assert sheet.status == Respondent.Status.SUBMITTED
        assert sheet.submitted_at is not None
        assert sheet.members == 8
        assert stored_items(sheet) == [(key, tag, text) for key, rows in FINAL_ITEMS.items() for text, tag in rows]
        # One agreed value per item, counted once for each member of the group.
        assert stored_ratings(sheet) == {key: [(value, 8)] for key, value in FINAL_RATINGS.items()}

    def test_submitted_sheet_link_shows_the_submitted_page_and_ignores_posts(self):
        draft = self._save_draft()
        self._submit_from_private_link(draft)
        url = reverse("public:staff_sheet", args=[draft.edit_token])
        before = (answer_row_counts(), stored_items(draft), stored_ratings(draft))

        page = self.client.get(url)
        assert page.status_code == 200
        assert "This sheet has been submitted" in page.content.decode()

        data = answer_post_data(
            self.wave,
            items={"strengths": [("Rewritten afterwards", "")]},
            ratings={key: 1 for key in FINAL_RATINGS},
            extra={**sheet_details(group_name="Hijacked"), "submit": "1"},
        )
        response = self.client.post(url, data)

        assert response.status_code == 200
        assert "This sheet has been submitted" in response.content.decode()
        sheet = Respondent.objects.get()
        assert sheet.group_name == "Team Blue"
        assert (answer_row_counts(), stored_items(sheet), stored_ratings(sheet)) == before

    def test_submitting_straight_from_the_staff_link_stores_a_submitted_sheet(self):
        response = self._post_start(button="submit", items=FINAL_ITEMS, ratings=FINAL_RATINGS)

        assert response.status_code == 200
        sheet = Respondent.objects.get()
        assert sheet.status == Respondent.Status.SUBMITTED
        assert sheet.channel == Respondent.Channel.STAFF_LINK
        assert stored_ratings(sheet) == {key: [(value, 7)] for key, value in FINAL_RATINGS.items()}

    def test_members_spread_is_stored_as_one_row_per_value_given(self):
        # 7 members: for "overall" three gave 4 and four gave 5, the rest agree on one value.
        spread = {"r-spread_overall_4": "3", "r-spread_overall_5": "4"}
        ratings = {key: value for key, value in FINAL_RATINGS.items() if key != "overall"}

        response = self._post_start(
            button="submit", items=FINAL_ITEMS, ratings=ratings, details=sheet_details(), **spread
        )

        assert response.status_code == 200
        sheet = Respondent.objects.get()
        assert sheet.status == Respondent.Status.SUBMITTED
        assert stored_ratings(sheet) == {
            "overall": [(4, 3), (5, 4)],
            **{key: [(value, 7)] for key, value in ratings.items()},
        }

    @pytest.mark.parametrize(
        "spread",
        [
            {"r-spread_overall_4": "3", "r-spread_overall_5": "3"},  # 6 of 7 members
            {"r-spread_overall_4": "5", "r-spread_overall_5": "5"},  # 10 of 7 members
            {"r-spread_overall_4": "1"},  # 1 of 7 members
        ],
        ids=["too-few", "too-many", "one-member"],
    )
    def test_members_spread_that_does_not_add_up_to_the_group_is_refused(self, spread):
        ratings = {key: value for key, value in FINAL_RATINGS.items() if key != "overall"}

        response = self._post_start(
            button="submit", items=FINAL_ITEMS, ratings=ratings, details=sheet_details(), **spread
        )

        assert response.status_code == 200
        assert "but the group has 7" in response.content.decode()
        assert answer_row_counts() == (0, 0, 0)

    def test_save_draft_clicked_twice_keeps_one_draft(self):
        key = submission_key(self.client, self.start_url)
        data = answer_post_data(
            self.wave, items=DRAFT_ITEMS, ratings=None, extra={**sheet_details(), "submission_key": key, "draft": "1"}
        )

        first = self.client.post(self.start_url, data)
        second = self.client.post(self.start_url, data)

        assert first.status_code == second.status_code == 302
        assert first.url == second.url
        assert Respondent.objects.count() == 1
        assert answer_row_counts() == (1, 2, 0)

    @pytest.mark.parametrize("members", [0, 1, 21, 99])
    def test_member_count_outside_2_to_20_is_rejected(self, members):
        response = self._post_start(
            button="submit", items=FINAL_ITEMS, ratings=FINAL_RATINGS, details=sheet_details(members=members)
        )

        assert response.status_code == 200
        html = response.content.decode()
        assert "Ensure this value is" in html
        assert answer_row_counts() == (0, 0, 0)

    @pytest.mark.parametrize("members", [2, 20])
    def test_member_count_at_the_limits_is_accepted(self, members):
        self._post_start(
            button="submit", items=FINAL_ITEMS, ratings=FINAL_RATINGS, details=sheet_details(members=members)
        )

        assert Respondent.objects.get().members == members

    def test_department_not_on_the_list_is_accepted_as_typed(self):
        self._post_start(
            button="draft", items=DRAFT_ITEMS, details=sheet_details(department="  Night   shift  warehouse ")
        )

        assert Respondent.objects.get().department == "Night shift warehouse"

    def test_unknown_staff_link_or_private_link_is_not_found(self):
        self._save_draft()

        assert self.client.get(reverse("public:staff_start", args=["x" * 43])).status_code == 404
        assert self.client.get(reverse("public:staff_sheet", args=["x" * 43])).status_code == 404
        assert self.client.get(reverse("public:staff_print", args=["x" * 43])).status_code == 404

    def test_consultant_types_in_a_paper_sheet_as_submitted(self):
        self.client.force_login(self.consultant)
        url = reverse("surveys:sheet_enter", args=[self.engagement.slug, self.wave.number])
        key = submission_key(self.client, url)
        data = answer_post_data(
            self.wave,
            items=FINAL_ITEMS,
            ratings=FINAL_RATINGS,
            extra={
                **sheet_details(group_name="Table 3", department="Warehouse", members=6),
                "submission_key": key,
                "save": "1",
            },
        )

        response = self.client.post(url, data)

        assert response.status_code == 302
        assert response.url == reverse("surveys:sheet_list", args=[self.engagement.slug, self.wave.number])
        sheet = Respondent.objects.get()
        assert sheet.group == Group.STAFF
        assert sheet.channel == Respondent.Channel.PAPER
        assert sheet.status == Respondent.Status.SUBMITTED
        assert sheet.submitted_at is not None
        assert sheet.edit_token is None
        assert (sheet.group_name, sheet.department, sheet.members) == ("Table 3", "Warehouse", 6)
        assert stored_items(sheet) == [(key, tag, text) for key, rows in FINAL_ITEMS.items() for text, tag in rows]
        assert stored_ratings(sheet) == {key: [(value, 6)] for key, value in FINAL_RATINGS.items()}

    def test_paper_sheet_saved_twice_from_the_same_form_is_stored_once(self):
        self.client.force_login(self.consultant)
        url = reverse("surveys:sheet_enter", args=[self.engagement.slug, self.wave.number])
        data = answer_post_data(
            self.wave,
            items=FINAL_ITEMS,
            ratings=FINAL_RATINGS,
            extra={**sheet_details(), "submission_key": submission_key(self.client, url), "save": "1"},
        )

        self.client.post(url, data)
        self.client.post(url, data)

        assert Respondent.objects.count() == 1
        assert answer_row_counts() == (1, 6, 4)

    @pytest.mark.parametrize("page", ["public:staff_print", "surveys:sheet_print"])
    def test_printable_sheet_shows_the_staff_wording_of_the_four_questions(self, page):
        for question in self.wave.questions.all():
            services.question_update(
                question=question,
                text_leadership=f"Leaders: {question.key}?",
                text_staff=f"Staff group: {question.key}?",
                text_customer=f"Customers: {question.key}?",
            )
        if page == "public:staff_print":
            url = reverse(page, args=[self.wave.staff_token])
        else:
            self.client.force_login(self.consultant)
            url = reverse(page, args=[self.engagement.slug, self.wave.number])

        response = self.client.get(url)

        assert response.status_code == 200
        html = response.content.decode()
        for key in ["strengths", "improvements", "competition", "continue_start"]:
            assert f"Staff group: {key}?" in html
            assert f"Leaders: {key}" not in html
            assert f"Customers: {key}" not in html
        assert "Support" in html
