"""How an Entra identity becomes a Koe user, and who may sign up."""

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


def test_missing_email_is_taken_from_preferred_username(entra_sign_in):
    entra_sign_in(
        Client(),
        oid="33333333-3333-3333-3333-333333333333",
        preferred_username="Ken.Sato@Contoso.co.jp",
        roles=["Koe.Employee"],
    )
    user = SocialAccount.objects.get(uid="33333333-3333-3333-3333-333333333333").user
    assert user.email == "ken.sato@contoso.co.jp"


def test_email_claim_wins_over_preferred_username(entra_sign_in):
    entra_sign_in(
        Client(),
        oid="66666666-6666-6666-6666-666666666666",
        preferred_username="k.sato@contoso.onmicrosoft.com",
        email="ken.sato@contoso.co.jp",
        roles=["Koe.Employee"],
    )
    user = SocialAccount.objects.get(uid="66666666-6666-6666-6666-666666666666").user
    assert user.email == "ken.sato@contoso.co.jp"


def test_guest_upn_is_not_taken_for_an_email_address(entra_sign_in):
    entra_sign_in(
        Client(),
        oid="77777777-7777-7777-7777-777777777777",
        preferred_username="alice_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        roles=["Koe.Employee"],
    )
    user = SocialAccount.objects.get(uid="77777777-7777-7777-7777-777777777777").user
    assert user.email == ""


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
