"""``manage.py import_responses``: a good file lands whole, a bad one changes nothing."""

from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from surveys import services
from surveys.models import AnswerItem, Engagement, Group, Rating, Respondent, Wave, Workspace

HEADER = "group,respondent,department,members,question,tag,text"

GOOD_FILE = f"""{HEADER}
leadership,L1,,,strengths,,Friendly staff
leadership,L1,,,improvements,,Slow replies
leadership,L1,,,rating:overall,,5
leadership,L2,,,competition,BAD,Rivals hide their fees
leadership,L2,,,rating:overall,,4
staff,Team Blue,Support,7,continue_start,start,Call customers back
staff,Team Blue,Support,7,continue_start,Continue,Weekly huddles
staff,Team Blue,Support,7,rating:consistency,,2
customer,C1,Retail,,improvements,,Waited two weeks for an answer
customer,C1,Retail,,rating:overall,,1
customer,L1,Wholesale,,strengths,,"Good prices, fair terms"
"""


def write_csv(tmp_path: Path, text: str, name: str = "responses.csv") -> Path:
    path = tmp_path / name
    # newline="" keeps the line endings exactly as the test wrote them.
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(text)
    return path


def run_import(*args: str) -> str:
    """Run the command; return its standard output."""
    stdout = StringIO()
    call_command("import_responses", *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue()


def refused_import(*args: str) -> tuple[str, list[str]]:
    """Run a command that must fail; return the CommandError message and the stderr lines."""
    stderr = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_responses", *args, stdout=StringIO(), stderr=stderr)
    return str(raised.value), stderr.getvalue().splitlines()


def table_counts() -> dict[str, int]:
    """Rows in every table of the collection app, to prove a refused import changed nothing."""
    return {model.__name__: model.objects.count() for model in apps.get_app_config("surveys").get_models()}


@pytest.fixture
def engagement(db) -> Engagement:
    workspace = services.workspace_create(name="Gap Consulting")
    return services.engagement_create(workspace=workspace, name="Acme Ltd", slug="acme")


# (rows after the header, the error line expected on stderr)
BAD_ROWS = [
    pytest.param(
        ["partner,X,,,strengths,,Fast"],
        "line 2: unknown group “partner” (use leadership, staff or customer)",
        id="unknown-group",
    ),
    pytest.param(
        [",X,,,strengths,,Fast"],
        "line 2: the group is empty (use leadership, staff or customer)",
        id="empty-group",
    ),
    pytest.param(
        ["leadership,,,,strengths,,Fast"],
        "line 2: the respondent id is empty",
        id="empty-respondent",
    ),
    pytest.param(
        ["leadership,L1,,,weaknesses,,Fast"],
        "line 2: unknown question “weaknesses” "
        "(use strengths, improvements, competition, continue_start or rating:<item>)",
        id="unknown-question",
    ),
    pytest.param(
        ["leadership,L1,,,rating:speed,,4"],
        "line 2: unknown rating item “speed” "
        "(this wave's rating items: consistency, customer_centricity, overall, problem_handling)",
        id="unknown-rating-item",
    ),
    pytest.param(
        ["leadership,L1,,,rating:overall,,five"],
        "line 2: rating “five” is not a whole number from 1 to 5",
        id="rating-not-a-number",
    ),
    pytest.param(
        ["leadership,L1,,,rating:overall,,6"],
        "line 2: rating “6” is not a whole number from 1 to 5",
        id="rating-above-scale",
    ),
    pytest.param(
        ["leadership,L1,,,rating:overall,,0"],
        "line 2: rating “0” is not a whole number from 1 to 5",
        id="rating-below-scale",
    ),
    pytest.param(
        ["leadership,L1,,,rating:overall,,4.5"],
        "line 2: rating “4.5” is not a whole number from 1 to 5",
        id="rating-not-whole",
    ),
    pytest.param(
        ["leadership,L1,,,rating:overall,,"],
        "line 2: the rating is empty; its text must be a whole number from 1 to 5",
        id="rating-empty",
    ),
    pytest.param(
        ["leadership,L1,,,rating:overall,good,4"],
        "line 2: ratings take no tag; leave “good” out",
        id="rating-with-tag",
    ),
    pytest.param(
        ["leadership,L1,,,strengths,,   "],
        "line 2: the text is empty; each row carries one answer item",
        id="empty-text",
    ),
    pytest.param(
        ["leadership,L1,,,strengths,," + "x" * 21],
        "line 2: the text is 21 characters long; items are at most 20 (split it into shorter items)",
        id="text-too-long",
    ),
    pytest.param(
        ["leadership,L1,,,strengths,good,Fast"],
        "line 2: “strengths” items take no tag; leave “good” out",
        id="tag-on-untagged-question",
    ),
    pytest.param(
        ["leadership,L1,,,competition,,Cheaper"],
        "line 2: “competition” items need a tag: good, bad or neutral",
        id="missing-competition-tag",
    ),
    pytest.param(
        ["leadership,L1,,,continue_start,stop,Cold calls"],
        "line 2: tag “stop” does not fit “continue_start” (use continue or start)",
        id="wrong-continue-start-tag",
    ),
    pytest.param(
        ["staff,Team Blue,Support,,strengths,,Fast"],
        "line 2: a staff sheet needs members, a whole number from 2 to 20",
        id="staff-without-members",
    ),
    pytest.param(
        ["staff,Team Blue,Support,seven,strengths,,Fast"],
        "line 2: members “seven” is not a whole number from 2 to 20",
        id="staff-members-not-a-number",
    ),
    pytest.param(
        ["staff,Team Blue,Support,1,strengths,,Fast"],
        "line 2: members “1” is not a whole number from 2 to 20",
        id="staff-members-too-few",
    ),
    pytest.param(
        ["staff,Team Blue,Support,21,strengths,,Fast"],
        "line 2: members “21” is not a whole number from 2 to 20",
        id="staff-members-too-many",
    ),
    pytest.param(
        ["staff,Team Blue,,7,strengths,,Fast"],
        "line 2: a staff sheet needs a department",
        id="staff-without-department",
    ),
    pytest.param(
        ["customer,C1,Retail,3,strengths,,Fast"],
        "line 2: members applies to staff sheets only; leave it empty for customer",
        id="members-on-customer",
    ),
    pytest.param(
        ["leadership,L1,Board,,strengths,,Fast"],
        "line 2: department applies to staff (department) and customers (segment) only; "
        "leave it empty for leadership",
        id="department-on-leader",
    ),
    pytest.param(
        ["staff,Team Blue,Support,7,strengths,,Fast", "staff,Team Blue,Sales,7,improvements,,Slow"],
        "line 3: department “Sales” differs from “Support” on line 2",
        id="department-changes",
    ),
    pytest.param(
        ["staff,Team Blue,Support,7,strengths,,Fast", "staff,Team Blue,Support,8,improvements,,Slow"],
        "line 3: members “8” differs from “7” on line 2",
        id="members-change",
    ),
    pytest.param(
        ["customer,C1,,,rating:overall,,4", "customer,C1,,,strengths,,Fast", "customer,C1,,,rating:overall,,2"],
        "line 4: respondent “C1” rates “overall” again (first on line 2)",
        id="rated-twice",
    ),
    pytest.param(
        ["customer,C1,,,strengths,,One", "customer,C1,,,strengths,,Two", "customer,C1,,,strengths,,Three"],
        "line 4: respondent “C1” has more than 2 items for “strengths”",
        id="too-many-items",
    ),
    pytest.param(
        ["customer,C1,,,strengths,,Fast, friendly"],
        "line 2: this row has 8 values but the header has 7 columns (put text containing commas in double quotes)",
        id="unquoted-comma",
    ),
    pytest.param(
        ["customer,C1,,,strengths,,Fast", 'customer,C1,,,improvements,,"Slow', "customer,C1,,,strengths,,Kind"],
        "line 3: a quoted value is never closed (a closing “\"” is missing); rows after it were not checked",
        id="unclosed-quote",
    ),
    pytest.param(
        ['customer,C1,,,strengths,,"Fast" service', "customer,C1,,,strengths,,Kind"],
        "line 2: this row is not valid CSV (',' expected after '\"'); "
        "a “\"” inside a quoted value must be doubled; rows after it were not checked",
        id="stray-quote",
    ),
    pytest.param(
        [],
        "line 1: the file has a header but no rows of answers",
        id="header-only",
    ),
]


@pytest.mark.django_db
class ImportResponsesTests:
    def test_good_file_imports_exactly_its_rows(self, engagement, tmp_path):
        output = run_import("acme", str(write_csv(tmp_path, GOOD_FILE)))

        assert output.strip() == (
            "Imported 5 respondents (2 leaders, 1 staff sheets, 2 customers), 7 items and 4 ratings "
            "into Acme Ltd wave 1."
        )
        wave = engagement.waves.get(number=1)
        respondents = Respondent.objects.filter(wave=wave)
        assert {group: respondents.filter(group=group).count() for group in Group.values} == {
            "leadership": 2,
            "staff": 1,
            "customer": 2,
        }
        assert set(respondents.values_list("channel", "status").distinct()) == {("import", "submitted")}
        assert not respondents.filter(submitted_at__isnull=True).exists()

        sheet = respondents.get(group=Group.STAFF)
        assert (sheet.external_ref, sheet.group_name, sheet.department, sheet.members) == (
            "Team Blue",
            "Team Blue",
            "Support",
            7,
        )
        # The same id in another group is another respondent, with its own segment.
        customer_l1 = respondents.get(group=Group.CUSTOMER, external_ref="L1")
        assert (customer_l1.department, customer_l1.members, customer_l1.group_name) == ("Wholesale", None, "")
        leader_l1 = respondents.get(group=Group.LEADERSHIP, external_ref="L1")
        assert (leader_l1.department, leader_l1.members) == ("", None)

        items = set(
            AnswerItem.objects.filter(respondent__wave=wave).values_list(
                "respondent__group", "respondent__external_ref", "question_key", "tag", "text", "order"
            )
        )
        assert items == {
            ("leadership", "L1", "strengths", "", "Friendly staff", 1),
            ("leadership", "L1", "improvements", "", "Slow replies", 1),
            ("leadership", "L2", "competition", "bad", "Rivals hide their fees", 1),
            ("staff", "Team Blue", "continue_start", "start", "Call customers back", 1),
            ("staff", "Team Blue", "continue_start", "continue", "Weekly huddles", 2),
            ("customer", "C1", "improvements", "", "Waited two weeks for an answer", 1),
            ("customer", "L1", "strengths", "", "Good prices, fair terms", 1),
        }
        assert AnswerItem.objects.filter(respondent__wave=wave).count() == 7

        ratings = set(
            Rating.objects.filter(respondent__wave=wave).values_list(
                "respondent__group", "respondent__external_ref", "item__key", "value", "votes"
            )
        )
        assert ratings == {
            ("leadership", "L1", "overall", 5, 1),
            ("leadership", "L2", "overall", 4, 1),
            ("staff", "Team Blue", "consistency", 2, 7),  # an agreed value counts once per member
            ("customer", "C1", "overall", 1, 1),
        }
        # Ratings point at this wave's own rating items.
        assert not Rating.objects.exclude(item__wave=wave).exists()

    def test_columns_in_any_order_with_extra_columns(self, engagement, tmp_path):
        text = (
            "text,Notes,QUESTION,tag,members,department,respondent,group\n"
            "Quick answers,ignored,strengths,,,Retail,C1,customer\n"
            "4,,rating:overall,,,Retail,C1,customer\n"
        )
        run_import("acme", str(write_csv(tmp_path, text)))

        customer = Respondent.objects.get()
        assert (customer.group, customer.external_ref, customer.department) == ("customer", "C1", "Retail")
        assert list(customer.items.values_list("question_key", "text")) == [("strengths", "Quick answers")]
        assert list(customer.ratings.values_list("value", flat=True)) == [4]

    def test_byte_order_mark_and_windows_line_endings_are_read(self, engagement, tmp_path):
        text = "\ufeff" + GOOD_FILE.replace("\n", "\r\n")
        run_import("acme", str(write_csv(tmp_path, text)))

        assert Respondent.objects.count() == 5
        assert AnswerItem.objects.filter(text="Good prices, fair terms").exists()

    def test_one_bad_row_imports_nothing_and_names_its_line(self, engagement, tmp_path):
        text = GOOD_FILE + "customer,C2,Retail,,rating:overall,,7\n"
        before = table_counts()

        message, errors = refused_import("acme", str(write_csv(tmp_path, text)))

        assert errors == ["line 13: rating “7” is not a whole number from 1 to 5"]
        assert "Nothing was imported" in message
        assert table_counts() == before

    def test_bad_file_with_create_as_creates_no_engagement_or_workspace(self, db, tmp_path):
        text = GOOD_FILE + "partner,P1,,,strengths,,Fast\n"

        _, errors = refused_import("newco", str(write_csv(tmp_path, text)), "--create-as", "NewCo")

        assert errors == ["line 13: unknown group “partner” (use leadership, staff or customer)"]
        assert not Engagement.objects.exists()
        assert not Workspace.objects.exists()
        assert all(count == 0 for count in table_counts().values())

    @pytest.mark.parametrize(("rows", "expected"), BAD_ROWS)
    def test_each_rule_reports_its_line(self, engagement, tmp_path, settings, rows, expected):
        settings.GAPSURVEY_ITEM_MAX_LENGTH = 20
        settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION = 2
        before = table_counts()

        _, errors = refused_import("acme", str(write_csv(tmp_path, "\n".join([HEADER, *rows]) + "\n")))

        assert errors == [expected]
        assert table_counts() == before

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            pytest.param(
                "group,respondent,department,question,text",
                "line 1: the header lacks the columns “members”, “tag”; "
                "it needs the columns group,respondent,department,members,question,tag,text",
                id="missing-columns",
            ),
            pytest.param(
                "group;respondent;department;members;question;tag;text",
                "line 1: the header lacks the columns “group”, “respondent”, “department”, “members”, “question”, "
                "“tag”, “text”; it needs the columns group,respondent,department,members,question,tag,text "
                "separated by commas",
                id="semicolons",
            ),
            pytest.param(
                HEADER + ",text",
                "line 1: the header has the column “text” more than once",
                id="repeated-column",
            ),
        ],
    )
    def test_header_problems_are_reported_on_line_one(self, engagement, tmp_path, header, expected):
        text = f"{header}\nleadership,L1,,,strengths,,Fast\n"

        _, errors = refused_import("acme", str(write_csv(tmp_path, text)))

        assert errors == [expected]

    def test_empty_file_is_refused(self, engagement, tmp_path):
        _, errors = refused_import("acme", str(write_csv(tmp_path, "")))

        assert errors == [
            "line 1: the file is empty; its first line must be the header "
            "group,respondent,department,members,question,tag,text"
        ]

    def test_every_problem_is_reported_not_just_the_first(self, engagement, tmp_path):
        text = "\n".join(
            [
                HEADER,
                "partner,P1,,,strengths,,Fast",
                "leadership,L1,,,rating:overall,,9",
                "leadership,L1,,,strengths,,Fine",
                "customer,C1,,,competition,great,Cheaper",
            ]
        )

        _, errors = refused_import("acme", str(write_csv(tmp_path, text)))

        assert errors == [
            "line 2: unknown group “partner” (use leadership, staff or customer)",
            "line 3: rating “9” is not a whole number from 1 to 5",
            "line 5: tag “great” does not fit “competition” (use good, bad or neutral)",
        ]

    def test_long_error_lists_are_cut_at_fifty(self, engagement, tmp_path):
        rows = [f"partner,P{n},,,strengths,,Fast" for n in range(60)]

        _, errors = refused_import("acme", str(write_csv(tmp_path, "\n".join([HEADER, *rows]))))

        assert len(errors) == 51
        assert errors[0].startswith("line 2: ")
        assert errors[49].startswith("line 51: ")
        assert errors[50] == "... and 10 more"

    def test_multi_line_quoted_text_keeps_line_numbers_right(self, engagement, tmp_path):
        text = (
            f"{HEADER}\r\n"
            'customer,C1,Retail,,improvements,,"Waited two weeks,\r\nthen called twice\r\nand gave up"\r\n'
            "customer,C1,Retail,,rating:overall,,6\r\n"
        )

        _, errors = refused_import("acme", str(write_csv(tmp_path, text)))
        assert errors == ["line 5: rating “6” is not a whole number from 1 to 5"]

        run_import("acme", str(write_csv(tmp_path, text.replace(",,6", ",,2"))))
        item = AnswerItem.objects.get()
        assert item.text == "Waited two weeks,\r\nthen called twice\r\nand gave up"

    def test_create_as_creates_engagement_and_workspace(self, db, tmp_path):
        output = run_import("newco", str(write_csv(tmp_path, GOOD_FILE)), "--create-as", "NewCo Ltd")

        engagement = Engagement.objects.get(slug="newco")
        assert engagement.name == "NewCo Ltd"
        assert Workspace.objects.get() == engagement.workspace
        assert list(engagement.waves.values_list("number", flat=True)) == [1]
        assert Respondent.objects.filter(wave__engagement=engagement).count() == 5
        assert "into NewCo Ltd wave 1." in output

    def test_create_as_uses_the_existing_workspace(self, engagement, tmp_path):
        run_import("newco", str(write_csv(tmp_path, GOOD_FILE)), "--create-as", "NewCo Ltd")

        assert Workspace.objects.count() == 1
        assert Engagement.objects.get(slug="newco").workspace == engagement.workspace

    def test_create_as_with_a_known_slug_imports_into_it(self, engagement, tmp_path):
        run_import("acme", str(write_csv(tmp_path, GOOD_FILE)), "--create-as", "Another name")

        assert Engagement.objects.get().name == "Acme Ltd"
        assert Respondent.objects.filter(wave__engagement=engagement).count() == 5

    def test_wave_2_is_created_with_the_wording_of_wave_1(self, engagement, tmp_path):
        wave_1 = engagement.waves.get(number=1)
        strengths = wave_1.questions.get(key="strengths")
        services.question_update(
            question=strengths,
            text_leadership="What do we do best?",
            text_staff="What do we do best?",
            text_customer="What does Acme do best?",
        )
        services.rating_item_save(
            wave=wave_1, key="speed", label_leadership="Speed?", label_staff="Speed?", label_customer="Speed?"
        )
        text = f"{HEADER}\ncustomer,C1,Retail,,strengths,,Fast\ncustomer,C1,Retail,,rating:speed,,5\n"

        output = run_import("acme", str(write_csv(tmp_path, text)), "--wave", "2")

        wave_2 = engagement.waves.get(number=2)
        assert wave_2.questions.get(key="strengths").text_customer == "What does Acme do best?"
        assert set(wave_2.rating_items.values_list("key", flat=True)) == set(
            wave_1.rating_items.values_list("key", flat=True)
        )
        assert Rating.objects.get().item.wave == wave_2
        assert Respondent.objects.get().wave == wave_2
        assert not wave_1.respondents.exists()
        assert "into Acme Ltd wave 2." in output

    def test_without_wave_the_latest_wave_is_used(self, engagement, tmp_path):
        services.wave_create(engagement=engagement)

        run_import("acme", str(write_csv(tmp_path, GOOD_FILE)))

        assert set(Respondent.objects.values_list("wave__number", flat=True)) == {2}
        assert Wave.objects.filter(engagement=engagement).count() == 2

    def test_wave_number_must_be_positive(self, engagement, tmp_path):
        message, _ = refused_import("acme", str(write_csv(tmp_path, GOOD_FILE)), "--wave", "0")

        assert message == "Wave numbers start at 1."
        assert engagement.waves.count() == 1

    def test_reimporting_the_same_file_is_refused(self, engagement, tmp_path):
        path = str(write_csv(tmp_path, GOOD_FILE))
        run_import("acme", path)
        before = table_counts()

        _, errors = refused_import("acme", path)

        assert errors == [
            "line 2: leadership respondent “L1” is already in Acme Ltd wave 1 (was this file imported before?)",
            "line 5: leadership respondent “L2” is already in Acme Ltd wave 1 (was this file imported before?)",
            "line 7: staff respondent “Team Blue” is already in Acme Ltd wave 1 (was this file imported before?)",
            "line 10: customer respondent “C1” is already in Acme Ltd wave 1 (was this file imported before?)",
            "line 12: customer respondent “L1” is already in Acme Ltd wave 1 (was this file imported before?)",
        ]
        assert table_counts() == before

    def test_the_same_file_can_go_into_another_wave(self, engagement, tmp_path):
        path = str(write_csv(tmp_path, GOOD_FILE))
        run_import("acme", path)
        run_import("acme", path, "--wave", "2")

        assert Respondent.objects.filter(wave__number=2).count() == 5

    def test_oversized_file_is_refused(self, engagement, tmp_path, settings):
        settings.GAPSURVEY_IMPORT_MAX_BYTES = 100
        before = table_counts()

        _, errors = refused_import("acme", str(write_csv(tmp_path, GOOD_FILE)))

        assert errors == ["The file is larger than 100\xa0bytes; split it into smaller files."]
        assert table_counts() == before

    @pytest.mark.parametrize("bom", ["", "\ufeff"], ids=["plain", "byte-order-mark"])
    def test_non_utf8_file_is_refused_at_its_line(self, engagement, tmp_path, bom):
        text = f"{HEADER}\ncustomer,C1,,,strengths,,Fast\ncustomer,C1,,,improvements,,Café closed early\n"
        path = tmp_path / "latin1.csv"
        path.write_bytes(bom.encode() + text.encode("latin-1"))

        _, errors = refused_import("acme", str(path))

        assert errors == [
            "line 3: the file is not UTF-8 text (byte 0xe9 cannot be read); save it as “CSV UTF-8” and try again"
        ]
        assert not Respondent.objects.exists()

    def test_unknown_slug_without_create_as_is_refused(self, db, tmp_path):
        message, _ = refused_import("nobody", str(write_csv(tmp_path, GOOD_FILE)))

        assert message == "There is no engagement “nobody”; add --create-as \"Company name\" to create it."
        assert not Engagement.objects.exists()

    def test_missing_file_is_refused(self, engagement, tmp_path):
        message, _ = refused_import("acme", str(tmp_path / "nowhere.csv"))

        assert message == f"There is no file {tmp_path / 'nowhere.csv'}."
