"""``manage.py seed_demo``: the demo engagement with its planted perception gap."""

import re
from collections import defaultdict
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from surveys import demo, mailing
from surveys.models import (
    QUESTION_TAGS,
    AnswerItem,
    Department,
    Engagement,
    Group,
    Invitation,
    InvitationEmail,
    QuestionKey,
    Rating,
    Respondent,
    Workspace,
    WorkshopSession,
)

LOGIN_LINE = re.compile(r"^Log in at (?P<url>\S+) as (?P<username>\S+) / (?P<password>\S+)$", re.MULTILINE)


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def printed_login(output: str) -> dict[str, str]:
    match = LOGIN_LINE.search(output)
    assert match, f"no login line in:\n{output}"
    return match.groupdict()


def row_counts() -> dict[str, int]:
    models = [
        Workspace,
        Engagement,
        Department,
        WorkshopSession,
        Respondent,
        AnswerItem,
        Rating,
        Invitation,
        get_user_model(),
    ]
    return {model.__name__: model.objects.count() for model in models}


def submitted(group: str):
    return Respondent.objects.filter(
        wave__engagement__slug=demo.ENGAGEMENT_SLUG, group=group, status=Respondent.Status.SUBMITTED
    )


def texts_by_respondent(group: str, question: str) -> dict[int, set[str]]:
    texts: dict[int, set[str]] = defaultdict(set)
    for respondent_id, text in AnswerItem.objects.filter(
        respondent__in=submitted(group), question_key=question
    ).values_list("respondent_id", "text"):
        texts[respondent_id].add(text)
    return texts


def share_mentioning(theme_key: str, group: str) -> float:
    """The share of the group's submitted respondents with an item worded as this theme."""
    theme = demo.THEMES[theme_key]
    phrases = demo.phrases_of(theme_key, group)
    texts = texts_by_respondent(group, theme.question)
    mentioning = sum(1 for items in texts.values() if items & phrases)
    return mentioning / submitted(group).count()


def tag_fits(question: str, tag: str) -> bool:
    tags = QUESTION_TAGS[question]
    return tag in tags if tags else tag == ""


def rating_figures(group: str, item_key: str) -> tuple[float, float]:
    """(mean, top-box share) with staff sheets weighted by their votes."""
    rows = Rating.objects.filter(respondent__in=submitted(group), item__key=item_key).values_list("value", "votes")
    votes = sum(v for _, v in rows)
    mean = sum(value * v for value, v in rows) / votes
    top_box = sum(v for value, v in rows if value == 5) / votes
    return mean, top_box


