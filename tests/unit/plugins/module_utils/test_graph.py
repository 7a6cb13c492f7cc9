# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.m365ops.activation.plugins.module_utils import graph
# The fixtures are used by name as test arguments, which linters do not see.
# pylint: disable=unused-import
from ansible_collections.m365ops.activation.tests.unit.plugins.fake_graph import (  # noqa: F401
    CLIENT_ID, CLIENT_SECRET, TENANT_ID, auth_params, fake_tenant, graph_server, graph_tls, make_certificate,
)
# pylint: enable=unused-import


class Clock(object):
    """Time that only moves when the client sleeps: retries are checked without waiting."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def client_for(tenant, clock=None, **extra):
    clock = clock or Clock()
    return graph.client_from_params(auth_params(tenant, **extra), environ={}, sleep=clock.sleep, clock=clock)


# -- settings ---------------------------------------------------------------

def test_settings_from_environment_azure_sdk_names():
    env = {"AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": "s3cret-value"}
    settings = graph.GraphSettings.from_params({}, environ=env)
    assert settings.tenant_id == TENANT_ID
    assert settings.credential == "s3cret-value"
    assert settings.graph_url == "https://graph.microsoft.com"
    assert settings.authority_host == "https://login.microsoftonline.com"


def test_settings_from_environment_azcollection_names_and_cloud():
    env = {"AZURE_TENANT": "contoso.onmicrosoft.com", "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_SECRET": "abcd1234"}
    settings = graph.GraphSettings.from_params({"cloud": "usgov"}, environ=env)
    assert settings.tenant_id == "contoso.onmicrosoft.com"
    assert settings.graph_url == "https://graph.microsoft.us"
    assert settings.authority_host == "https://login.microsoftonline.us"


def test_explicit_params_win_over_environment():
    env = {"AZURE_TENANT_ID": "contoso.com", "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": "from-env"}
    settings = graph.GraphSettings.from_params({"client_secret": "from-param"}, environ=env)
    assert settings.credential == "from-param"


@pytest.mark.parametrize("params, needle", [
    ({"client_id": CLIENT_ID, "client_secret": "x"}, "tenant_id is required"),
    ({"tenant_id": TENANT_ID, "client_secret": "x"}, "client_id is required"),
    ({"tenant_id": TENANT_ID, "client_id": "not-a-guid", "client_secret": "x"}, "client_id must be"),
    ({"tenant_id": "bad tenant!", "client_id": CLIENT_ID, "client_secret": "x"}, "tenant_id must be"),
    ({"tenant_id": TENANT_ID, "client_id": CLIENT_ID}, "one of client_secret or client_certificate"),
    ({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": "x", "client_certificate": "/x.pem"},
     "mutually exclusive"),
    ({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": "x", "graph_url": "http://graph.local"},
     "graph_url must be an https URL"),
    ({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": "x", "cloud": "mars"}, "cloud must be one of"),
    ({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": "x", "graph_timeout": 0}, "graph_timeout"),
    ({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_certificate": "/nonexistent/app.pem"},
     "client_certificate: cannot read"),
])
def test_bad_settings_name_the_parameter(params, needle):
    with pytest.raises(graph.GraphConfigError) as err:
        graph.GraphSettings.from_params(params, environ={})
    assert needle in str(err.value)


def test_auth_argument_spec_carries_env_fallback_and_no_log():
    def marker(*names):
        return names
    spec = graph.auth_argument_spec(marker)
    assert spec["client_secret"]["no_log"] is True
    assert spec["client_certificate_password"]["no_log"] is True
    assert spec["tenant_id"]["fallback"] == (marker, ["AZURE_TENANT_ID", "AZURE_TENANT"])
    assert spec["client_secret"]["fallback"][1] == ["AZURE_CLIENT_SECRET", "AZURE_SECRET"]
    assert "env" not in spec["client_id"]
    assert "fallback" not in graph.auth_argument_spec()["client_id"]


def test_certificate_without_cert_block_and_without_thumbprint_is_refused(tmp_path):
    key_pem, _cert_pem, _cert = make_certificate("app")
    path = tmp_path / "key-only.pem"
    path.write_text(key_pem)
    with pytest.raises(graph.GraphConfigError) as err:
        graph.GraphSettings(TENANT_ID, CLIENT_ID, client_certificate=str(path))
    assert "client_certificate_thumbprint" in str(err.value)
    assert key_pem.splitlines()[1] not in str(err.value)


def test_user_path_encodes_guest_upns_and_dollar_names():
    assert graph.user_path("4A6E2B1C-0D3F-4E5A-9B8C-7D6E5F4A3B21") == "users/4a6e2b1c-0d3f-4e5a-9b8c-7d6e5f4a3b21"
    assert graph.user_path("bob_fabrikam.com#EXT#@contoso.onmicrosoft.com") == \
        "users/bob_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
    assert graph.user_path("$svc@contoso.com") == "users('%24svc@contoso.com')"
    assert graph.odata_quote("O'Brien") == "'O''Brien'"


# -- against the fake Graph ---------------------------------------------------

def test_secret_auth_get_and_bearer_token(fake_tenant):
    client = client_for(fake_tenant)
    policy = client.get("policies/deviceRegistrationPolicy")
    assert policy["userDeviceQuota"] == 20
    token_calls = fake_tenant.calls("POST", r"/oauth2/v2.0/token$")
    assert len(token_calls) == 1
    assert token_calls[0]["form"]["scope"] == "%s/.default" % fake_tenant.base_url
    graph_call = fake_tenant.calls("GET", r"^/v1.0/policies/")[0]
    assert graph_call["headers"]["Authorization"].startswith("Bearer eyJ0eXAiOiJKV1Qi.fake.")
    # the token is reused, not fetched per request
    client.get("policies/deviceRegistrationPolicy")
    assert len(fake_tenant.calls("POST", r"/oauth2/v2.0/token$")) == 1


def test_certificate_auth_signs_assertion_with_sha256_thumbprint(fake_tenant, tmp_path):
    key_pem, cert_pem, cert = make_certificate("m365ops-app")
    fake_tenant.add_certificate(cert)
    pem = tmp_path / "app.pem"
    pem.write_text(key_pem + cert_pem)
    client = graph.client_from_params(
        {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_certificate": str(pem),
         "authority_host": fake_tenant.base_url, "graph_url": fake_tenant.base_url,
         "allow_custom_endpoints": True}, environ={})
    assert client.get("subscribedSkus")["value"][0]["skuPartNumber"] == "ENTERPRISEPREMIUM"
    form = fake_tenant.calls("POST", r"/oauth2/v2.0/token$")[0]["form"]
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    # msal's own certificate input (key + public_certificate): SHA-256 thumbprint, PS256.
    header = fake_tenant.assertion_headers[-1]
    assert header["alg"] == "PS256" and "x5t#S256" in header and "x5t" not in header


def test_encrypted_key_with_password_from_environment(fake_tenant, tmp_path):
    from cryptography.hazmat.primitives import serialization
    key_pem, cert_pem, cert = make_certificate("m365ops-app-enc")
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"pfx-pass-123")).decode()
    assert "ENCRYPTED PRIVATE KEY" in encrypted
    fake_tenant.add_certificate(cert)
    pem = tmp_path / "enc.pem"
    pem.write_text(encrypted + cert_pem)
    env = {"AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_CERTIFICATE_PATH": str(pem),
           "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pfx-pass-123", "AZURE_AUTHORITY_HOST": fake_tenant.base_url,
           "M365OPS_GRAPH_URL": fake_tenant.base_url, "M365OPS_GRAPH_TIMEOUT": "45"}
    client = graph.client_from_params({"allow_custom_endpoints": True}, environ=env)
    assert client.settings.timeout == 45
    assert client.get("policies/deviceRegistrationPolicy")["id"] == "deviceRegistrationPolicy"
    assert "pfx-pass-123" in client.settings.secrets


def test_non_numeric_timeout_from_environment_names_it():
    env = {"AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": "abcd1234",
           "M365OPS_GRAPH_TIMEOUT": "five minutes"}
    with pytest.raises(graph.GraphConfigError) as err:
        graph.GraphSettings.from_params({}, environ=env)
    assert "graph_timeout must be a whole number" in str(err.value)


def test_unregistered_certificate_is_a_clear_auth_error(fake_tenant, tmp_path):
    key_pem, cert_pem, _cert = make_certificate("not-registered")
    pem = tmp_path / "other.pem"
    pem.write_text(cert_pem + key_pem)
    client = graph.client_from_params(
        {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_certificate": str(pem),
         "authority_host": fake_tenant.base_url, "graph_url": fake_tenant.base_url,
         "allow_custom_endpoints": True}, environ={})
    with pytest.raises(graph.GraphAuthError) as err:
        client.get("subscribedSkus")
    assert "AADSTS700027" in str(err.value)
    assert "BEGIN" not in str(err.value)


def test_wrong_secret_gives_credentials_message_without_secret(fake_tenant):
    wrong = "Wr0ng~SecretValue_that_must_not_leak"
    client = client_for(fake_tenant, client_secret=wrong)
    with pytest.raises(graph.GraphAuthError) as err:
        client.get("policies/deviceRegistrationPolicy")
    text = str(err.value)
    assert "invalid_client" in text and "AADSTS7000215" in text
    assert "client secret or certificate" in text
    assert "Trace ID" not in text and "\r" not in text  # first line of AAD's description only
    assert wrong not in text and CLIENT_SECRET not in text
    assert not fake_tenant.calls("GET", r"^/v1.0/")


def test_401_from_graph_names_credentials(fake_tenant):
    client = client_for(fake_tenant)
    client.get("subscribedSkus")
    fake_tenant.tokens.clear()  # e.g. token revoked / wrong audience
    with pytest.raises(graph.GraphAuthError) as err:
        client.get("subscribedSkus")
    assert err.value.status == 401
    assert "InvalidAuthenticationToken" in str(err.value)
    assert "Check tenant_id/client_id/credential" in str(err.value)


def test_403_names_the_permission(fake_tenant):
    fake_tenant.permissions.discard("Device.Read.All")
    client = client_for(fake_tenant)
    with pytest.raises(graph.GraphError) as err:
        client.get_all("devices", permission="Device.Read.All")
    assert err.value.status == 403
    assert "Authorization_RequestDenied" in str(err.value)
    assert "application permission Device.Read.All" in str(err.value)
    assert err.value.request_id


def test_404_names_what_was_not_found(fake_tenant):
    client = client_for(fake_tenant)
    with pytest.raises(graph.GraphError) as err:
        client.get(graph.user_path("nobody@contoso.com"), what="user nobody@contoso.com")
    assert err.value.status == 404
    assert str(err.value).startswith("not found: user nobody@contoso.com")
    assert "Request_ResourceNotFound" in str(err.value)


def test_429_honours_retry_after_then_succeeds(fake_tenant):
    fake_tenant.fail_next("GET", r"^/v1.0/subscribedSkus$", 429, headers={"Retry-After": "7"})
    fake_tenant.fail_next("GET", r"^/v1.0/subscribedSkus$", 503, headers={"Retry-After": "2"})
    clock = Clock()
    client = client_for(fake_tenant, clock=clock)
    skus = client.get_all("subscribedSkus")
    assert len(skus) == 3
    assert clock.sleeps == [7.0, 2.0]
    assert len(fake_tenant.calls("GET", r"^/v1.0/subscribedSkus$")) == 3


def test_retry_after_http_date_is_understood(fake_tenant):
    import email.utils
    import time
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake_tenant.fail_next("GET", r"^/v1.0/subscribedSkus$", 429, headers={"Retry-After": when})
    clock = Clock()
    client_for(fake_tenant, clock=clock).get("subscribedSkus")
    assert len(clock.sleeps) == 1 and 25 <= clock.sleeps[0] <= 31


def test_500_without_retry_after_uses_exponential_backoff(fake_tenant):
    fake_tenant.fail_next("GET", r"^/v1.0/devices$", 500, times=3)
    clock = Clock()
    client = client_for(fake_tenant, clock=clock)
    assert client.get_all("devices", params={"$top": "10"})
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_500_on_post_is_not_repeated(fake_tenant):
    fake_tenant.fail_next("POST", r"/assignLicense$", 500)
    clock = Clock()
    client = client_for(fake_tenant, clock=clock)
    with pytest.raises(graph.GraphError) as err:
        client.post("users/alice@contoso.com/assignLicense", {"addLicenses": [], "removeLicenses": []})
    assert err.value.status == 500
    assert clock.sleeps == []
    assert len(fake_tenant.calls("POST", r"/assignLicense$")) == 1


def test_total_time_cap_stops_retrying(fake_tenant):
    fake_tenant.fail_next("GET", r"^/v1.0/subscribedSkus$", 429, headers={"Retry-After": "40"}, times=10)
    clock = Clock()
    client = client_for(fake_tenant, clock=clock, graph_timeout=100)
    with pytest.raises(graph.GraphError) as err:
        client.get("subscribedSkus")
    assert clock.sleeps == [40.0, 40.0]  # a third wait would pass 100 s
    assert "graph_timeout=100" in str(err.value)
    assert err.value.status == 429


def test_max_retries_bound(fake_tenant):
    fake_tenant.fail_next("GET", r"^/v1.0/subscribedSkus$", 503, times=10)
    clock = Clock()
    client = client_for(fake_tenant, clock=clock, graph_max_retries=2)
    with pytest.raises(graph.GraphError):
        client.get("subscribedSkus")
    assert len(fake_tenant.calls("GET", r"^/v1.0/subscribedSkus$")) == 3


def test_paging_follows_next_link(fake_tenant):
    fake_tenant.page_size = 2
    client = client_for(fake_tenant)
    devices = client.get_all("devices")
    assert [d["displayName"] for d in devices] == ["PC042", "PC043", "PC044", "PC044", "PC044"]
    pages = fake_tenant.calls("GET", r"^/v1.0/devices$")
    assert len(pages) == 3
    assert "%24skiptoken=2" in pages[1]["query"] or "$skiptoken=2" in pages[1]["query"]


def test_next_link_to_another_host_is_refused(fake_tenant):
    client = client_for(fake_tenant)
    fake_tenant.fail_next("GET", r"^/v1.0/devices$", 200, body={
        "value": [{"id": "x"}], "@odata.nextLink": "https://evil.example/v1.0/devices?$skiptoken=1"})
    with pytest.raises(graph.GraphError) as err:
        client.get_all("devices")
    assert "another host" in str(err.value)


def test_non_json_body_is_an_error(fake_tenant):
    fake_tenant.fail_next("GET", r"^/v1.0/subscribedSkus$", 200, body="<html>proxy login</html>")
    client = client_for(fake_tenant)
    with pytest.raises(graph.GraphError) as err:
        client.get("subscribedSkus")
    assert "not JSON" in str(err.value)


def test_redact_and_make_finding():
    assert graph.redact("token abcd1234 here", ["abcd1234"]) == "token ******** here"
    finding = graph.make_finding("license_missing", "high", "No license.", ["a"], "check_license")
    assert json.loads(json.dumps(finding)) == {"id": "license_missing", "severity": "high", "summary": "No license.",
                                               "evidence": ["a"], "rung": "check_license"}
    with pytest.raises(ValueError):
        graph.make_finding("x", "urgent", "bad")


def test_pfx_is_handed_to_msal_as_a_pfx(fake_tenant, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    key_pem, _cert_pem, cert = make_certificate("m365ops-pfx")
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"app", key, cert, None,
                                                          serialization.BestAvailableEncryption(b"pfx-pw")))
    fake_tenant.add_certificate(cert)
    settings = graph.GraphSettings(TENANT_ID, CLIENT_ID, client_certificate=str(pfx), client_certificate_password="pfx-pw",
                                   authority_host=fake_tenant.base_url, graph_url=fake_tenant.base_url,
                                   allow_custom_endpoints=True)
    assert settings.credential == {"private_key_pfx_path": str(pfx), "passphrase": "pfx-pw"}
    client = graph.GraphClient(settings)
    assert client.get("subscribedSkus")["value"]
    assert fake_tenant.assertion_headers[-1]["alg"] == "PS256"


@pytest.mark.parametrize("env_name, param", [("AZURE_AUTHORITY_HOST", "authority_host"), ("M365OPS_GRAPH_URL", "graph_url")])
def test_endpoint_outside_microsoft_clouds_needs_the_opt_in(env_name, param):
    env = {"AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": "s3cr3t-value",
           env_name: "https://collector.example.net"}
    with pytest.raises(graph.GraphConfigError) as err:
        graph.GraphSettings.from_params({}, environ=env)
    assert param in str(err.value) and "allow_custom_endpoints" in str(err.value)
    assert "s3cr3t-value" not in str(err.value)
    # No environment variable can give the opt-in; only the option itself.
    assert "env" not in graph.AUTH_OPTIONS["allow_custom_endpoints"]
    assert graph.GraphSettings.from_params({"allow_custom_endpoints": True}, environ=env)


@pytest.mark.parametrize("cloud", sorted(graph.CLOUDS))
def test_every_known_cloud_is_allowed_explicitly(cloud):
    authority, graph_url = graph.CLOUDS[cloud]
    settings = graph.GraphSettings(TENANT_ID, CLIENT_ID, client_secret="x", authority_host=authority + "/",
                                   graph_url=graph_url)
    assert (settings.authority_host, settings.graph_url) == (authority, graph_url)


def test_retries_are_urllib3_retry_through_the_session_adapter(fake_tenant):
    from urllib3.util.retry import Retry
    client = client_for(fake_tenant)
    retry = client.session.get_adapter("https://graph.microsoft.com").max_retries
    assert isinstance(retry, Retry) and retry.respect_retry_after_header
    assert set(retry.status_forcelist) == {429, 500, 502, 503, 504}
