"""
The consultant pages of the analysis: the theme list and detail, theme
curation (rename, merge, move) and the recompute button, and the analysis
card of the wave page.

Answers are stored through the app's services and analysed with the real
engine (``analysis_run_now``). Curation posts run the automatic recompute
the way the app does: after the transaction commits, with the task executed
in-process (``captureOnCommitCallbacks(execute=True)``).
"""

from __future__ import annotations


from django.contrib.auth.models import AbstractBaseUser
from django.test import TestCase
from django.urls import reverse
from django.utils.html import escape

from analysis import services as analysis_services
from analysis.models import AnalysisRun, Theme, ThemePin
from analysis.selectors import run_served, theme_items
from surveys import services
from surveys.models import AnswerItem, Wave
from surveys.services import Answers, Contact, ItemInput, RatingInput
from tests.surveys.factories import consultant_create, engagement_create, first_wave

# Customers' answers: two topics, each in three wordings, so the engine finds two themes.
SLOW = ["Replies take far too long", "I waited two weeks for an answer", "They are slow to get back to me"]
FRIENDLY = ["Friendly people on the phone", "The staff on the phone are kind", "Polite and helpful phone agents"]
# Leaders' answers on the customers' "friendly" topic, so they land in a shown theme. Longer than
# the engine's 8-word labels: the known label leak (see test_a_theme_label_never_quotes_a_suppressed_group)
# must not hide whether the pages show the items themselves.
LEADERS_FRIENDLY = [
    "The people who answer our phones are always friendly and kind to callers",
    "Our phone staff are friendly and polite with every single customer who calls",
    "Customers tell us that our staff on the phone are kind and helpful",
]
# ...and on a topic no customer raises, so they make a theme of their own.
LEADERS_PRICING = ["Our prices beat every rival", "Our pricing beats the competition", "We are cheaper than all rivals"]
LEADERS = 3  # below the engagement's threshold of 5: the leadership group is suppressed
CUSTOMERS = 6
CUSTOMER_NAMES = [f"Carla Diaz {n}" for n in range(CUSTOMERS)]
CUSTOMER_EMAILS = [f"carla.diaz{n}@example.com" for n in range(CUSTOMERS)]


def answers(wave: Wave, items: list[tuple[str, str]]) -> Answers:
    """``items`` as (question_key, text) and a 3 for every rating of the wave."""
    return Answers(
        items=[ItemInput(question, text) for question, text in items],
        ratings=[RatingInput(item_key=key, value=3) for key in wave.rating_items.values_list("key", flat=True)],
    )


def invited_customers_answer(wave: Wave, count: int = CUSTOMERS) -> None:
    """``count`` customers, each invited by name and email, answer a strength and an improvement."""
    services.invitations_create(
        wave=wave,
        contacts=[Contact(email=CUSTOMER_EMAILS[n], name=CUSTOMER_NAMES[n], segment="Retail") for n in range(count)],
    )
    for n, invitation in enumerate(wave.invitations.order_by("email")):
        services.invitation_submit(
            invitation=invitation,
            answers=answers(wave, [("strengths", FRIENDLY[n % 3]), ("improvements", SLOW[n % 3])]),
        )


def leaders_answer(wave: Wave, user: AbstractBaseUser) -> None:
    session = services.session_open(wave=wave, opened_by=user, name="Board workshop")
    for n in range(LEADERS):
        services.leader_submit(
            session=session,
            answers=answers(wave, [("strengths", LEADERS_FRIENDLY[n]), ("improvements", LEADERS_PRICING[n])]),
        )


def shown_themes(run: AnalysisRun) -> dict[int, str]:
    """Theme id -> label of every theme the run shows, over all questions."""
    return {t["theme_id"]: t["label"] for q in run.result["questions"].values() for t in q["themes"]}