@pytest.mark.django_db
class SeedDemoTests:
    @pytest.fixture(autouse=True)
    def seeded(self):
        self.output = seed()

    def test_creates_leaders_staff_sheets_in_four_departments_and_customers(self):
        engagement = Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG)
        assert engagement.name == demo.COMPANY
        assert engagement.workspace.name == demo.WORKSPACE_NAME
        assert engagement.departments.count() == 4

        assert submitted(Group.LEADERSHIP).count() == 8
        assert set(submitted(Group.LEADERSHIP).values_list("channel", flat=True)) == {Respondent.Channel.WORKSHOP}
        session = WorkshopSession.objects.get(wave__engagement=engagement)
        assert session.status == WorkshopSession.Status.CLOSED
        assert session.respondents.count() == 8

        sheets = Respondent.objects.filter(wave__engagement=engagement, group=Group.STAFF)
        assert sheets.count() == 10
        assert sheets.filter(status=Respondent.Status.DRAFT).count() == 1
        assert set(sheets.values_list("department", flat=True)) == set(
            engagement.departments.values_list("name", flat=True)
        )
        assert all(6 <= sheet.members <= 8 and sheet.group_name for sheet in sheets)

        customers = submitted(Group.CUSTOMER)
        assert customers.count() == 150
        assert customers.filter(channel=Respondent.Channel.OPEN_LINK).count() == demo.CUSTOMERS_OPEN_LINK
        assert set(customers.values_list("department", flat=True)) == set(demo.SEGMENTS)
        invitations = Invitation.objects.filter(wave__engagement=engagement)
        assert invitations.filter(completed_at__isnull=True).count() == demo.INVITATIONS_UNANSWERED
        assert invitations.filter(completed_at__isnull=False).count() == customers.filter(
            channel=Respondent.Channel.INVITATION
        ).count()
        assert all(invitation.name and invitation.segment for invitation in invitations)

        assert "Northwind Fibre" in self.output
        assert "Leaders:   8 submitted" in self.output
        assert "Customers: 150 submitted" in self.output

    def test_every_submitted_respondent_answers_each_question_and_gives_every_rating(self):
        engagement = Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG)
        item_keys = set(engagement.waves.get().rating_items.values_list("key", flat=True))
        respondents = Respondent.objects.filter(
            wave__engagement=engagement, status=Respondent.Status.SUBMITTED
        ).prefetch_related("items", "ratings__item")
        assert respondents.count() == 8 + 9 + 150
        for respondent in respondents:
            per_question = defaultdict(list)
            for item in respondent.items.all():
                per_question[item.question_key].append(item)
                assert tag_fits(item.question_key, item.tag), item
            assert set(per_question) == set(QuestionKey.values), respondent
            assert all(1 <= len(items) <= 4 for items in per_question.values()), respondent
            assert {rating.item.key for rating in respondent.ratings.all()} == item_keys, respondent
            if respondent.group == Group.STAFF:
                for key in item_keys:
                    votes = sum(r.votes for r in respondent.ratings.all() if r.item.key == key)
                    assert votes == respondent.members, (respondent, key)

    def test_leaders_rate_the_experience_far_better_than_customers_and_staff_sit_between(self):
        leader_mean, leader_top = rating_figures(Group.LEADERSHIP, "overall")
        staff_mean, _ = rating_figures(Group.STAFF, "overall")
        customer_mean, customer_top = rating_figures(Group.CUSTOMER, "overall")
        assert leader_top >= 0.7
        assert customer_top <= 0.1
        assert 2.4 <= customer_mean <= 3.1
        assert customer_mean < staff_mean < leader_mean

    def test_what_leaders_call_strengths_customers_list_as_improvements(self):
        for strength, improvement in demo.PLANTED["contradictions"]:
            assert demo.THEMES[strength].question == QuestionKey.STRENGTHS
            assert demo.THEMES[improvement].question == QuestionKey.IMPROVEMENTS
            assert share_mentioning(strength, Group.LEADERSHIP) >= 0.5, strength
            assert share_mentioning(strength, Group.CUSTOMER) < 0.1, strength
            assert share_mentioning(improvement, Group.CUSTOMER) >= 0.3, improvement
            assert share_mentioning(improvement, Group.LEADERSHIP) == 0, improvement

    def test_customers_raise_blind_spots_no_leader_mentions_and_share_some_strengths(self):
        for theme in demo.PLANTED["blind_spots"]:
            assert share_mentioning(theme, Group.CUSTOMER) >= 0.3, theme
            assert share_mentioning(theme, Group.LEADERSHIP) == 0, theme
        for theme in demo.PLANTED["shared_strengths"]:
            assert share_mentioning(theme, Group.LEADERSHIP) >= 0.3, theme
            assert share_mentioning(theme, Group.CUSTOMER) >= 0.3, theme

    def test_staff_raise_internal_issues_and_departments_see_different_things(self):
        for theme in demo.PLANTED["internal_issues"]:
            assert share_mentioning(theme, Group.STAFF) > 0, theme
            assert share_mentioning(theme, Group.CUSTOMER) == 0, theme
        phrases = {key: demo.phrases_of(key, Group.STAFF) for key in demo.THEMES}
        themes_per_department: dict[str, set[str]] = defaultdict(set)
        for department, text in AnswerItem.objects.filter(
            respondent__in=submitted(Group.STAFF), question_key=QuestionKey.IMPROVEMENTS
        ).values_list("respondent__department", "text"):
            themes_per_department[department] |= {key for key, texts in phrases.items() if text in texts}
        assert "handoffs" in themes_per_department["Field Engineering"]
        assert "billing_surprises" in themes_per_department["Billing & Accounts"]
        assert len({frozenset(themes) for themes in themes_per_department.values()}) == 4

    def test_invitations_read_as_sent_a_week_ago_with_their_reminder_and_nothing_left_to_send(self, mailoutbox):
        wave = Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG).waves.get()
        invitations = wave.invitations.all()
        emails = InvitationEmail.objects.filter(invitation__wave=wave)

        assert emails.filter(kind=InvitationEmail.Kind.INVITATION, status=InvitationEmail.Status.SENT).count() == (
            invitations.count()
        )
        assert emails.filter(kind=InvitationEmail.Kind.REMINDER_1).count() == demo.INVITATIONS_UNANSWERED
        assert invitations.filter(started_at__isnull=False, completed_at__isnull=True).count() == (
            demo.INVITATIONS_STARTED_ONLY
        )
        assert invitations.filter(completed_at__isnull=False, started_at__isnull=True).count() == 0
        assert mailing.invitation_reminders_queue() == 0
        assert mailing.invitations_send(wave=wave) == 0
        assert mailoutbox == []

    def test_running_twice_duplicates_nothing(self):
        before = row_counts()
        output = seed()
        assert row_counts() == before
        assert "exists; left as it is" in output
        assert "Customers: 150 submitted" in output

    def test_printed_login_works(self, client):
        login = printed_login(self.output)
        assert login["url"] == "http://127.0.0.1:8000/"
        assert login["username"] == demo.USERNAME
        assert client.login(username=login["username"], password=login["password"])
        user = get_user_model().objects.get(username=demo.USERNAME)
        assert Engagement.objects.filter(slug=demo.ENGAGEMENT_SLUG, workspace__members=user).exists()

    def test_second_run_prints_a_login_that_works_in_place_of_the_first(self, client):
        first = printed_login(self.output)["password"]
        second = printed_login(seed(url="https://demo.example.com/"))
        assert second["url"] == "https://demo.example.com/"
        assert second["password"] != first  # DEBUG is off in tests: a new random password each run
        assert client.login(username=demo.USERNAME, password=second["password"])
        assert not client.login(username=demo.USERNAME, password=first)

    def test_debug_uses_the_documented_password_and_the_option_overrides_it(self, client, settings):
        settings.DEBUG = True
        assert printed_login(seed())["password"] == demo.DEBUG_PASSWORD
        assert client.login(username=demo.USERNAME, password=demo.DEBUG_PASSWORD)
        assert printed_login(seed(password="another-pass"))["password"] == "another-pass"
        assert client.login(username=demo.USERNAME, password="another-pass")

    def test_a_bad_url_is_refused(self):
        with pytest.raises(CommandError, match="--url"):
            seed(url="not a url")


