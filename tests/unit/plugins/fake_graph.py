# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local fake of the Entra token endpoint and the Graph v1.0 calls we use.

It is a small stateful tenant (users, SKUs, devices, device registration
policy) behind a real HTTPS server (pytest-httpserver + a throw-away
certificate), so the code under test runs msal and requests unmodified.
Faults (429 with Retry-After, 5xx, ...) are queued per route; the tenant keeps
every request for assertions.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import ipaddress
import json
import os
import re
import ssl
import uuid
from urllib.parse import parse_qs, urlencode, unquote

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "modules", "fixtures", "graph")

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
CLIENT_SECRET = "Xy8Q~fakeSecretValue.ForTests_9a7b6c5d4e"

ALL_PERMISSIONS = {
    "User.Read.All", "LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All", "User.ReadWrite.All",
    "Device.Read.All", "Policy.Read.DeviceConfiguration", "Policy.ReadWrite.DeviceConfiguration",
}

_MEMBERSHIP_TYPES = (
    "#microsoft.graph.allDeviceRegistrationMembership",
    "#microsoft.graph.enumeratedDeviceRegistrationMembership",
    "#microsoft.graph.noDeviceRegistrationMembership",
)


def load_fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


def make_certificate(common_name, san_ip=None, days=2):
    """(key PEM, cert PEM, cert object) for a self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=days)))
    if san_ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(san_ip))]),
            critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem, cert


def _graph_error(status, code, message):
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": "2026-11-26T18:00:00", "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4())}}}
    return status, body, {"request-id": body["error"]["innerError"]["request-id"]}


class FakeTenant(object):
    """State and routing of the fake; `handle` is the pytest-httpserver handler."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.users = {u["id"]: u for u in load_fixture("users.json")}
        self.skus = load_fixture("subscribed_skus.json")["value"]
        self.devices = load_fixture("devices.json")
        self.policy = load_fixture("device_registration_policy.json")
        self.group_of = {}
        self.permissions = set(ALL_PERMISSIONS)
        self.secret = CLIENT_SECRET
        self.certificates = {}  # sha1 and sha256 thumbprints, hex upper -> cert object
        self.page_size = 2
        self.faults = []  # [method, path regex, (status, body, headers)]
        self.requests = []  # dicts: method, path, query, body, headers, form
        self.tokens = {}

    # -- test controls -----------------------------------------------------
    def fail_next(self, method, path_regex, status, body=None, headers=None, times=1, skip=0):
        """Answer the next matching request(s) with this response; `skip` lets that many through first."""
        for index in range(times):
            self.faults.append([method, re.compile(path_regex), (status, body, headers or {}), skip if index == 0 else 0])

    def calls(self, method=None, path_regex=None):
        return [r for r in self.requests
                if (method is None or r["method"] == method) and (path_regex is None or re.search(path_regex, r["path"]))]

    def add_certificate(self, cert):
        from cryptography.hazmat.primitives import hashes
        self.certificates[cert.fingerprint(hashes.SHA1()).hex().upper()] = cert
        self.certificates[cert.fingerprint(hashes.SHA256()).hex().upper()] = cert
        self.assertion_headers = []

    # -- dispatch --------------------------------------------------------------
    def handle(self, request):
        from werkzeug.wrappers import Response

        body = request.get_data(as_text=True)
        record = {"method": request.method, "path": request.path, "query": request.query_string.decode(),
                  "body": body, "headers": dict(request.headers), "form": dict(request.form)}
        self.requests.append(record)
        status, payload, headers = self._route(request, body)
        text = "" if payload is None else payload if isinstance(payload, str) else json.dumps(payload)
        return Response(text, status=status, headers=headers,
                        content_type="application/json" if text else None)

    def _route(self, request, body):
        for index, (method, regex, response, skip) in enumerate(self.faults):
            if method == request.method and regex.search(request.path):
                if skip:
                    self.faults[index][3] -= 1
                    break
                del self.faults[index]
                status, payload, headers = response
                if payload is None and status >= 400:
                    return _graph_error(status, "TooManyRequests" if status == 429 else "ServiceUnavailable",
                                        "Fake fault %s" % status)[0:2] + (headers,)
                return status, payload, headers
        path = request.path
        if path.startswith("/%s/" % TENANT_ID):
            return self._login(request, path[len(TENANT_ID) + 2:])
        if not path.startswith("/v1.0/"):
            return _graph_error(400, "BadRequest", "Invalid version.")
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token not in self.tokens:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        rest = unquote(path[len("/v1.0/"):])
        query = {k: v[0] for k, v in parse_qs(request.query_string.decode(), keep_blank_values=True).items()}
        return self._graph(request.method, rest, query, body)

    def _need(self, *permissions):
        if not self.permissions.intersection(permissions):
            return _graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        return None

    # -- login.microsoftonline.com -------------------------------------------
    def _login(self, request, rest):
        issuer = "%s/%s/v2.0" % (self.base_url, TENANT_ID)
        if rest == "v2.0/.well-known/openid-configuration" and request.method == "GET":
            return 200, {
                "token_endpoint": "%s/%s/oauth2/v2.0/token" % (self.base_url, TENANT_ID),
                "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (self.base_url, TENANT_ID),
                "issuer": issuer,
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "tenant_region_scope": "EU",
            }, {}
        if rest == "oauth2/v2.0/token" and request.method == "POST":
            form = request.form
            if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID:
                return 400, {"error": "unauthorized_client", "error_description":
                             "AADSTS700016: Application with identifier '%s' was not found in the directory."
                             % form.get("client_id"), "error_codes": [700016]}, {}
            if not form.get("scope", "").endswith("/.default"):
                return 400, {"error": "invalid_scope", "error_codes": [1002012],
                             "error_description": "AADSTS1002012: The provided value for scope is not valid."}, {}
            if "client_secret" in form:
                if form["client_secret"] != self.secret:
                    return 401, {"error": "invalid_client", "error_codes": [7000215], "error_description":
                                 "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
                                 "request is the client secret value, not the client secret ID, for a secret added to "
                                 "app '%s'.\r\nTrace ID: 0d7e1a2b\r\nCorrelation ID: 5f4e3d2c" % CLIENT_ID}, {}
            elif not self._assertion_ok(form.get("client_assertion"), form.get("client_assertion_type")):
                return 401, {"error": "invalid_client", "error_codes": [700027], "error_description":
                             "AADSTS700027: The certificate with identifier used to sign the client assertion is "
                             "not registered on application."}, {}
            token = "eyJ0eXAiOiJKV1Qi.fake.%s" % uuid.uuid4().hex
            self.tokens[token] = True
            return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": token}, {}
        return 404, {"error": "not_found"}, {}

    def _assertion_ok(self, assertion, assertion_type):
        import base64
        import jwt
        if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" or not assertion:
            return False
        header = jwt.get_unverified_header(assertion)
        self.assertion_headers = getattr(self, "assertion_headers", []) + [header]
        # Entra takes the SHA-256 thumbprint (x5t#S256, PS256) or the legacy SHA-1 one (x5t, RS256).
        x5t = header.get("x5t#S256") or header.get("x5t")
        if not x5t:
            return False
        thumb = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex().upper()
        cert = self.certificates.get(thumb)
        if cert is None:
            return False
        try:
            claims = jwt.decode(assertion, cert.public_key(), algorithms=["RS256", "PS256"],
                                audience="%s/%s/oauth2/v2.0/token" % (self.base_url, TENANT_ID))
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == CLIENT_ID and claims.get("sub") == CLIENT_ID

    # -- graph.microsoft.com/v1.0 ----------------------------------------------
    def _find_user(self, key):
        for user in self.users.values():
            if user["id"] == key.lower() or user["userPrincipalName"].lower() == key.lower():
                return user
        return None

    def _graph(self, method, rest, query, body):
        m = re.match(r"^users/([^/]+)(?:/(assignLicense|reprocessLicenseAssignment))?$", rest)
        if m:
            key = m.group(1)
            if key.startswith("('") and key.endswith("')"):
                key = key[2:-2].replace("''", "'")
            user = self._find_user(key)
            action = m.group(2)
            if method == "GET" and not action:
                denied = self._need("User.Read.All", "User.ReadWrite.All")
                if denied:
                    return denied
                if user is None:
                    return _graph_error(404, "Request_ResourceNotFound",
                                        "Resource '%s' does not exist or one of its queried reference-property "
                                        "objects are not present." % key)
                return 200, self._select(user, query), {}
            if method == "POST" and action == "assignLicense":
                denied = self._need("LicenseAssignment.ReadWrite.All", "User.ReadWrite.All")
                if denied:
                    return denied
                if user is None:
                    return _graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist." % key)
                return self._assign_license(user, json.loads(body or "{}"))
            if method == "POST" and action == "reprocessLicenseAssignment":
                denied = self._need("User.ReadWrite.All", "LicenseAssignment.ReadWrite.All")
                if denied:
                    return denied
                if user is None:
                    return _graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist." % key)
                user.setdefault("_reprocessed", 0)
                user["_reprocessed"] += 1
                return 200, self._public(user), {}
        if rest == "subscribedSkus" and method == "GET":
            denied = self._need("LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All")
            if denied:
                return denied
            return 200, {"@odata.context": "%s/v1.0/$metadata#subscribedSkus" % self.base_url,
                         "value": copy.deepcopy(self.skus)}, {}
        if rest == "devices" and method == "GET":
            denied = self._need("Device.Read.All")
            if denied:
                return denied
            return self._list_devices(query)
        if rest == "policies/deviceRegistrationPolicy":
            if method == "GET":
                denied = self._need("Policy.Read.DeviceConfiguration", "Policy.ReadWrite.DeviceConfiguration")
                return denied or (200, copy.deepcopy(self.policy), {})
            if method == "PUT":
                denied = self._need("Policy.ReadWrite.DeviceConfiguration")
                return denied or self._put_policy(json.loads(body or "{}"))
        return _graph_error(400, "BadRequest", "Resource not found for the segment '%s'." % rest.split("/")[0])

    @staticmethod
    def _public(user):
        return {k: copy.deepcopy(v) for k, v in user.items() if not k.startswith("_")}

    def _select(self, user, query):
        data = self._public(user)
        if "$select" in query:
            wanted = query["$select"].split(",")
            data = {k: v for k, v in data.items() if k in wanted}
        else:
            # Like Graph: licenseAssignmentStates and assignedPlans only on $select.
            data.pop("licenseAssignmentStates", None)
            data.pop("assignedPlans", None)
        data["@odata.context"] = "%s/v1.0/$metadata#users(%s)/$entity" % (self.base_url, query.get("$select", ""))
        return data

    def _assign_license(self, user, payload):
        if set(payload) != {"addLicenses", "removeLicenses"}:
            return _graph_error(400, "Request_BadRequest", "Invalid request: addLicenses and removeLicenses are required.")
        skus = {s["skuId"]: s for s in self.skus}
        states = user["licenseAssignmentStates"]
        for sku_id in payload["removeLicenses"]:
            direct = [s for s in states if s["skuId"] == sku_id and not s["assignedByGroup"]]
            by_group = [s for s in states if s["skuId"] == sku_id and s["assignedByGroup"]]
            if not direct and by_group:
                return _graph_error(400, "Request_BadRequest", "User license is inherited from a group membership "
                                    "and it cannot be removed directly from the user.")
            if not direct:
                return _graph_error(400, "Request_BadRequest", "User does not have a corresponding license.")
        for lic in payload["addLicenses"]:
            if lic.get("skuId") not in skus:
                return _graph_error(400, "Request_BadRequest", "License %s does not correspond to a valid company "
                                    "License." % lic.get("skuId"))
            if not user.get("usageLocation"):
                return _graph_error(400, "Request_BadRequest",
                                    "License assignment cannot be done for user with invalid usage location.")
        for sku_id in payload["removeLicenses"]:
            user["licenseAssignmentStates"] = [s for s in user["licenseAssignmentStates"]
                                               if not (s["skuId"] == sku_id and not s["assignedByGroup"])]
            skus[sku_id]["consumedUnits"] -= 1
        for lic in payload["addLicenses"]:
            states = user["licenseAssignmentStates"]
            existing = [s for s in states if s["skuId"] == lic["skuId"] and not s["assignedByGroup"]]
            if existing:
                existing[0]["disabledPlans"] = list(lic.get("disabledPlans") or [])
            else:
                sku = skus[lic["skuId"]]
                if sku["prepaidUnits"]["enabled"] - sku["consumedUnits"] <= 0:
                    return _graph_error(400, "Request_BadRequest", "Subscription %s has no more available licenses."
                                        % lic["skuId"])
                sku["consumedUnits"] += 1
                states.append({"assignedByGroup": None, "disabledPlans": list(lic.get("disabledPlans") or []),
                               "error": "None", "lastUpdatedDateTime": "2026-11-26T18:00:00Z",
                               "skuId": lic["skuId"], "state": "Active"})
        self._recompute(user)
        return 200, self._public(user), {}

    def _recompute(self, user):
        merged = {}
        for state in user["licenseAssignmentStates"]:
            merged.setdefault(state["skuId"], state["disabledPlans"])
        user["assignedLicenses"] = [{"skuId": k, "disabledPlans": v} for k, v in merged.items()]

    def _list_devices(self, query):
        devices = self.devices
        flt = query.get("$filter")
        if flt:
            m = re.match(r"^(deviceId|displayName) eq '((?:[^']|'')*)'$", flt)
            if not m:
                return _graph_error(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause "
                                    "specified for property '%s' of resource 'Device'." % flt.split(" ")[0])
            prop, value = m.group(1), m.group(2).replace("''", "'")
            devices = [d for d in devices if (d.get(prop) or "").lower() == value.lower()]
        skip = int(query.get("$skiptoken", "0"))
        size = int(query.get("$top", self.page_size))
        page = devices[skip:skip + size]
        if "$select" in query:
            wanted = query["$select"].split(",")
            page = [{k: v for k, v in d.items() if k in wanted} for d in page]
        result = {"@odata.context": "%s/v1.0/$metadata#devices" % self.base_url, "value": copy.deepcopy(page)}
        if skip + size < len(devices):
            params = dict(query)
            params["$skiptoken"] = str(skip + size)
            result["@odata.nextLink"] = "%s/v1.0/devices?%s" % (self.base_url, urlencode(params))
        return 200, result, {}

    def _put_policy(self, payload):
        problems = []
        for name in ("userDeviceQuota", "multiFactorAuthConfiguration", "azureADRegistration", "azureADJoin",
                     "localAdminPassword"):
            if name not in payload:
                problems.append(name)
        for read_only in ("id", "displayName", "description"):
            if read_only in payload:
                return _graph_error(400, "Request_BadRequest", "Property '%s' is read-only." % read_only)
        for block, member in (("azureADJoin", "allowedToJoin"), ("azureADRegistration", "allowedToRegister")):
            membership = (payload.get(block) or {}).get(member)
            if membership is not None and membership.get("@odata.type") not in _MEMBERSHIP_TYPES:
                return _graph_error(400, "Request_BadRequest", "Invalid @odata.type for %s." % member)
        # Like the service: what is left out is reset, userDeviceQuota to 0.
        new = copy.deepcopy(payload)
        new.setdefault("userDeviceQuota", 0)
        for key in ("id", "displayName", "description"):
            new[key] = self.policy[key]
        new.pop("@odata.context", None)
        self.policy = new
        self.policy_reset = problems
        return 200, copy.deepcopy(new), {}