def analysis_snapshot() -> dict[str, list[dict]]:
    """The rows curation could touch: themes, pins, runs and answer items."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in (Theme, ThemePin, AnalysisRun, AnswerItem)
    }


class AnalysedWaveMixin:
    """A wave of 3 leaders (suppressed) and 6 invited customers, analysed once."""

    @classmethod
    def setUpTestData(cls):
        cls.user, cls.workspace = consultant_create(username="ana", workspace_name="Alpha Consulting")
        cls.engagement = engagement_create(workspace=cls.workspace, name="Acme Retail")
        cls.wave = first_wave(cls.engagement)
        leaders_answer(cls.wave, cls.user)
        invited_customers_answer(cls.wave)
        cls.first_run = analysis_services.analysis_run_now(wave=cls.wave)
        cls.themes = shown_themes(cls.first_run)
        # The theme holding "slow to reply", and the one holding "friendly on the phone".
        cls.slow = cls.theme_of(SLOW[0])
        cls.friendly = cls.theme_of(FRIENDLY[0])
        found = cls.first_run.result["questions"]
        assert cls.slow != cls.friendly and {cls.slow, cls.friendly} <= set(cls.themes), f"engine found {found}"

    @classmethod
    def theme_of(cls, text: str) -> int:
        item = AnswerItem.objects.filter(respondent__wave=cls.wave, text=text).first()
        return cls.first_run.assignments[str(item.pk)]

    def setUp(self):
        self.client.force_login(self.user)

    def url(self, name: str, **kwargs) -> str:
        return reverse(f"analysis:{name}", kwargs={"slug": self.engagement.slug, "number": self.wave.number, **kwargs})

    def items_of(self, theme_id: int, run: AnalysisRun | None = None) -> set[str]:
        ids = theme_items(run or run_served(self.wave), theme_id)
        return set(AnswerItem.objects.filter(pk__in=ids).values_list("text", flat=True))


class ThemeViewTests(AnalysedWaveMixin, TestCase):
    def test_theme_list_shows_the_served_runs_themes_per_question_with_shares(self):
        response = self.client.get(self.url("theme_list"))

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.context["run"], self.first_run)
        self.assertEqual(response.context["questions"], self.first_run.result["questions"])
        # In the wave's order, whatever order the database keeps JSON keys in (PostgreSQL's jsonb keeps none).
        self.assertEqual(list(response.context["questions"]), list(self.wave.questions.values_list("key", flat=True)))
        self.assertContains(response, "What we do well")
        self.assertContains(response, "What could be improved")
        for question in self.first_run.result["questions"].values():
            for theme in question["themes"]:
                self.assertContains(response, escape(theme["label"]))
                self.assertContains(response, self.url("theme_detail", theme_id=theme["theme_id"]))
        # Every customer raised both themes; the suppressed leaders and absent staff get a dash, never a share.
        slow = next(
            t for t in self.first_run.result["questions"]["improvements"]["themes"] if t["theme_id"] == self.slow
        )
        self.assertEqual(slow["groups"]["customer"]["share"], 1.0)
        self.assertNotIn("leadership", slow["groups"])
        row = response.content.decode().split(self.url("theme_detail", theme_id=self.slow))[1].split("</tr>")[0]
        self.assertIn("100%", row)
        self.assertEqual(row.count("–"), 2)
        # ...and it is listed under its question.
        content = response.content.decode()
        position = content.index(self.url("theme_detail", theme_id=self.slow))
        self.assertLess(content.index("What could be improved"), position)
        self.assertLess(position, content.index("What the competition does differently"))

    def test_theme_list_before_any_run_says_how_to_get_one(self):
        wave = services.wave_create(engagement=self.engagement, title="Spring")

        response = self.client.get(reverse("analysis:theme_list", args=[self.engagement.slug, wave.number]))

        self.assertEqual(response.status_code, 200)
        self.assertIsNone(response.context["run"])
        self.assertContains(response, "No analysis has finished for this wave yet.")
        self.assertContains(response, "Recompute now")
        self.assertContains(response, reverse("analysis:recompute", args=[self.engagement.slug, wave.number]))
        self.assertNotContains(response, escape(self.themes[self.slow]))

    def test_theme_detail_lists_the_themes_items(self):
        response = self.client.get(self.url("theme_detail", theme_id=self.slow))

        self.assertEqual(response.status_code, 200)
        self.assertContains(response, escape(Theme.objects.get(pk=self.slow).display_label))
        listed = [item.text for item in response.context["page"].object_list]
        self.assertEqual(sorted(listed), sorted(SLOW * 2))  # each of the six customers' items, once
        for text in SLOW:
            self.assertContains(response, f"<td>{escape(text)}</td>", count=2)
        # Each item can be moved to any other theme shown.
        self.assertContains(response, self.url("item_move", theme_id=self.slow))
        self.assertContains(response, f'<option value="{self.friendly}">')

    def test_suppressed_groups_items_never_appear_on_the_theme_pages(self):
        leader_texts = LEADERS_FRIENDLY + LEADERS_PRICING
        leader_items = AnswerItem.objects.filter(respondent__wave=self.wave, respondent__group="leadership")
        self.assertEqual(set(leader_items.values_list("text", flat=True)), set(leader_texts))
        # The test proves something only if the engine put leaders' items into themes the consultant sees.
        in_shown = [i for i in leader_items if self.first_run.assignments[str(i.pk)] in self.themes]
        self.assertTrue(in_shown, "no leader item landed in a shown theme; reword LEADERS_FRIENDLY")

        pages = [self.url("theme_list")] + [self.url("theme_detail", theme_id=t) for t in self.themes]
        for url in pages:
            with self.subTest(url=url):
                response = self.client.get(url)
                self.assertEqual(response.status_code, 200)
                for text in leader_texts:
                    self.assertNotContains(response, escape(text))
                if "page" in response.context:
                    self.assertFalse(
                        [i for i in response.context["page"].object_list if i.respondent.group == "leadership"]
                    )
        response = self.client.get(self.url("theme_detail", theme_id=self.friendly))
        self.assertContains(response, "too few respondents to show")
        self.assertEqual(response.context["hidden_groups"], ["leadership", "staff"])
        self.assertEqual({i.text for i in response.context["page"].object_list}, set(FRIENDLY))

    def test_a_theme_of_suppressed_answers_only_shows_none_of_them(self):
        # The leaders' pricing items form a theme no shown group mentions: the run leaves it out,
        # and its own page must not show what it is called (the engine names it after an item).
        pricing = {self.first_run.assignments[str(i.pk)] for i in AnswerItem.objects.filter(text__in=LEADERS_PRICING)}
        hidden = pricing - {None} - set(self.themes)
        self.assertTrue(hidden, "the leaders' pricing items made no theme of their own; reword LEADERS_PRICING")

        for theme_id in hidden:
            response = self.client.get(self.url("theme_detail", theme_id=theme_id), follow=True)
            for text in LEADERS_PRICING + LEADERS_FRIENDLY:
                self.assertNotContains(response, escape(text), status_code=response.status_code)
            self.assertEqual(response.redirect_chain, [(self.url("theme_list"), 302)])
            self.assertContains(response, "not in the latest analysis")

    def test_a_theme_label_never_quotes_a_suppressed_group(self):
        # A shown theme must be named from shown answers only, never after a suppressed leader's words.
        leader_text = "Kind and friendly people on the phone"
        lee, workspace = consultant_create(username="lee", workspace_name="Lee Consulting")
        engagement = engagement_create(workspace=workspace, name="Kestrel Bank")
        wave = first_wave(engagement)
        session = services.session_open(wave=wave)
        for _ in range(LEADERS):
            services.leader_submit(session=session, answers=answers(wave, [("strengths", leader_text)]))
        invited_customers_answer(wave)
        run = analysis_services.analysis_run_now(wave=wave)
        self.client.force_login(lee)

        pages = [reverse("analysis:theme_list", args=[engagement.slug, 1])] + [
            reverse("analysis:theme_detail", args=[engagement.slug, 1, t]) for t in shown_themes(run)
        ]
        for url in pages:
            self.assertNotContains(self.client.get(url), leader_text)

    def test_no_respondent_identity_on_any_theme_page(self):
        pages = [self.url("theme_list")] + [self.url("theme_detail", theme_id=t) for t in self.themes]
        pages.append(reverse("analysis:api_analysis", args=[self.engagement.slug]))
        for url in pages:
            with self.subTest(url=url):
                response = self.client.get(url)
                self.assertEqual(response.status_code, 200)
                content = response.content.decode()
                for name, email in zip(CUSTOMER_NAMES, CUSTOMER_EMAILS):
                    self.assertNotIn(name, content)
                    self.assertNotIn(email, content)
                    self.assertNotIn(email.split("@")[0], content)
                self.assertNotIn("Board workshop", content)


class ThemeCurationTests(AnalysedWaveMixin, TestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        # Another engagement of the same consultant, analysed: its themes are reachable but foreign here.
        other = engagement_create(workspace=cls.workspace, name="Bolt Logistics")
        invited_customers_answer(first_wave(other))
        cls.foreign_theme = next(iter(shown_themes(analysis_services.analysis_run_now(wave=first_wave(other)))))
        # A second wave of this engagement, with one answer: its item belongs to no theme page of wave 1.
        spring = services.wave_create(engagement=cls.engagement, title="Spring")
        services.open_link_submit(wave=spring, answers=answers(spring, [("improvements", "Slow answers in spring")]))
        cls.spring_item = AnswerItem.objects.get(respondent__wave=spring)

    def post_and_recompute(self, url: str, data: dict):
        """
        Post like the browser, let the queued recompute run as it does when the
        request commits, then follow the redirect (the page the consultant sees next).
        """
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            response = self.client.post(url, data)
        self.assertEqual(response.status_code, 302)
        self.assertTrue(callbacks, "the edit queued no recompute")
        return self.client.get(response["Location"])

    def assert_refused(self, url: str, data: dict, message: str | None, status: int = 200) -> None:
        """The post is answered with ``message`` on the theme's page (or ``status``) and changes nothing."""
        before = analysis_snapshot()
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            response = self.client.post(url, data, follow=True)
        self.assertEqual(response.status_code, status)
        if message is not None:
            self.assertContains(response, message)
            theme_page = url.rsplit("/", 2)[0] + "/"  # .../themes/<id>/rename/ -> .../themes/<id>/
            self.assertEqual(response.redirect_chain, [(theme_page, 302)])
        self.assertEqual(callbacks, [], "a refused edit queued a recompute")
        self.assertEqual(analysis_snapshot(), before)
        self.assertEqual(run_served(self.wave), self.first_run)

    # --- Rename -------------------------------------------------------------------

    def test_rename_shows_the_new_label_after_the_automatic_recompute(self):
        response = self.post_and_recompute(
            self.url("theme_rename", theme_id=self.slow), {"label": "  Waiting  for replies "}
        )

        self.assertEqual(response.request["PATH_INFO"], self.url("theme_detail", theme_id=self.slow))
        self.assertContains(response, "Theme renamed to “Waiting for replies”")
        self.assertEqual(Theme.objects.get(pk=self.slow).custom_label, "Waiting for replies")
        latest = run_served(self.wave)
        self.assertNotEqual(latest, self.first_run)
        self.assertEqual(latest.trigger, AnalysisRun.Trigger.CURATION)
        self.assertEqual(shown_themes(latest)[self.slow], "Waiting for replies")
        listing = self.client.get(self.url("theme_list"))
        self.assertContains(listing, "Waiting for replies")
        self.assertNotContains(listing, f">{escape(self.themes[self.slow])}<")

    def test_rename_to_an_empty_label_is_refused(self):
        for label in ("", "   "):
            with self.subTest(label=label):
                self.assert_refused(
                    self.url("theme_rename", theme_id=self.slow), {"label": label}, "Give the theme a name"
                )
        self.assertEqual(Theme.objects.get(pk=self.slow).custom_label, "")

    def test_rename_to_an_overlong_label_is_refused(self):
        self.assert_refused(
            self.url("theme_rename", theme_id=self.slow), {"label": "x" * 201}, "at most 200 characters"
        )

    # --- Merge --------------------------------------------------------------------

    def test_merge_removes_the_source_from_the_list(self):
        response = self.post_and_recompute(self.url("theme_merge", theme_id=self.friendly), {"target": self.slow})

        self.assertEqual(response.request["PATH_INFO"], self.url("theme_detail", theme_id=self.slow))
        self.assertContains(
            response, f"“{escape(self.themes[self.friendly])}” merged into “{escape(self.themes[self.slow])}”"
        )
        self.assertEqual(Theme.objects.get(pk=self.friendly).merged_into_id, self.slow)
        latest = run_served(self.wave)
        self.assertNotEqual(latest, self.first_run)
        self.assertEqual(latest.trigger, AnalysisRun.Trigger.CURATION)
        self.assertNotIn(self.friendly, shown_themes(latest))
        self.assertNotIn(self.friendly, latest.assignments.values())
        listing = self.client.get(self.url("theme_list"))
        self.assertNotContains(listing, self.url("theme_detail", theme_id=self.friendly))
        self.assertContains(listing, self.url("theme_detail", theme_id=self.slow))
        # The merged theme's old address leads to the theme that took it over.
        self.assertRedirects(
            self.client.get(self.url("theme_detail", theme_id=self.friendly)),
            self.url("theme_detail", theme_id=self.slow),
        )

    def test_merge_gives_the_target_the_sources_items(self):
        source_items = self.items_of(self.friendly)

        response = self.post_and_recompute(self.url("theme_merge", theme_id=self.friendly), {"target": self.slow})

        latest = run_served(self.wave)
        self.assertLessEqual(source_items, self.items_of(self.slow, latest))
        self.assertEqual(len(shown_themes(latest)), len(self.themes) - 1)
        for text in FRIENDLY + SLOW:
            self.assertContains(response, escape(text))  # the target's page lists both themes' items

    def test_merge_into_itself_is_refused(self):
        self.assert_refused(
            self.url("theme_merge", theme_id=self.slow), {"target": self.slow}, "Choose the theme to merge into"
        )

    def test_merge_into_a_theme_of_another_engagement_is_refused(self):
        self.assert_refused(
            self.url("theme_merge", theme_id=self.slow),
            {"target": self.foreign_theme},
            "Choose the theme to merge into",
        )
        self.assertIsNone(Theme.objects.get(pk=self.slow).merged_into_id)

    def test_merge_without_a_target_is_refused(self):
        self.assert_refused(
            self.url("theme_merge", theme_id=self.slow), {"target": ""}, "Choose the theme to merge into"
        )

    # --- Move ---------------------------------------------------------------------

    def test_move_pins_the_item_to_the_chosen_theme(self):
        item = AnswerItem.objects.get(
            respondent__wave=self.wave, text=SLOW[0], respondent__invitation__email=CUSTOMER_EMAILS[0]
        )

        response = self.post_and_recompute(
            self.url("item_move", theme_id=self.slow), {"item": item.pk, "theme": self.friendly}
        )

        self.assertEqual(response.request["PATH_INFO"], self.url("theme_detail", theme_id=self.slow))
        self.assertContains(response, "Item moved to")
        pin = ThemePin.objects.get(item=item)
        self.assertEqual((pin.theme_id, pin.pinned_by), (self.friendly, self.user))
        latest = run_served(self.wave)
        self.assertNotEqual(latest, self.first_run)
        self.assertEqual(latest.assignments[str(item.pk)], self.friendly)
        self.assertNotIn(item.pk, theme_items(latest, self.slow))
        detail = self.client.get(self.url("theme_detail", theme_id=self.friendly))
        self.assertIn(item, detail.context["page"].object_list)

    def test_move_to_a_theme_of_another_engagement_is_refused(self):
        item = AnswerItem.objects.filter(respondent__wave=self.wave, text=SLOW[0]).first()
        self.assert_refused(
            self.url("item_move", theme_id=self.slow),
            {"item": item.pk, "theme": self.foreign_theme},
            "choose the theme to move them to",
        )

    def test_move_of_an_item_of_another_wave_is_refused(self):
        # The page only ever posts its own items: another wave's item id is a tampered form, hence 404.
        self.assert_refused(
            self.url("item_move", theme_id=self.slow),
            {"item": self.spring_item.pk, "theme": self.friendly},
            message=None,
            status=404,
        )


