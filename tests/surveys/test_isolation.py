"""
Every consultant page keeps workspaces apart.

The pages are not hand-picked: the tests walk the URL patterns of every
consultant module (``surveys.urls`` and ``analysis.urls``) and fill each
pattern's arguments with workspace A's objects. A new page whose arguments
cannot be filled, or that takes no arguments and has not been reviewed here,
makes the tests fail until it is added below; a new consultant URL module
must be added to CONSULTANT_URLCONFS.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

from django.apps import apps
from django.db import transaction
from django.test import Client, TestCase
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from analysis import services as analysis_services
from analysis import urls as analysis_urls
from analysis.selectors import theme_items
from surveys import services
from surveys import urls as survey_urls
from surveys.models import Engagement, Respondent
from surveys.services import Answers, Contact, ItemInput, RatingInput, SheetDetails

from .factories import (
    answer_post_data,
    consultant_create,
    engagement_create,
    first_wave,
    invitations_send_refused,
    sheet_details,
)

# Every URL module of consultant pages, with the fewest pages it should have
# (a guard against a module silently losing its patterns).
CONSULTANT_URLCONFS = [(survey_urls, 20), (analysis_urls, 7)]

# URL modules included at the root that are not consultant pages: the public
# answer forms (reached by token, tested in test_public_forms.py).
PUBLIC_URLCONFS = {"surveys.public_urls"}

# Apps whose tables a refused request must leave untouched.
SNAPSHOT_APPS = ["surveys", "analysis"]

# Pages that address no engagement: the list and the creation form. Anyone
# logged in reaches them; they must only ever show or write the user's own workspace.
NOT_ENGAGEMENT_SCOPED = {"surveys:engagement_list", "surveys:engagement_create"}

# URL arguments naming an object inside an engagement (besides slug and wave number).
CHILD_ARGUMENTS = {"session_id", "department_id", "item_id", "sheet_id", "theme_id"}


def answers_for(wave, value: int = 4) -> Answers:
    """A complete answer: one item per question and every rating of the wave."""
    return Answers(
        items=[
            ItemInput("strengths", "Friendly people on the phone"),
            ItemInput("improvements", "Replies take too long"),
            ItemInput("competition", "Rivals offer live chat", "good"),
            ItemInput("continue_start", "Call customers back", "start"),
        ],
        ratings=[RatingInput(item_key=key, value=value) for key in wave.rating_items.values_list("key", flat=True)],
    )


def customer_answers(wave, improvement: str, strength: str) -> Answers:
    """One customer's answer: a strength, an improvement and a 3 for every rating of the wave."""
    return Answers(
        items=[ItemInput("strengths", strength), ItemInput("improvements", improvement)],
        ratings=[RatingInput(item_key=key, value=3) for key in wave.rating_items.values_list("key", flat=True)],
    )


# Two topics in different words, so the analysis finds (at least) two themes to merge and move between.
SLOW = ["Replies take far too long", "I waited two weeks for an answer", "They are slow to get back to me"]
FRIENDLY = ["Friendly people on the phone", "The staff on the phone are kind", "Polite and helpful phone agents"]


def database_snapshot() -> dict[str, list[dict]]:
    """
    Every row of every collection and analysis table (membership, runs,
    themes, pins, cached embeddings included), to prove a request wrote nothing.
    """
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for label in SNAPSHOT_APPS
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    }


class WorkspaceIsolationTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ana, cls.workspace_a = consultant_create(username="ana", workspace_name="Alpha Consulting")
        cls.engagement_a = engagement_create(workspace=cls.workspace_a, name="Acme Retail")
        cls.wave_a = first_wave(cls.engagement_a)
        cls.session_a = services.session_open(wave=cls.wave_a, opened_by=cls.ana, name="Board workshop")
        cls.department_a = services.department_add(engagement=cls.engagement_a, name="Sales")
        cls.sheet_a = services.staff_sheet_save(
            wave=cls.wave_a,
            details=SheetDetails(group_name="Team Blue", department="Sales", members=7),
            answers=answers_for(cls.wave_a),
            submit=True,
            channel=Respondent.Channel.PAPER,
        )
        # Enough customers to be shown (the threshold is 5), then an analysis run, so A has themes.
        for n in range(6):
            answers = customer_answers(cls.wave_a, SLOW[n % 3], FRIENDLY[n % 3])
            services.open_link_submit(wave=cls.wave_a, answers=answers)
        cls.run_a = analysis_services.analysis_run_now(wave=cls.wave_a)
        shown = [t["theme_id"] for q in cls.run_a.result["questions"].values() for t in q["themes"]]
        assert len(set(shown)) >= 2, f"the analysis found fewer than two themes: {cls.run_a.result['questions']}"
        cls.theme_a, cls.other_theme_a = shown[0], next(t for t in shown if t != shown[0])
        cls.theme_item_a = theme_items(cls.run_a, cls.theme_a)[0]

        # Added after the answers, so it has no ratings yet and its owner may remove it.
        cls.item_a = services.rating_item_save(
            wave=cls.wave_a,
            key="speed",
            label_leadership="How fast do we reply?",
            label_staff="How fast do we reply?",
            label_customer="How fast does Acme Retail reply?",
        )

        # A contact not yet emailed, so "Send invitations" has someone to queue.
        services.invitations_create(wave=cls.wave_a, contacts=[Contact("dora@example.com", "Dora", "Retail")])

        cls.bob, cls.workspace_b = consultant_create(username="bob", workspace_name="Beta Advisory")
        cls.engagement_b = engagement_create(workspace=cls.workspace_b, name="Bolt Logistics")

    def setUp(self):
        self.client_a = Client()
        self.client_a.force_login(self.ana)
        self.client_b = Client()
        self.client_b.force_login(self.bob)

    # --- The pages, enumerated -------------------------------------------------

    def url_arguments_of_a(self) -> dict:
        return {
            "slug": self.engagement_a.slug,
            "number": self.wave_a.number,
            "session_id": self.session_a.pk,
            "department_id": self.department_a.pk,
            "item_id": self.item_a.pk,
            "sheet_id": self.sheet_a.pk,
            "theme_id": self.theme_a,
            "question": "strengths",
        }

    def consultant_pages(self, arguments: dict) -> list[tuple[str, str, set[str]]]:
        """(namespaced name, url, argument names) of every consultant page, filled from ``arguments``."""
        pages = []
        for module, fewest in CONSULTANT_URLCONFS:
            where = module.__name__
            self.assertGreaterEqual(len(module.urlpatterns), fewest, f"{where} lost most of its pages?")
            for pattern in module.urlpatterns:
                if not isinstance(pattern, URLPattern):
                    self.fail(f"{pattern!r} in {where} is not a plain path; teach this test to walk into it.")
                if not pattern.name:
                    self.fail(f"{pattern.pattern} in {where} has no name; name it so the test can reverse it.")
                name = f"{module.app_name}:{pattern.name}"
                names = set(pattern.pattern.regex.groupindex)
                unknown = names - arguments.keys()
                if unknown:
                    self.fail(
                        f"{name} takes {sorted(unknown)}, which the isolation test cannot fill: "
                        "create such an object in workspace A and add it to url_arguments_of_a()."
                    )
                if not names and name not in NOT_ENGAGEMENT_SCOPED:
                    self.fail(
                        f"{name} addresses no engagement: check it cannot show or change another "
                        "workspace's data, then add it to NOT_ENGAGEMENT_SCOPED."
                    )
                url = reverse(name, kwargs={key: arguments[key] for key in names})
                pages.append((name, url, names))
        return pages

    def post_data(self) -> dict[str, dict]:
        """
        What a browser posts to each page: valid data, so a page that failed to
        check the workspace would really write (test_owner_reaches_every_page
        proves each of these posts changes the database when A sends it).
        """
        wave = self.wave_a
        wording = {"form-TOTAL_FORMS": "4", "form-INITIAL_FORMS": "4"}
        for index, question in enumerate(wave.questions.all()):
            wording[f"form-{index}-id"] = str(question.pk)
            for group in ("leadership", "staff", "customer"):
                wording[f"form-{index}-text_{group}"] = f"Reworded {group} {question.key}"
        labels = {f"label_{group}": f"Reworded for {group}" for group in ("leadership", "staff", "customer")}
        return {
            "surveys:engagement_create": {"name": "Acme Retail Two"},
            "surveys:engagement_settings": {"name": "Acme Retail Ltd", "min_individuals": "3", "min_staff_sheets": "4"},
            "surveys:department_list": {"name": "Support"},
            "surveys:wave_create": {"title": "Spring", "open_link_enabled": "on"},
            "surveys:wave_edit": {"title": "Autumn round", "opens_on": "2027-01-10", "closes_on": "2027-02-10"},
            "surveys:question_wording": wording,
            "surveys:rating_item_list": {"key": "friendliness", **labels},
            "surveys:rating_item_edit": {"key": "speed", **labels},
            "surveys:session_open": {"name": "Second workshop"},
            "surveys:session_predictions": {"predict_customers": "on"},
            "surveys:invitation_list": {"pasted": "carla@example.com, Carla Diaz, Retail"},
            "surveys:invitation_email": {
                "invite_subject": "Your view of {company}",
                "invite_body": "Hello {name}, please answer: {link}",
                "reminders": "2",
                "reminder_after_days": "5",
            },
            "surveys:contacts_erase": {"everyone": "on"},
            # Sending and retrying post nothing: they queue the wave's emails.
            "surveys:sheet_enter": answer_post_data(
                wave,
                items={"strengths": ["Quick answers"], "competition": [("Cheaper", "good")]},
                extra={**sheet_details(group_name="Team Red", department="Sales", members=6), "submission_key": "k1"},
            ),
            # The recompute button posts nothing: it queues a run.
            "analysis:theme_rename": {"label": "Waiting for replies"},
            "analysis:theme_merge": {"target": str(self.other_theme_a)},
            "analysis:item_move": {"item": str(self.theme_item_a), "theme": str(self.other_theme_a)},
            "analysis:theme_detail_set": {"detail": "finer"},
        }

    def prepare(self) -> dict[str, Callable[[], object]]:
        """Put A's data in the state a page acts on (reopening needs a closed wave, retrying a failed email)."""
        return {
            "surveys:wave_open": lambda: services.wave_close(wave=self.wave_a),
            "surveys:invitation_emails_retry": lambda: invitations_send_refused(self.wave_a),
        }

    def request(self, client: Client, method: str, name: str, url: str):
        """
        Send one request inside a savepoint that is rolled back afterwards, so
        every page meets the same data. Returns the response and whether the
        request changed any collection row.
        """
        with transaction.atomic():
            if name in self.prepare():
                self.prepare()[name]()
            before = database_snapshot()
            if method == "get":
                response = client.get(url)
            else:
                response = client.post(url, self.post_data().get(name, {}))
            changed = database_snapshot() != before
            transaction.set_rollback(True)
        return response, changed

    def owner_status(self, method: str, name: str, url: str) -> int:
        return self.request(self.client_a, method, name, url)[0].status_code

    def test_every_url_module_is_walked_or_known_public(self):
        included = {
            pattern.urlconf_name.__name__
            for pattern in get_resolver().url_patterns
            if isinstance(pattern, URLResolver) and isinstance(pattern.urlconf_name, ModuleType)
        }
        walked = {module.__name__ for module, _ in CONSULTANT_URLCONFS}
        self.assertEqual(
            included - walked - PUBLIC_URLCONFS,
            set(),
            "a new URL module: add it to CONSULTANT_URLCONFS (consultant pages) or PUBLIC_URLCONFS",
        )
        self.assertLessEqual(walked, included)

    # --- Anonymous visitors ----------------------------------------------------

    def test_anonymous_visitor_is_sent_to_login_from_every_page(self):
        anonymous = Client()
        before = database_snapshot()
        for name, url, _ in self.consultant_pages(self.url_arguments_of_a()):
            for method in ("get", "post"):
                with self.subTest(page=name, method=method):
                    response, changed = self.request(anonymous, method, name, url)
                    self.assertEqual(response.status_code, 302)
                    location = urlsplit(response["Location"])
                    self.assertEqual(location.path, reverse("login"))
                    self.assertEqual(parse_qs(location.query).get("next"), [url])
                    self.assertFalse(changed, f"an anonymous {method.upper()} to {url} changed the database")
        self.assertEqual(database_snapshot(), before)

    # --- The owner ---------------------------------------------------------------

    def test_owner_reaches_every_page(self):
        for name, url, _ in self.consultant_pages(self.url_arguments_of_a()):
            with self.subTest(page=name):
                got, _ = self.request(self.client_a, "get", name, url)
                posted, changed = self.request(self.client_a, "post", name, url)
                self.assertIn(got.status_code, (200, 302, 405), f"GET {url}")
                self.assertIn(posted.status_code, (200, 302, 405), f"POST {url}")
                self.assertFalse(
                    got.status_code == posted.status_code == 405, f"{url} refuses both GET and POST"
                )
                if posted.status_code != 405:
                    # The data posted is what the other-workspace test replays: it must really write.
                    self.assertEqual(posted.status_code, 302, f"POST {url} was not accepted: fix post_data()")
                    self.assertTrue(changed, f"POST {url} changed nothing: give it data in post_data()")

    # --- A consultant of another workspace --------------------------------------

    def test_other_workspace_gets_404_on_every_page_and_changes_nothing(self):
        before = database_snapshot()
        runs = self.wave_a.analysis_runs.count()
        for name, url, arguments in self.consultant_pages(self.url_arguments_of_a()):
            if not arguments:
                continue
            for method in ("get", "post"):
                with self.subTest(page=name, method=method):
                    response, changed = self.request(self.client_b, method, name, url)
                    # A method the page refuses to everyone (405 for its owner too) reveals nothing.
                    expected = 405 if self.owner_status(method, name, url) == 405 else 404
                    self.assertEqual(response.status_code, expected, f"{method.upper()} {url} as bob")
                    self.assertNotIn(b"Acme Retail", response.content)
                    self.assertFalse(changed, f"bob's {method.upper()} to {url} changed the database")
        self.assertEqual(database_snapshot(), before)
        self.wave_a.refresh_from_db()
        self.session_a.refresh_from_db()
        self.assertTrue(self.wave_a.is_open)
        self.assertTrue(self.session_a.is_open)
        self.assertTrue(self.engagement_a.departments.filter(pk=self.department_a.pk).exists())
        self.assertTrue(self.wave_a.rating_items.filter(pk=self.item_a.pk).exists())
        self.assertEqual(self.wave_a.analysis_runs.count(), runs)

    def test_other_workspace_cannot_reach_a_objects_through_its_own_engagement(self):
        """Bob's own slug and wave with A's session, department, item or theme ids: still 404."""
        arguments = {**self.url_arguments_of_a(), "slug": self.engagement_b.slug, "number": 1}
        before = database_snapshot()
        pages = [(n, u, a) for n, u, a in self.consultant_pages(arguments) if a & CHILD_ARGUMENTS]
        self.assertTrue(pages)
        owner_urls = {name: url for name, url, _ in self.consultant_pages(self.url_arguments_of_a())}
        for name, url, _ in pages:
            for method in ("get", "post"):
                with self.subTest(page=name, method=method):
                    response, changed = self.request(self.client_b, method, name, url)
                    expected = 405 if self.owner_status(method, name, owner_urls[name]) == 405 else 404
                    self.assertEqual(response.status_code, expected, f"{method.upper()} {url} as bob")
                    self.assertFalse(changed, f"bob's {method.upper()} to {url} changed the database")
        self.assertEqual(database_snapshot(), before)

    def test_pages_without_an_engagement_show_and_write_only_the_own_workspace(self):
        self.assertEqual(
            {name for name, _, arguments in self.consultant_pages(self.url_arguments_of_a()) if not arguments},
            NOT_ENGAGEMENT_SCOPED,
        )
        response = self.client_b.get(reverse("surveys:engagement_list"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Bolt Logistics")
        self.assertNotContains(response, "Acme Retail")
        self.assertNotContains(response, self.engagement_a.slug)
        self.assertEqual(list(response.context["engagements"]), [self.engagement_b])

        a_engagements = set(self.workspace_a.engagements.values_list("pk", flat=True))
        response = self.client_b.post(reverse("surveys:engagement_create"), {"name": "Bolt Freight"})
        created = Engagement.objects.get(name="Bolt Freight")
        self.assertRedirects(response, reverse("surveys:engagement_detail", args=[created.slug]))
        self.assertEqual(created.workspace, self.workspace_b)
        self.assertEqual(set(self.workspace_a.engagements.values_list("pk", flat=True)), a_engagements)

        # The list is the only page that names engagements without a slug; A still sees only A's.
        response = self.client_a.get(reverse("surveys:engagement_list"))
        self.assertContains(response, "Acme Retail")
        self.assertNotContains(response, "Bolt")