@pytest.fixture(scope="session")
def graph_tls(tmp_path_factory):
    """Server certificate for 127.0.0.1 and a CA bundle file trusting it."""
    key_pem, cert_pem, _cert = make_certificate("localhost", san_ip="127.0.0.1")
    folder = tmp_path_factory.mktemp("graph_tls")
    key_file = folder / "server.key"
    cert_file = folder / "server.pem"
    key_file.write_text(key_pem)
    cert_file.write_text(cert_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context, str(cert_file)


@pytest.fixture(scope="session")
def graph_server(graph_tls):
    from pytest_httpserver import HTTPServer
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=graph_tls[0])
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def fake_tenant(graph_server, graph_tls, monkeypatch):
    """A fresh tenant per test; requests trusts the test certificate through REQUESTS_CA_BUNDLE."""
    graph_server.clear()
    base = "https://127.0.0.1:%d" % graph_server.port
    tenant = FakeTenant(base)
    graph_server.expect_request(re.compile(".*")).respond_with_handler(tenant.handle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graph_tls[1])
    for name in ("AZURE_TENANT_ID", "AZURE_TENANT", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_SECRET",
                 "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_AUTHORITY_HOST",
                 "M365OPS_GRAPH_URL", "M365OPS_GRAPH_CLOUD", "M365OPS_GRAPH_TIMEOUT",
                 "AZURE_CLIENT_CERTIFICATE_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    yield tenant
    graph_server.clear()


def auth_params(tenant, **extra):
    """Module/client params pointing at the fake tenant."""
    params = {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "authority_host": tenant.base_url, "graph_url": tenant.base_url,
              # The fake tenant is not one of Microsoft's clouds.
              "allow_custom_endpoints": True}
    params.update(extra)
    return params


@contextlib.contextmanager
def _legacy_module_args(args):
    """ansible-core < 2.19 (no ansible.module_utils.testing): AnsibleModule reads its
    arguments from basic._ANSIBLE_ARGS."""
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes
    args = dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)
    saved = basic._ANSIBLE_ARGS
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = saved


def run_module(main, args, capsys):
    """Run a module's main() in-process; returns (result dict, captured stdout+stderr text)."""
    try:
        from ansible.module_utils import _internal
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core 2.16-2.18
        _internal, patch_module_args = None, _legacy_module_args
    # Once any controller code ran in this process (the action plugin tests), module_utils'
    # warn() goes to the controller's Display instead of the module result (2.19+): run the
    # module as a module, whatever ran before it.
    was_controller = _internal.is_controller if _internal else None
    if _internal:
        _internal.is_controller = False
    try:
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                main()
    finally:
        if _internal:
            _internal.is_controller = was_controller
    captured = capsys.readouterr()
    try:
        return json.loads(captured.out), captured.out + captured.err
    except ValueError:
        raise AssertionError("module printed no JSON: %r %r" % (captured.out, captured.err))
