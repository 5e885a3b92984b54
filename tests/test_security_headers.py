"""
The Content Security Policy and the templates it depends on: every page is
served with a policy that allows only this site's scripts and stylesheets, and
no template carries what such a policy would block (inline scripts, inline
event handlers, style attributes or <style> elements).
"""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from surveys import services
from surveys.services import Contact
from tests.surveys.factories import PASSWORD, consultant_create, engagement_create, first_wave

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.I),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.I),
    "style element": re.compile(r"<style\b", re.I),
}


def policy_of(response) -> dict[str, str]:
    directives = (part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    return {name: value[0] if value else "" for name, *value in directives}


class TemplateTests:
    @pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
    def test_template_has_nothing_the_policy_would_block(self, path):
        text = path.read_text()

        found = [name for name, pattern in INLINE.items() if pattern.search(text)]

        assert found == []


@pytest.mark.django_db
class PolicyHeaderTests:
    @pytest.fixture
    def wave(self):
        _user, workspace = consultant_create()
        wave = first_wave(engagement_create(workspace=workspace))
        services.invitations_create(wave=wave, contacts=[Contact(email="ada@example.com", name="Ada", segment="")])
        return wave

    def test_public_consultant_and_login_pages_allow_only_this_sites_scripts_and_styles(self, client, wave):
        invitation = wave.invitations.get()
        pages = [reverse("login"), reverse("public:customer_answer", args=[invitation.token])]
        client.login(username="consultant", password=PASSWORD)
        pages.append(reverse("surveys:wave_detail", args=[wave.engagement.slug, wave.number]))

        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            policy = policy_of(response)
            assert policy["script-src"] == "'self'", url
            assert policy["style-src"] == "'self'", url
            assert "unsafe" not in policy["default-src"] + policy["script-src"] + policy.get("style-src-elem", "")
            assert policy["frame-ancestors"] == "'none'"
            assert response["X-Frame-Options"] == "DENY"
            assert "camera=()" in response["Permissions-Policy"]

    def test_email_preview_frame_is_sandboxed_and_framed_only_by_this_site(self, client, wave):
        client.login(username="consultant", password=PASSWORD)

        response = client.get(reverse("surveys:invitation_email_html", args=[wave.engagement.slug, wave.number]))

        assert response.status_code == 200
        assert b"Hello Ada," in response.content
        policy = policy_of(response)
        assert policy["default-src"] == "'none'"
        assert "sandbox" in policy
        assert policy["frame-ancestors"] == "'self'"
        assert response["X-Frame-Options"] == "SAMEORIGIN"