class DemoThemeTableTests:
    def test_every_theme_a_group_may_mention_has_wording_in_that_groups_voice(self):
        subgroups = {Group.LEADERSHIP: [""], Group.STAFF: demo.DEPARTMENTS, Group.CUSTOMER: list(demo.SEGMENTS)}
        for key, theme in demo.THEMES.items():
            assert tag_fits(theme.question, theme.tag), key
            for group, names in subgroups.items():
                if any(demo.chance(key, group, name) > 0 for name in names):
                    assert theme.phrases(group), (key, group)

    def test_each_question_has_something_for_every_group_to_say(self):
        subgroups = {Group.LEADERSHIP: [""], Group.STAFF: demo.DEPARTMENTS, Group.CUSTOMER: list(demo.SEGMENTS)}
        for question in QuestionKey.values:
            for group, names in subgroups.items():
                for name in names:
                    assert any(
                        theme.question == question and theme.phrases(group) and demo.chance(key, group, name) > 0
                        for key, theme in demo.THEMES.items()
                    ), (question, group, name)

    def test_a_wording_belongs_to_one_theme_per_question_so_stored_texts_trace_back(self):
        seen: dict[tuple[str, str], str] = {}
        for key, theme in demo.THEMES.items():
            assert len(set(theme.internal)) == len(theme.internal), key
            assert len(set(theme.customer)) == len(theme.customer), key
            for text in theme.internal + theme.customer:
                owner = seen.setdefault((theme.question, text), key)
                assert owner == key, (text, owner, key)

    def test_overrides_name_known_themes_departments_and_segments(self):
        known = {(Group.STAFF, name) for name in demo.DEPARTMENTS} | {(Group.CUSTOMER, name) for name in demo.SEGMENTS}
        for subgroup, chances in demo.CHANCE_OVERRIDES.items():
            assert subgroup in known, subgroup
            assert set(chances) <= set(demo.THEMES), subgroup
            assert all(0 <= p <= 1 for p in chances.values()), subgroup
