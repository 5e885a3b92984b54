"""
Consultant pages: engagements, waves, question wording, rating items,
departments, workshop sessions, and the Django admin.

Each test posts as the browser would and then checks the database.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client, TestCase
from django.urls import reverse

from surveys import defaults, services
from surveys.models import (
    AnswerItem,
    Department,
    Engagement,
    Group,
    Invitation,
    InvitationEmail,
    PredictedItem,
    PredictedRating,
    Prediction,
    Question,
    Rating,
    RatingItem,
    Respondent,
    Wave,
    Workspace,
    WorkshopSession,
)
from surveys.services import Answers, Contact, ItemInput, RatingInput, SheetDetails

from .factories import PASSWORD, consultant_create, engagement_create, first_wave

DEFAULT_RATING_KEYS = ["overall", "consistency", "problem_handling", "customer_centricity"]
QUESTION_KEYS = ["strengths", "improvements", "competition", "continue_start"]
AUDIENCES = ("leadership", "staff", "customer")


def complete_answers(wave: Wave, value: int = 4) -> Answers:
    """One item per question and every rating of the wave: a valid submission."""
    return Answers(
        items=[
            ItemInput("strengths", "Friendly people on the phone"),
            ItemInput("improvements", "Replies take too long"),
            ItemInput("competition", "Rivals offer live chat", "good"),
            ItemInput("continue_start", "Call customers back", "start"),
        ],
        ratings=[RatingInput(item_key=key, value=value) for key in wave.rating_items.values_list("key", flat=True)],
    )


def leader_answers(wave: Wave, count: int = 1) -> WorkshopSession:
    """Open a workshop session and have ``count`` leaders answer in it."""
    session = services.session_open(wave=wave, name="Leadership workshop")
    for _ in range(count):
        services.leader_submit(session=session, answers=complete_answers(wave))
    return session


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


class ConsultantTestCase(TestCase):
    """A logged-in consultant with one engagement, "Acme Retail", and its wave 1."""

    @classmethod
    def setUpTestData(cls):
        cls.user, cls.workspace = consultant_create(username="ana", workspace_name="Alpha Consulting")
        cls.engagement = engagement_create(workspace=cls.workspace, name="Acme Retail")
        cls.wave = first_wave(cls.engagement)

    def setUp(self):
        self.client.force_login(self.user)

    def wave_url(self, name: str, *extra, number: int | None = None) -> str:
        return reverse(f"surveys:{name}", args=[self.engagement.slug, number or self.wave.number, *extra])


class EngagementTests(ConsultantTestCase):
    def test_creating_an_engagement_makes_wave_one_with_the_four_questions_and_default_ratings(self):
        response = self.client.post(reverse("surveys:engagement_create"), {"name": "Globex Foods", "slug": ""})

        engagement = Engagement.objects.get(name="Globex Foods")
        self.assertRedirects(response, reverse("surveys:engagement_detail", args=[engagement.slug]))
        self.assertEqual(engagement.slug, "globex-foods")
        self.assertEqual(engagement.workspace, self.workspace)
        wave = engagement.waves.get()
        self.assertEqual(wave.number, 1)
        self.assertTrue(wave.is_open)
        self.assertEqual(list(wave.questions.values_list("key", flat=True)), QUESTION_KEYS)
        self.assertEqual(list(wave.rating_items.values_list("key", flat=True)), DEFAULT_RATING_KEYS)
        for question in wave.questions.all():
            self.assertIn("Globex Foods", question.text_customer)
            self.assertNotIn("Globex Foods", question.text_leadership)
            self.assertNotIn("Globex Foods", question.text_staff)
        for item in wave.rating_items.all():
            self.assertIn("Globex Foods", item.label_customer)
            self.assertNotIn("Globex Foods", item.label_leadership)
        strengths = wave.questions.get(key="strengths")
        self.assertEqual(strengths.text_leadership, defaults.QUESTIONS[0][1])
        self.assertIn("created", " ".join(message_texts(response)))

    def test_slug_given_in_the_form_is_used(self):
        self.client.post(reverse("surveys:engagement_create"), {"name": "Globex Foods", "slug": "globex-2027"})
        self.assertTrue(Engagement.objects.filter(slug="globex-2027", name="Globex Foods").exists())

    def test_same_name_twice_gets_a_distinct_slug(self):
        self.client.post(reverse("surveys:engagement_create"), {"name": "Acme Retail"})
        self.assertEqual(
            sorted(Engagement.objects.filter(name="Acme Retail").values_list("slug", flat=True)),
            ["acme-retail", "acme-retail-2"],
        )

    def test_duplicate_slug_is_a_form_error_and_creates_nothing(self):
        # Slugs are global (the command line addresses engagements by slug alone),
        # so a slug taken in another workspace is refused too.
        _, other_workspace = consultant_create(username="bob", workspace_name="Beta Advisory")
        services.engagement_create(workspace=other_workspace, name="Bolt Logistics", slug="bolt")
        counts = (Engagement.objects.count(), Wave.objects.count(), Question.objects.count())

        for slug in ("acme-retail", "bolt"):
            with self.subTest(slug=slug):
                data = {"name": "Acme Europe", "slug": slug}
                response = self.client.post(reverse("surveys:engagement_create"), data)
                self.assertEqual(response.status_code, 200)
                self.assertIn("slug", response.context["form"].errors)
                self.assertContains(response, "is taken")
                self.assertEqual((Engagement.objects.count(), Wave.objects.count(), Question.objects.count()), counts)

    def test_missing_company_name_is_a_form_error(self):
        response = self.client.post(reverse("surveys:engagement_create"), {"name": "  ", "slug": ""})
        self.assertEqual(response.status_code, 200)
        self.assertIn("name", response.context["form"].errors)
        self.assertEqual(Engagement.objects.count(), 1)

    def test_user_in_no_workspace_is_told_so_and_nothing_is_created(self):
        loner = get_user_model().objects.create_user("loner", password=PASSWORD)
        self.client.force_login(loner)
        counts = (Workspace.objects.count(), Engagement.objects.count(), Wave.objects.count())

        response = self.client.post(reverse("surveys:engagement_create"), {"name": "Initech"}, follow=True)

        self.assertRedirects(response, reverse("surveys:engagement_list"))
        self.assertContains(response, "not a member of any workspace")
        self.assertEqual((Workspace.objects.count(), Engagement.objects.count(), Wave.objects.count()), counts)
        self.assertFalse(Engagement.objects.filter(name="Initech").exists())
        self.assertNotContains(response, reverse("surveys:engagement_create"))

    def test_list_shows_the_workspace_engagements(self):
        response = self.client.get(reverse("surveys:engagement_list"))
        self.assertContains(response, "Acme Retail")
        self.assertContains(response, reverse("surveys:engagement_detail", args=["acme-retail"]))

    def test_detail_lists_the_waves(self):
        services.wave_create(engagement=self.engagement, title="Spring round")
        response = self.client.get(reverse("surveys:engagement_detail", args=[self.engagement.slug]))
        self.assertContains(response, "Wave 2 — Spring round")
        self.assertContains(response, reverse("surveys:wave_detail", args=[self.engagement.slug, 1]))

    def test_detail_counts_submitted_responses_not_drafts(self):
        leader_answers(self.wave, count=2)
        services.staff_sheet_save(
            wave=self.wave,
            details=SheetDetails(group_name="Late team", department="Sales", members=5),
            answers=Answers(),
            submit=False,
        )
        response = self.client.get(reverse("surveys:engagement_detail", args=[self.engagement.slug]))
        self.assertEqual([wave.responses for wave in response.context["waves"]], [2])
        self.assertContains(response, '<td class="text-end">2</td>', html=True)

    def test_settings_save_the_anonymity_thresholds(self):
        response = self.client.post(
            reverse("surveys:engagement_settings", args=[self.engagement.slug]),
            {"name": "Acme Retail Ltd", "min_individuals": "7", "min_staff_sheets": "3"},
        )
        self.assertRedirects(response, reverse("surveys:engagement_detail", args=[self.engagement.slug]))
        self.engagement.refresh_from_db()
        self.assertEqual(
            (self.engagement.name, self.engagement.min_individuals, self.engagement.min_staff_sheets),
            ("Acme Retail Ltd", 7, 3),
        )

    def test_settings_refuse_a_zero_threshold(self):
        response = self.client.post(
            reverse("surveys:engagement_settings", args=[self.engagement.slug]),
            {"name": "Acme Retail", "min_individuals": "0", "min_staff_sheets": "2"},
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("min_individuals", response.context["form"].errors)
        self.engagement.refresh_from_db()
        self.assertEqual(self.engagement.min_individuals, 5)


class WaveTests(ConsultantTestCase):
    def test_new_wave_copies_wording_and_rating_items_from_the_previous_one_and_numbers_two(self):
        strengths = self.wave.questions.get(key="strengths")
        services.question_update(
            question=strengths, text_leadership="What do we do best?", text_staff="What do we do best for them?",
            text_customer="What does Acme do best?",
        )
        services.rating_item_save(
            wave=self.wave,
            key="speed",
            label_leadership="Speed (L)",
            label_staff="Speed (S)",
            label_customer="Speed (C)",
        )
        services.rating_item_remove(item=self.wave.rating_items.get(key="customer_centricity"))

        response = self.client.post(
            reverse("surveys:wave_create", args=[self.engagement.slug]),
            {"title": "Spring round", "opens_on": "2027-03-01", "closes_on": "2027-03-31", "open_link_enabled": "on"},
        )

        wave2 = self.engagement.waves.get(number=2)
        self.assertRedirects(response, self.wave_url("wave_detail", number=2))
        self.assertEqual(wave2.title, "Spring round")
        self.assertEqual((wave2.opens_on, wave2.closes_on), (datetime.date(2027, 3, 1), datetime.date(2027, 3, 31)))
        self.assertTrue(wave2.is_open)
        self.assertTrue(wave2.open_link_enabled)
        self.assertNotEqual(wave2.staff_token, self.wave.staff_token)

        def wording(wave):
            return list(wave.questions.values_list("key", "order", "text_leadership", "text_staff", "text_customer"))

        def items(wave):
            return list(wave.rating_items.values_list("key", "label_leadership", "label_staff", "label_customer"))

        self.assertEqual(wording(wave2), wording(self.wave))
        self.assertEqual(items(wave2), items(self.wave))
        self.assertEqual([row[0] for row in items(wave2)], ["overall", "consistency", "problem_handling", "speed"])
        self.assertEqual(wave2.questions.get(key="strengths").text_customer, "What does Acme do best?")
        # Copies, not shared rows: the first wave keeps its own.
        self.assertEqual(Question.objects.filter(wave=self.wave).count(), 4)
        first_pks = set(self.wave.rating_items.values_list("pk", flat=True))
        self.assertFalse(set(wave2.rating_items.values_list("pk", flat=True)) & first_pks)

    def test_new_wave_without_the_open_link(self):
        self.client.post(reverse("surveys:wave_create", args=[self.engagement.slug]), {"title": ""})
        self.assertFalse(self.engagement.waves.get(number=2).open_link_enabled)

    def test_new_wave_closing_before_opening_is_refused(self):
        response = self.client.post(
            reverse("surveys:wave_create", args=[self.engagement.slug]),
            {"title": "Backwards", "opens_on": "2027-03-31", "closes_on": "2027-03-01", "open_link_enabled": "on"},
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("closes_on", response.context["form"].errors)
        self.assertEqual(self.engagement.waves.count(), 1)

    def test_edit_wave_dates(self):
        response = self.client.post(
            self.wave_url("wave_edit"),
            {"title": "Autumn round", "opens_on": "2027-09-01", "closes_on": "2027-09-30", "open_link_enabled": "on"},
        )
        self.assertRedirects(response, self.wave_url("wave_detail"))
        self.wave.refresh_from_db()
        self.assertEqual(self.wave.title, "Autumn round")
        self.assertEqual(
            (self.wave.opens_on, self.wave.closes_on), (datetime.date(2027, 9, 1), datetime.date(2027, 9, 30))
        )
        self.assertTrue(self.wave.open_link_enabled)

    def test_edit_wave_can_switch_off_the_open_link(self):
        self.client.post(self.wave_url("wave_edit"), {"title": "", "opens_on": "", "closes_on": ""})
        self.wave.refresh_from_db()
        self.assertFalse(self.wave.open_link_enabled)
        response = self.client.get(self.wave_url("wave_detail"))
        self.assertNotContains(response, self.wave.open_link_token)
        self.assertContains(response, "open link is switched off")

    def test_edit_wave_closing_before_opening_is_an_error(self):
        response = self.client.post(
            self.wave_url("wave_edit"),
            {"title": "Backwards", "opens_on": "2027-09-30", "closes_on": "2027-09-01", "open_link_enabled": "on"},
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("closes_on", response.context["form"].errors)
        self.assertContains(response, "closing date is before the opening date")
        self.wave.refresh_from_db()
        self.assertEqual((self.wave.title, self.wave.opens_on, self.wave.closes_on), ("", None, None))

    def test_close_wave_closes_it_and_its_open_sessions(self):
        open_session = services.session_open(wave=self.wave, name="Board")
        closed_earlier = services.session_close(session=services.session_open(wave=self.wave, name="Managers"))
        closed_earlier_at = closed_earlier.closed_at

        response = self.client.post(self.wave_url("wave_close"))

        self.assertRedirects(response, self.wave_url("wave_detail"))
        self.wave.refresh_from_db()
        self.assertEqual(self.wave.status, Wave.Status.CLOSED)
        self.assertIsNotNone(self.wave.closed_at)
        open_session.refresh_from_db()
        self.assertEqual(open_session.status, WorkshopSession.Status.CLOSED)
        self.assertIsNotNone(open_session.closed_at)
        closed_earlier.refresh_from_db()
        self.assertEqual(closed_earlier.closed_at, closed_earlier_at)

    def test_closing_needs_a_post(self):
        response = self.client.get(self.wave_url("wave_close"))
        self.assertEqual(response.status_code, 405)
        self.wave.refresh_from_db()
        self.assertTrue(self.wave.is_open)

    def test_open_wave_reopens_a_closed_wave(self):
        services.wave_close(wave=self.wave)

        response = self.client.post(self.wave_url("wave_open"))

        self.assertRedirects(response, self.wave_url("wave_detail"))
        self.wave.refresh_from_db()
        self.assertEqual(self.wave.status, Wave.Status.OPEN)
        self.assertIsNone(self.wave.closed_at)

    def test_detail_shows_response_counts_per_group_department_and_segment(self):
        leader_answers(self.wave, count=2)
        for department, members in (("Sales", 7), ("Support", 6)):
            services.staff_sheet_save(
                wave=self.wave,
                details=SheetDetails(group_name=f"{department} team", department=department, members=members),
                answers=complete_answers(self.wave),
                submit=True,
            )
        services.staff_sheet_save(  # a draft is in progress, not a response
            wave=self.wave,
            details=SheetDetails(group_name="Late team", department="Sales", members=5),
            answers=Answers(),
            submit=False,
        )
        services.invitations_create(
            wave=self.wave,
            contacts=[Contact("carla@example.com", "Carla", "Retail"), Contact("dan@example.com", "Dan", "Wholesale")],
        )
        services.invitation_submit(
            invitation=self.wave.invitations.get(email="carla@example.com"), answers=complete_answers(self.wave)
        )
        services.open_link_submit(wave=self.wave, answers=complete_answers(self.wave), segment="Kiosk")

        response = self.client.get(self.wave_url("wave_detail"))

        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        shown = {
            key: int(re.search(rf'badge-{key}".*?class="display-6">(\d+)<', html, re.S).group(1))
            for key in Group.values
        }
        self.assertEqual(shown, {"leadership": 2, "staff": 2, "customer": 2})
        self.assertContains(response, "covering 13 people")
        self.assertContains(response, "1 draft in progress")
        self.assertContains(response, "from 2 invited (1 opened)")
        self.assertContains(response, "(1 of 2 answered)")
        for department, sheets, people in (("Sales", 1, 7), ("Support", 1, 6)):
            self.assertContains(
                response,
                f'<tr><td>{department}</td><td class="text-end">{sheets}</td><td class="text-end">{people}</td></tr>',
                html=True,
            )
        for segment in ("Retail", "Kiosk"):
            self.assertContains(response, f'<tr><td>{segment}</td><td class="text-end">1</td></tr>', html=True)
        # A segment invited but not answering is no response.
        self.assertNotContains(response, "<td>Wholesale</td>", html=True)

    def test_detail_shows_the_staff_link_and_the_open_link(self):
        response = self.client.get(self.wave_url("wave_detail"))
        self.assertContains(response, reverse("public:staff_start", args=[self.wave.staff_token]))
        self.assertContains(response, reverse("public:open_answer", args=[self.wave.open_link_token]))
        self.assertContains(response, self.wave.staff_token)
        self.assertContains(response, self.wave.open_link_token)


class WordingTests(ConsultantTestCase):
    def wording_post(self, texts) -> dict:
        data = {"form-TOTAL_FORMS": "4", "form-INITIAL_FORMS": "4", "form-MIN_NUM_FORMS": "0"}
        for index, question in enumerate(self.wave.questions.all()):
            data[f"form-{index}-id"] = str(question.pk)
            for audience in AUDIENCES:
                data[f"form-{index}-text_{audience}"] = texts(question.key, audience)
        return data

    def test_page_shows_the_current_wording(self):
        response = self.client.get(self.wave_url("question_wording"))
        self.assertContains(response, "What do you feel Acme Retail does well within the customer experience?")

    def test_wording_is_saved_per_audience(self):
        wave2 = services.wave_create(engagement=self.engagement)
        wave2_before = list(wave2.questions.values_list("text_leadership", "text_staff", "text_customer"))

        response = self.client.post(
            self.wave_url("question_wording"),
            self.wording_post(lambda key, audience: f"  {audience} wording of {key}  "),
        )

        self.assertRedirects(response, self.wave_url("wave_detail"))
        for question in self.wave.questions.all():
            with self.subTest(question=question.key):
                self.assertEqual(question.text_leadership, f"leadership wording of {question.key}")
                self.assertEqual(question.text_staff, f"staff wording of {question.key}")
                self.assertEqual(question.text_customer, f"customer wording of {question.key}")
        self.assertEqual(
            list(wave2.questions.values_list("text_leadership", "text_staff", "text_customer")), wave2_before
        )

    def test_empty_wording_is_an_error_and_nothing_is_saved(self):
        before = list(self.wave.questions.values_list("text_leadership", "text_staff", "text_customer"))
        response = self.client.post(
            self.wave_url("question_wording"),
            self.wording_post(lambda key, audience: "" if (key, audience) == ("competition", "customer") else "New"),
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(any(form.errors for form in response.context["formset"]))
        after = list(self.wave.questions.values_list("text_leadership", "text_staff", "text_customer"))
        self.assertEqual(after, before)

    def test_answer_pages_show_new_wording_and_rating_items_at_once(self):
        # Blank sheets are reused between visitors: an edit must still reach the next visitor.
        self.wave.open_link_enabled = True
        self.wave.save()
        open_url = reverse("public:open_answer", args=[self.wave.open_link_token])
        public = Client()
        self.assertContains(public.get(open_url), "What do you feel Acme Retail does well")

        self.client.post(
            self.wave_url("question_wording"), self.wording_post(lambda key, audience: f"Fresh {audience} {key}?")
        )
        self.client.post(
            self.wave_url("rating_item_list"),
            {"key": "speed", **{f"label_{audience}": f"Speed for {audience}" for audience in AUDIENCES}},
        )
        page = public.get(open_url)

        self.assertContains(page, "Fresh customer strengths?")
        self.assertNotContains(page, "What do you feel Acme Retail does well")
        self.assertContains(page, "Speed for customer")
        self.assertContains(page, 'name="r-rating_speed"', count=5)


class RatingItemTests(ConsultantTestCase):
    def item_post(self, key: str, wording: str = "Speed") -> dict:
        return {"key": key, **{f"label_{audience}": f"{wording} for {audience}" for audience in AUDIENCES}}

    def test_add_an_item(self):
        response = self.client.post(self.wave_url("rating_item_list"), self.item_post("speed"))

        self.assertRedirects(response, self.wave_url("rating_item_list"))
        item = self.wave.rating_items.get(key="speed")
        self.assertEqual(
            (item.label_leadership, item.label_staff, item.label_customer),
            ("Speed for leadership", "Speed for staff", "Speed for customer"),
        )
        self.assertEqual(list(self.wave.rating_items.values_list("key", flat=True)), DEFAULT_RATING_KEYS + ["speed"])
        self.assertContains(self.client.get(self.wave_url("rating_item_list")), "<code>speed</code>", html=True)

    def test_duplicate_key_is_an_error(self):
        for key in ("overall", "Overall"):
            with self.subTest(key=key):
                response = self.client.post(self.wave_url("rating_item_list"), self.item_post(key))
                self.assertEqual(response.status_code, 200)
                self.assertIn("key", response.context["form"].errors)
                self.assertEqual(self.wave.rating_items.count(), 4)
                self.assertEqual(
                    self.wave.rating_items.get(key="overall").label_customer,
                    "Overall, how would you rate the experience Acme Retail gives you?",
                )

    def test_edit_rewords_an_item(self):
        item = self.wave.rating_items.get(key="consistency")
        response = self.client.post(self.wave_url("rating_item_edit", item.pk), self.item_post("consistency", "Same"))
        self.assertRedirects(response, self.wave_url("rating_item_list"))
        item.refresh_from_db()
        self.assertEqual((item.key, item.label_customer), ("consistency", "Same for customer"))

    def test_edit_can_change_the_key_of_an_unrated_item(self):
        item = self.wave.rating_items.get(key="consistency")
        self.client.post(self.wave_url("rating_item_edit", item.pk), self.item_post("reliability"))
        item.refresh_from_db()
        self.assertEqual(item.key, "reliability")

    def test_edit_to_a_key_taken_by_another_item_is_an_error(self):
        item = self.wave.rating_items.get(key="consistency")
        response = self.client.post(self.wave_url("rating_item_edit", item.pk), self.item_post("overall"))
        self.assertEqual(response.status_code, 200)
        self.assertIn("key", response.context["form"].errors)
        item.refresh_from_db()
        self.assertEqual(item.key, "consistency")

    def test_unrated_item_can_be_removed(self):
        item = self.wave.rating_items.get(key="customer_centricity")
        response = self.client.post(self.wave_url("rating_item_remove", item.pk))
        self.assertRedirects(response, self.wave_url("rating_item_list"))
        self.assertFalse(RatingItem.objects.filter(pk=item.pk).exists())

    def test_item_with_ratings_cannot_be_removed(self):
        leader_answers(self.wave)
        item = self.wave.rating_items.get(key="overall")
        self.assertTrue(item.ratings.exists())

        response = self.client.post(self.wave_url("rating_item_remove", item.pk))

        self.assertRedirects(response, self.wave_url("rating_item_list"))
        self.assertTrue(RatingItem.objects.filter(pk=item.pk).exists())
        self.assertEqual(Rating.objects.filter(item=item).count(), 1)
        self.assertIn("already has ratings", " ".join(message_texts(response)))

    def test_item_with_ratings_cannot_change_its_key_but_can_be_reworded(self):
        leader_answers(self.wave)
        item = self.wave.rating_items.get(key="overall")
        labels_before = (item.label_leadership, item.label_staff, item.label_customer)

        response = self.client.post(self.wave_url("rating_item_edit", item.pk), self.item_post("overall_cx", "New"))

        self.assertEqual(response.status_code, 200)
        self.assertIn("key", response.context["form"].errors)
        item.refresh_from_db()
        self.assertEqual(item.key, "overall")
        self.assertEqual((item.label_leadership, item.label_staff, item.label_customer), labels_before)

        response = self.client.post(self.wave_url("rating_item_edit", item.pk), self.item_post("overall", "New"))
        self.assertRedirects(response, self.wave_url("rating_item_list"))
        item.refresh_from_db()
        self.assertEqual((item.key, item.label_customer), ("overall", "New for customer"))

    def test_item_of_another_wave_is_not_found_through_this_wave(self):
        wave2 = services.wave_create(engagement=self.engagement)
        other = wave2.rating_items.get(key="overall")
        self.assertEqual(self.client.get(self.wave_url("rating_item_edit", other.pk)).status_code, 404)
        self.assertEqual(self.client.post(self.wave_url("rating_item_remove", other.pk)).status_code, 404)
        self.assertTrue(RatingItem.objects.filter(pk=other.pk).exists())


class DepartmentTests(ConsultantTestCase):
    def url(self) -> str:
        return reverse("surveys:department_list", args=[self.engagement.slug])

    def test_add_a_department(self):
        response = self.client.post(self.url(), {"name": "  Customer   Service "})
        self.assertRedirects(response, self.url())
        self.assertEqual(list(self.engagement.departments.values_list("name", flat=True)), ["Customer Service"])
        self.assertContains(self.client.get(self.url()), "Customer Service")

    def test_duplicate_department_is_an_error_whatever_its_case(self):
        services.department_add(engagement=self.engagement, name="Sales")
        for name in ("sales", "SALES ", "Sales"):
            with self.subTest(name=name):
                response = self.client.post(self.url(), {"name": name})
                self.assertEqual(response.status_code, 200)
                self.assertIn("name", response.context["form"].errors)
                self.assertEqual(list(self.engagement.departments.values_list("name", flat=True)), ["Sales"])

    def test_same_name_in_another_engagement_is_fine(self):
        other = engagement_create(workspace=self.workspace, name="Globex")
        services.department_add(engagement=other, name="Sales")
        self.client.post(self.url(), {"name": "Sales"})
        self.assertEqual(Department.objects.filter(name="Sales").count(), 2)

    def test_remove_a_department(self):
        sales = services.department_add(engagement=self.engagement, name="Sales")
        keep = services.department_add(engagement=self.engagement, name="Support")
        response = self.client.post(reverse("surveys:department_remove", args=[self.engagement.slug, sales.pk]))
        self.assertRedirects(response, self.url())
        self.assertEqual(list(self.engagement.departments.all()), [keep])

    def test_removing_needs_a_post(self):
        sales = services.department_add(engagement=self.engagement, name="Sales")
        response = self.client.get(reverse("surveys:department_remove", args=[self.engagement.slug, sales.pk]))
        self.assertEqual(response.status_code, 405)
        self.assertTrue(Department.objects.filter(pk=sales.pk).exists())

    def test_department_of_another_engagement_is_not_found_through_this_one(self):
        other = engagement_create(workspace=self.workspace, name="Globex")
        theirs = services.department_add(engagement=other, name="Sales")
        response = self.client.post(reverse("surveys:department_remove", args=[self.engagement.slug, theirs.pk]))
        self.assertEqual(response.status_code, 404)
        self.assertTrue(Department.objects.filter(pk=theirs.pk).exists())


class SessionTests(ConsultantTestCase):
    def session_url(self, name: str, session: WorkshopSession) -> str:
        return self.wave_url(name, session.pk)

    def test_open_a_session(self):
        response = self.client.post(self.wave_url("session_open"), {"name": "Board away-day"})

        session = self.wave.sessions.get()
        self.assertRedirects(response, self.session_url("session_detail", session))
        self.assertEqual((session.name, session.status, session.opened_by), ("Board away-day", "open", self.user))
        self.assertRegex(session.code, r"^[A-HJ-NP-Z2-9]{6}$")
        self.assertContains(self.client.get(self.session_url("session_detail", session)), session.code)

    def test_a_closed_wave_opens_no_session(self):
        services.wave_close(wave=self.wave)
        response = self.client.post(self.wave_url("session_open"), {"name": "Board"})
        self.assertRedirects(response, self.wave_url("wave_detail"))
        self.assertFalse(WorkshopSession.objects.exists())
        self.assertIn("closed", " ".join(message_texts(response)))

    def test_close_a_session(self):
        session = services.session_open(wave=self.wave)
        response = self.client.post(self.session_url("session_close", session))
        self.assertRedirects(response, self.session_url("session_detail", session))
        session.refresh_from_db()
        self.assertEqual(session.status, WorkshopSession.Status.CLOSED)
        self.assertIsNotNone(session.closed_at)
        self.wave.refresh_from_db()
        self.assertTrue(self.wave.is_open)

    def test_status_returns_the_live_count(self):
        session = services.session_open(wave=self.wave)
        url = self.session_url("session_status", session)

        response = self.client.get(url)
        no_predictions = {"predicted": {"customer": 0, "staff": 0}, "predicting": []}
        self.assertEqual(response.json(), {"code": session.code, "status": "open", "submitted": 0, **no_predictions})
        self.assertIn("no-cache", response["Cache-Control"])

        services.leader_submit(session=session, answers=complete_answers(self.wave))
        services.leader_submit(session=session, answers=complete_answers(self.wave))
        leader_answers(self.wave)  # another session's leader does not count here
        self.assertEqual(self.client.get(url).json()["submitted"], 2)

        services.session_close(session=session)
        self.assertEqual(
            self.client.get(url).json(), {"code": session.code, "status": "closed", "submitted": 2, **no_predictions}
        )

    def test_qr_code_is_an_svg_of_the_join_link(self):
        session = services.session_open(wave=self.wave)
        response = self.client.get(self.session_url("session_qr", session))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "image/svg+xml")
        self.assertIn(b"<svg", response.content)


class AdminTests(TestCase):
    """Every collection model can be seen in the Django admin, directly or inline."""

    @classmethod
    def setUpTestData(cls):
        cls.superuser = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
        _, workspace = consultant_create()
        engagement = engagement_create(workspace=workspace)
        cls.wave = first_wave(engagement)
        services.department_add(engagement=engagement, name="Sales")
        session = leader_answers(cls.wave)
        services.invitations_create(wave=cls.wave, contacts=[Contact("carla@example.com", "Carla", "Retail")])
        cls.respondent = Respondent.objects.get(group=Group.LEADERSHIP)
        # The leader's forecast of the customers (the workshop reveal).
        services.session_predictions_set(session=session, predict_customers=True, predict_staff=False)
        services.prediction_submit(
            session=session,
            respondent=cls.respondent,
            target=Group.CUSTOMER,
            prediction=services.PredictionInput(
                ratings=[services.PredictedRatingInput(i.key, 40, Decimal("3.8")) for i in cls.wave.rating_items.all()],
                items=[ItemInput("strengths", "Friendly staff")],
            ),
        )

    def setUp(self):
        self.client.force_login(self.superuser)

    def test_every_collection_model_is_registered_or_inline(self):
        registered = {Workspace, Engagement, Department, Wave, WorkshopSession, Invitation, Respondent, Prediction}
        inline_only = {
            Question: Wave,
            RatingItem: Wave,
            AnswerItem: Respondent,
            Rating: Respondent,
            InvitationEmail: Invitation,
            PredictedRating: Prediction,
            PredictedItem: Prediction,
        }
        for model in registered:
            self.assertIn(model, admin.site._registry, f"{model.__name__} is not in the admin")
        for model, parent in inline_only.items():
            inlines = {inline.model for inline in admin.site._registry[parent].inlines}
            self.assertIn(model, inlines, f"{model.__name__} is not an inline of {parent.__name__}'s admin")
        # A new collection model must be added to one of the two lists above.
        self.assertEqual(set(apps.get_app_config("surveys").get_models()), registered | set(inline_only))

    def test_admin_pages_render(self):
        for model in admin.site._registry:
            if model._meta.app_label != "surveys":
                continue
            info = (model._meta.app_label, model._meta.model_name)
            obj = model.objects.order_by("pk").first()
            self.assertIsNotNone(obj, f"the test made no {model.__name__}")
            for url in (
                reverse("admin:%s_%s_changelist" % info),
                reverse("admin:%s_%s_add" % info),
                reverse("admin:%s_%s_change" % info, args=[obj.pk]),
            ):
                with self.subTest(url=url):
                    self.assertEqual(self.client.get(url).status_code, 200)

    def test_inlines_show_on_their_parent_page(self):
        response = self.client.get(reverse("admin:surveys_wave_change", args=[self.wave.pk]))
        self.assertContains(response, 'name="questions-TOTAL_FORMS" value="4"')
        self.assertContains(response, 'name="rating_items-TOTAL_FORMS" value="4"')
        response = self.client.get(reverse("admin:surveys_respondent_change", args=[self.respondent.pk]))
        self.assertContains(response, 'name="items-TOTAL_FORMS" value="4"')
        self.assertContains(response, 'name="ratings-TOTAL_FORMS" value="4"')
