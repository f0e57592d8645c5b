"""How an Entra identity becomes a Koe user, and who may sign up."""

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("upn", "email_claim", "expected"),
    [
        # Entra id_tokens often lack `email`: the UPN is the work address.
        ("Ken.Sato@Contoso.co.jp", None, "ken.sato@contoso.co.jp"),
        # When the claim is there it wins.
        ("k.sato@contoso.onmicrosoft.com", "ken.sato@contoso.co.jp", "ken.sato@contoso.co.jp"),
        # A guest's UPN is no mailbox.
        ("alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", None, ""),
    ],
    ids=["upn", "email-claim", "guest"],
)
def test_email_address_of_an_entra_user(entra_sign_in, upn, email_claim, expected):
    oid = "33333333-3333-3333-3333-333333333333"
    entra_sign_in(
        Client(), oid=oid, preferred_username=upn, email=email_claim, roles=["Koe.Employee"]
    )
    assert SocialAccount.objects.get(uid=oid).user.email == expected


def test_nobody_can_sign_up_locally():
    Client().post(
        "/accounts/signup/",
        {
            "username": "mallory",
            "password1": "x-Very-long-pass-1",
            "password2": "x-Very-long-pass-1",
        },
    )
    assert not get_user_model().objects.filter(username="mallory").exists()
