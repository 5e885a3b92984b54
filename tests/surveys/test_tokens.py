"""
Public tokens: at least 128 bits of randomness, looked up by a digest the
database computes and compared in constant time (surveys.selectors._by_token).
"""

import base64
import hashlib

import pytest
from django.urls import reverse

from surveys import services
from surveys.models import Invitation, Respondent, Wave, new_token
from surveys.services import Contact
from tests.surveys.factories import answer_post_data, consultant_create, engagement_create, first_wave, sheet_details


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class TokenTests:
    def test_tokens_carry_256_random_bits_and_never_repeat(self):
        tokens = [new_token() for _ in range(2000)]

        assert len(set(tokens)) == len(tokens)
        assert {len(base64.urlsafe_b64decode(t + "=")) for t in tokens} == {32}

    @pytest.mark.django_db
    def test_every_public_token_has_its_digest_stored_and_a_near_miss_is_404(self, client):
        _user, workspace = consultant_create()
        wave = first_wave(engagement_create(workspace=workspace))
        services.invitations_create(wave=wave, contacts=[Contact(email="ada@example.com", name="Ada", segment="")])
        client.post(
            reverse("public:staff_start", args=[wave.staff_token]),
            answer_post_data(wave, extra={**sheet_details(), "save_draft": "1"}),
        )
        wave = Wave.objects.get(pk=wave.pk)
        invitation = Invitation.objects.get()
        draft = Respondent.objects.exclude(edit_token=None).get()

        stored = [
            (wave.staff_token, wave.staff_token_digest, "public:staff_start"),
            (wave.open_link_token, wave.open_link_token_digest, "public:open_answer"),
            (invitation.token, invitation.token_digest, "public:customer_answer"),
            (draft.edit_token, draft.edit_token_digest, "public:staff_sheet"),
        ]
        for token, digest, route in stored:
            assert digest == sha256(token)
            assert client.get(reverse(route, args=[token])).status_code == 200
            near_miss = token[:-1] + ("A" if token[-1] != "A" else "B")
            assert client.get(reverse(route, args=[near_miss])).status_code == 404