class RecomputeTests(AnalysedWaveMixin, TestCase):
    def test_recompute_queues_a_run_and_redirects_with_a_message(self):
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            response = self.client.post(self.url("recompute"), follow=True)

        wave_page = reverse("surveys:wave_detail", args=[self.engagement.slug, self.wave.number])
        self.assertRedirects(response, wave_page)
        self.assertContains(response, "The analysis is being recomputed")
        self.assertEqual(len(callbacks), 1)
        queued = self.wave.analysis_runs.get(status=AnalysisRun.Status.PENDING)
        self.assertEqual(queued.trigger, AnalysisRun.Trigger.MANUAL)
        self.assertContains(response, "The analysis is queued")

    def test_recompute_while_a_run_is_queued_reuses_it(self):
        with self.captureOnCommitCallbacks(execute=False):
            queued = analysis_services.analysis_request(wave=self.wave, countdown=600)
            runs = AnalysisRun.objects.count()
            response = self.client.post(self.url("recompute"))

        self.assertEqual(response.status_code, 302)
        self.assertEqual(AnalysisRun.objects.count(), runs)
        self.assertEqual(list(self.wave.analysis_runs.filter(status=AnalysisRun.Status.PENDING)), [queued])

    def test_recompute_runs_the_analysis_once_committed(self):
        # New answers since the served run, so the recompute has something new to find.
        services.open_link_submit(wave=self.wave, answers=answers(self.wave, [("improvements", SLOW[0])]))

        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(self.url("recompute"))

        latest = run_served(self.wave)
        self.assertNotEqual(latest, self.first_run)
        self.assertEqual((latest.status, latest.trigger), (AnalysisRun.Status.DONE, AnalysisRun.Trigger.MANUAL))
        self.assertEqual(latest.result["groups"]["customer"]["respondents"], CUSTOMERS + 1)
        self.assertFalse(self.wave.analysis_runs.filter(status=AnalysisRun.Status.PENDING).exists())

    def test_recompute_of_a_closed_wave_still_works(self):
        services.wave_close(wave=self.wave)

        with self.captureOnCommitCallbacks(execute=False):
            response = self.client.post(self.url("recompute"))

        self.assertEqual(response.status_code, 302)
        self.assertTrue(self.wave.analysis_runs.filter(status=AnalysisRun.Status.PENDING).exists())

    def test_recompute_refuses_get(self):
        self.assertEqual(self.client.get(self.url("recompute")).status_code, 405)
        self.assertFalse(self.wave.analysis_runs.filter(status=AnalysisRun.Status.PENDING).exists())


class WaveAnalysisCardTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user, workspace = consultant_create()
        cls.engagement = engagement_create(workspace=workspace, name="Acme Retail")
        cls.wave = first_wave(cls.engagement)
        invited_customers_answer(cls.wave)

    def setUp(self):
        self.client.force_login(self.user)
        self.page = reverse("surveys:wave_detail", args=[self.engagement.slug, self.wave.number])
        self.themes = reverse("analysis:theme_list", args=[self.engagement.slug, self.wave.number])

    def test_before_any_run_the_card_offers_only_the_recompute_button(self):
        response = self.client.get(self.page)

        self.assertContains(response, 'id="analysis-heading"')
        self.assertContains(response, "Not analysed yet.")
        self.assertContains(response, reverse("analysis:recompute", args=[self.engagement.slug, self.wave.number]))
        self.assertNotContains(response, self.themes)
        self.assertNotContains(response, "The analysis is")

    def test_once_a_run_exists_the_card_links_the_themes_and_the_json(self):
        run = analysis_services.analysis_run_now(wave=self.wave)

        response = self.client.get(self.page)

        self.assertEqual(response.context["run"], run)
        self.assertContains(response, f'href="{self.themes}">Themes</a>')
        self.assertContains(response, reverse("analysis:api_analysis", args=[self.engagement.slug]) + "?wave=1")
        self.assertContains(response, f"({run.engine})")
        self.assertNotContains(response, "Not analysed yet.")

    def test_a_queued_run_shows_a_note(self):
        with self.captureOnCommitCallbacks(execute=False):
            analysis_services.analysis_request(wave=self.wave, countdown=600)

        response = self.client.get(self.page)

        self.assertContains(response, "The analysis is queued.")
        self.assertContains(response, "Not analysed yet.")
        self.assertNotContains(response, "The last finished result is shown until then.")

    def test_a_run_in_progress_shows_its_step_over_the_last_result(self):
        analysis_services.analysis_run_now(wave=self.wave)
        services.open_link_submit(wave=self.wave, answers=answers(self.wave, [("improvements", SLOW[0])]))
        with self.captureOnCommitCallbacks(execute=False):
            queued = analysis_services.analysis_request(wave=self.wave, countdown=600)
        analysis_services.analysis_claim(run_id=queued.pk)
        AnalysisRun.objects.filter(pk=queued.pk).update(progress={"step": 3, "steps": 5, "label": "Finding themes"})

        response = self.client.get(self.page)

        self.assertContains(response, "The analysis is running: finding themes (step 3 of 5).")
        self.assertContains(response, "The last finished result is shown until then.")
        self.assertContains(response, f'href="{self.themes}">Themes</a>')
        # The theme list says the same while it shows the last result.
        self.assertContains(self.client.get(self.themes), "The analysis is running")
