from collections.abc import Iterator

import pytest
from django.test import Client

from accounts.entra import entra_socialaccount_providers
from accounts.tests.fake_entra import FakeEntra


@pytest.fixture
def fake_entra(settings) -> Iterator[FakeEntra]:
    """A fake Entra tenant on 127.0.0.1, with Koe's settings pointing at it."""
    fake = FakeEntra().start()
    settings.ENTRA_ENABLED = True
    settings.ENTRA_AUTHORITY = fake.authority
    settings.SOCIALACCOUNT_PROVIDERS = entra_socialaccount_providers(
        authority=fake.authority,
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
    )
    yield fake
    fake.stop()


@pytest.fixture
def entra_sign_in(fake_entra: FakeEntra):
    """Run the whole browser round trip of an Entra sign-in; return the final response."""
    import requests

    def sign_in(client: Client, **claims):
        fake_entra.sign_in_as(**claims)
        start = client.post("/accounts/oidc/entra/login/", {"process": "login"})
        assert start.status_code == 302, start.content
        authorize_url = start["Location"]
        assert authorize_url.startswith(fake_entra.authority)
        # The "browser" visits Entra, which consents at once and sends it back with a code.
        at_entra = requests.get(authorize_url, allow_redirects=False, timeout=10)
        assert at_entra.status_code == 302, at_entra.text
        callback = at_entra.headers["Location"]
        assert callback.startswith("http://testserver/accounts/oidc/entra/login/callback/")
        return client.get(callback.removeprefix("http://testserver"), follow=True)

    return sign_in
