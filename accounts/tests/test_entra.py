import json

import pytest

from accounts.entra import (
    DEFAULT_ROLE_MAP,
    RoleMapError,
    entra_role_map_parse,
    entra_socialaccount_providers,
)


def test_empty_role_map_means_the_defaults():
    assert entra_role_map_parse("") == DEFAULT_ROLE_MAP
    assert DEFAULT_ROLE_MAP["Koe.KnowledgeAdmin"] == "knowledge_admin"


def test_custom_role_map_is_accepted():
    raw = json.dumps({"Contoso.Koe.User": "employee", "Contoso.Audit": "auditor"})
    assert entra_role_map_parse(raw) == {"Contoso.Koe.User": "employee", "Contoso.Audit": "auditor"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["employee"]', "JSON object of strings"),
        ('{"Koe.Employee": 1}', "JSON object of strings"),
        ('{"Koe.Admin": "knowledge-admin"}', "unknown Koe roles ['knowledge-admin']"),
    ],
)
def test_bad_role_map_is_refused_with_a_clear_message(raw, message):
    with pytest.raises(RoleMapError, match=message.replace("[", r"\[").replace("]", r"\]")):
        entra_role_map_parse(raw)


def test_provider_settings_follow_the_tenant():
    providers = entra_socialaccount_providers(
        authority="https://login.microsoftonline.us/",
        tenant_id="t-1",
        client_id="c-1",
        client_secret="s-1",
    )["openid_connect"]
    assert providers["OAUTH_PKCE_ENABLED"] is True
    (app,) = providers["APPS"]
    assert app["settings"]["server_url"] == "https://login.microsoftonline.us/t-1/v2.0"
    assert app["settings"]["fetch_userinfo"] is False
    assert app["settings"]["uid_field"] == "oid"


def test_no_app_without_all_three_values():
    providers = entra_socialaccount_providers(
        authority="https://login.microsoftonline.com",
        tenant_id="t",
        client_id="c",
        client_secret="",
    )
    assert providers["openid_connect"]["APPS"] == []
