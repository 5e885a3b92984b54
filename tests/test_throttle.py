"""
Guessing and brute force: wrong public links and workshop codes, and failed
logins, are limited per client; the right link or password from someone else
is never held up.
"""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from surveys import services
from surveys.services import Contact
from tests.surveys.factories import PASSWORD, consultant_create, engagement_create, first_wave

ATTACKER = {"REMOTE_ADDR": "203.0.113.7"}
CUSTOMER = {"REMOTE_ADDR": "198.51.100.20"}


@pytest.fixture
def limits(settings):
    settings.GAPSURVEY_GUESS_LIMIT = 5
    settings.GAPSURVEY_LOGIN_LIMIT = 3
    return settings


@pytest.fixture
def wave(db):
    _user, workspace = consultant_create()
    wave = first_wave(engagement_create(workspace=workspace))
    services.invitations_create(wave=wave, contacts=[Contact(email="ada@example.com", name="Ada", segment="")])
    return wave


class GuessingTests:
    @pytest.mark.parametrize("route", ["customer_answer", "open_answer", "staff_start", "staff_sheet", "leader_answer"])
    def test_wrong_links_from_one_address_get_too_many_tries_then_even_right_ones_wait(self, client, limits, wave, route):
        invitation = wave.invitations.get()
        for n in range(limits.GAPSURVEY_GUESS_LIMIT):
            assert client.get(reverse(f"public:{route}", args=[f"guess{n}"]), **ATTACKER).status_code == 404

        refused = client.get(reverse(f"public:{route}", args=["guess-next"]), **ATTACKER)
        right_link = client.get(reverse("public:customer_answer", args=[invitation.token]), **ATTACKER)

        assert refused.status_code == 429 and refused["Retry-After"]
        assert b"Too many tries" in refused.content
        assert right_link.status_code == 429
        assert client.get(reverse("public:customer_answer", args=[invitation.token]), **CUSTOMER).status_code == 200

    def test_right_links_never_count(self, client, limits, wave):
        url = reverse("public:customer_answer", args=[wave.invitations.get().token])

        statuses = {client.get(url, **CUSTOMER).status_code for _ in range(limits.GAPSURVEY_GUESS_LIMIT * 3)}

        assert statuses == {200}

    def test_wrong_workshop_codes_count_as_guesses(self, client, limits, wave):
        for _ in range(limits.GAPSURVEY_GUESS_LIMIT):
            page = client.post(reverse("public:join"), {"code": "ZZZZZZ"}, **ATTACKER)
            assert page.status_code == 200 and b"No open session has this code" in page.content

        assert client.post(reverse("public:join"), {"code": "ZZZZZZ"}, **ATTACKER).status_code == 429

    def test_behind_a_proxy_the_forwarded_address_is_the_one_counted(self, client, limits, wave):
        limits.USE_X_FORWARDED_FOR = True
        proxy = {"REMOTE_ADDR": "10.0.0.2"}
        for n in range(limits.GAPSURVEY_GUESS_LIMIT):
            client.get(reverse("public:customer_answer", args=[f"g{n}"]), HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)

        url = reverse("public:customer_answer", args=[wave.invitations.get().token])
        assert client.get(url, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 429
        # A client can't dodge the count by sending its own header: the proxy's entry is the last.
        assert client.get(url, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7", **proxy).status_code == 429
        assert client.get(url, HTTP_X_FORWARDED_FOR="198.51.100.20", **proxy).status_code == 200


class LoginTests:
    def login(self, client, password, who=ATTACKER):
        return client.post(reverse("login"), {"username": "consultant", "password": password}, **who)

    def test_after_too_many_failures_even_the_right_password_waits(self, client, limits, wave):
        for _ in range(limits.GAPSURVEY_LOGIN_LIMIT):
            page = self.login(client, "wrong")
            assert page.status_code == 200 and b"Too many failed logins" not in page.content

        refused = self.login(client, PASSWORD, who=CUSTOMER)

        assert b"Too many failed logins" in refused.content
        assert "_auth_user_id" not in client.session

    def test_a_success_clears_the_accounts_failures(self, client, limits, wave):
        for _ in range(limits.GAPSURVEY_LOGIN_LIMIT - 1):
            self.login(client, "wrong")
        assert self.login(client, PASSWORD).status_code == 302
        client.logout()

        for _ in range(limits.GAPSURVEY_LOGIN_LIMIT - 1):
            self.login(client, "wrong")

        assert self.login(client, PASSWORD).status_code == 302

    def test_one_address_trying_many_accounts_is_limited_too(self, client, limits, wave):
        for n in range(limits.GAPSURVEY_LOGIN_LIMIT * 4):
            client.post(reverse("login"), {"username": f"user{n}", "password": "x"}, **ATTACKER)

        refused = self.login(client, PASSWORD)

        assert b"Too many failed logins" in refused.content
        assert self.login(client, PASSWORD, who=CUSTOMER).status_code == 302

    def test_admin_login_is_limited_the_same_way(self, client, limits, wave):
        get_user_model().objects.filter(username="consultant").update(is_staff=True)
        url = reverse("admin:login")
        for _ in range(limits.GAPSURVEY_LOGIN_LIMIT):
            client.post(url, {"username": "consultant", "password": "wrong"}, **ATTACKER)

        refused = client.post(url, {"username": "consultant", "password": PASSWORD}, **CUSTOMER)

        assert b"Too many failed logins" in refused.content
