import pytest

from voice.realtime.providers import (
    AZURE_SCOPE,
    EntraTokenSource,
    ProviderConfig,
    ProviderConfigError,
    ProviderKind,
    auth_headers_factory,
    realtime_url,
)


def azure(**kw) -> ProviderConfig:
    return ProviderConfig(
        kind=ProviderKind.AZURE,
        endpoint="https://contoso-jp.openai.azure.com/",
        model="gpt-realtime",
        **{"api_key": "k", **kw},
    )


def test_azure_ga_url_has_model_and_no_api_version():
    url = realtime_url(azure())
    assert url == "wss://contoso-jp.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    assert "api-version" not in url


def test_azure_preview_url():
    config = ProviderConfig(
        kind=ProviderKind.AZURE_PREVIEW,
        endpoint="https://contoso.openai.azure.com",
        model="rt-deploy",
        api_key="k",
    )
    assert realtime_url(config) == (
        "wss://contoso.openai.azure.com/openai/realtime"
        "?api-version=2025-04-01-preview&deployment=rt-deploy"
    )


def test_openai_url():
    config = ProviderConfig(
        kind=ProviderKind.OPENAI,
        endpoint="https://api.openai.com",
        model="gpt-realtime",
        api_key="sk",
    )
    assert realtime_url(config) == "wss://api.openai.com/v1/realtime?model=gpt-realtime"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/realtime?model=koe-local"),
        ("ws://127.0.0.1:8765/v1/realtime", "ws://127.0.0.1:8765/v1/realtime?model=koe-local"),
    ],
)
def test_local_url(endpoint, expected):
    config = ProviderConfig(kind=ProviderKind.LOCAL, endpoint=endpoint, model="koe-local")
    assert realtime_url(config) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": ProviderKind.AZURE, "endpoint": "https://x", "model": "m"}, "api key or Entra"),
        ({"kind": ProviderKind.OPENAI, "endpoint": "https://x", "model": "m"}, "api key"),
        ({"kind": ProviderKind.LOCAL, "endpoint": "", "model": "m"}, "endpoint"),
        ({"kind": ProviderKind.LOCAL, "endpoint": "ws://x", "model": ""}, "model"),
    ],
)
def test_incomplete_provider_settings_are_refused(kwargs, message):
    with pytest.raises(ProviderConfigError, match=message):
        ProviderConfig(**kwargs)


async def test_azure_key_goes_in_the_api_key_header():
    assert await auth_headers_factory(azure(api_key="secret"))() == {"api-key": "secret"}


async def test_openai_key_is_a_bearer_token():
    config = ProviderConfig(
        kind=ProviderKind.OPENAI, endpoint="https://api.openai.com", model="m", api_key="sk-1"
    )
    assert await auth_headers_factory(config)() == {"Authorization": "Bearer sk-1"}


class FakeCredential:
    """Stands in for azure.identity.aio.ManagedIdentityCredential: counts token requests."""

    def __init__(self, lifetime_s: int) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.lifetime = lifetime_s
        self.now = 1_000_000.0
        self.closed = False

    async def get_token(self, *scopes: str):
        from azure.core.credentials import AccessToken

        self.calls.append(scopes)
        return AccessToken(f"token-{len(self.calls)}", int(self.now + self.lifetime))

    async def close(self) -> None:
        self.closed = True


async def test_entra_tokens_are_cached_and_refreshed_before_expiry():
    credential = FakeCredential(lifetime_s=3600)
    source = EntraTokenSource(credential, clock=lambda: credential.now, margin_s=300)
    headers = auth_headers_factory(azure(api_key="", use_entra_id=True), entra=source)

    assert await headers() == {"Authorization": "Bearer token-1"}
    credential.now += 3000  # 10 minutes before expiry: still good
    assert await headers() == {"Authorization": "Bearer token-1"}
    credential.now += 400  # inside the 5-minute margin: refreshed
    assert await headers() == {"Authorization": "Bearer token-2"}
    assert credential.calls == [(AZURE_SCOPE,), (AZURE_SCOPE,)]
    await source.close()
    assert credential.closed


async def test_concurrent_sessions_share_one_token_refresh():
    import asyncio

    credential = FakeCredential(lifetime_s=3600)
    source = EntraTokenSource(credential, clock=lambda: credential.now)
    tokens = await asyncio.gather(*(source.token() for _ in range(20)))
    assert set(tokens) == {"token-1"}
    assert len(credential.calls) == 1
