# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small Microsoft Graph client for the tenant-side modules.

Pure Python (msal + requests, no ansible imports) so that the modules, the
tests and any other controller-side code share one implementation of
authentication, retries, paging and error messages.

Secrets (client secret, certificate password, private key) and access tokens
never leave this module: they are not put in exception messages, results or
logs, and every message built from a server answer is scrubbed of them.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import os
import re
import time
import traceback

from urllib.parse import quote, urlsplit

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

try:
    import msal
    HAS_MSAL = True
    MSAL_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    msal = None
    HAS_MSAL = False
    MSAL_IMPORT_ERROR = traceback.format_exc()


# Public endpoints per cloud: (authority host, Graph base URL).
CLOUDS = {
    "public": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov_dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Auth options shared by every entra_* module. Environment names: the first
# ones are those of the Azure SDKs (azure-identity), the second ones those of
# azure.azcollection, so existing CI/AWX credentials work unchanged.
AUTH_OPTIONS = {
    "tenant_id": {"type": "str", "env": ["AZURE_TENANT_ID", "AZURE_TENANT"]},
    "client_id": {"type": "str", "env": ["AZURE_CLIENT_ID"]},
    "client_secret": {"type": "str", "no_log": True, "env": ["AZURE_CLIENT_SECRET", "AZURE_SECRET"]},
    "client_certificate": {"type": "path", "env": ["AZURE_CLIENT_CERTIFICATE_PATH"]},
    "client_certificate_password": {"type": "str", "no_log": True, "env": ["AZURE_CLIENT_CERTIFICATE_PASSWORD"]},
    "client_certificate_thumbprint": {"type": "str", "env": ["AZURE_CLIENT_CERTIFICATE_THUMBPRINT"]},
    "cloud": {"type": "str", "default": "public", "choices": sorted(CLOUDS), "env": ["M365OPS_GRAPH_CLOUD"]},
    "authority_host": {"type": "str", "env": ["AZURE_AUTHORITY_HOST"]},
    "graph_url": {"type": "str", "env": ["M365OPS_GRAPH_URL"]},
    "graph_timeout": {"type": "int", "default": 300, "env": ["M365OPS_GRAPH_TIMEOUT"]},
    "graph_max_retries": {"type": "int", "default": 6},
}

# Statuses where Graph tells us the request was not processed and asks us to
# come back later: safe to repeat for every method.
THROTTLE_STATUSES = (429, 503, 504)
# Failures where the request may or may not have been applied: repeated only
# for idempotent methods.
TRANSIENT_STATUSES = (500, 502)
IDEMPOTENT_METHODS = ("GET", "PUT", "DELETE", "HEAD")


class GraphError(Exception):
    """A Graph call failed; the message is safe to show (no secrets, no token)."""

    def __init__(self, message, status=None, code=None, request_id=None, method=None, url=None):
        super(GraphError, self).__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url

    def to_result(self):
        """Fields for fail_json: what failed, without any credential."""
        out = {"graph_status": self.status, "graph_error_code": self.code}
        if self.request_id:
            out["graph_request_id"] = self.request_id
        return out


class GraphAuthError(GraphError):
    """Getting a token failed or Graph rejected it (HTTP 401)."""


class GraphConfigError(GraphError):
    """Bad or missing connection parameters; raised before any network call."""


def auth_argument_spec(env_fallback=None):
    """Argument spec for the auth options.

    ``env_fallback`` is ansible's ``env_fallback``; the caller passes it so this
    file stays free of ansible imports while AnsibleModule still learns every
    secret (fallback values get no_log masking like given ones).
    """
    spec = {}
    for name, opt in AUTH_OPTIONS.items():
        entry = {k: v for k, v in opt.items() if k != "env"}
        if env_fallback is not None and opt.get("env"):
            entry["fallback"] = (env_fallback, list(opt["env"]))
        spec[name] = entry
    return spec


def is_guid(value):
    return isinstance(value, str) and bool(GUID_RE.match(value))


def redact(text, secrets):
    """Replace every secret in text; used on anything built from server answers."""
    text = "" if text is None else str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "********")
    return text


def make_finding(finding_id, severity, summary, evidence=None, rung=None):
    """A finding in the shared shape of docs/development.md."""
    if severity not in ("critical", "high", "medium", "low", "info"):
        raise ValueError("severity %r is not one of critical/high/medium/low/info" % (severity,))
    return {"id": finding_id, "severity": severity, "summary": summary,
            "evidence": list(evidence or []), "rung": rung}


def _normalise_base(url, param):
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not parts.netloc:
        raise GraphConfigError("%s must be an https URL with a host name, got %r" % (param, url))
    return url.rstrip("/")


def _read_certificate(path, password, thumbprint):
    """msal's certificate credential from a PEM file holding key and certificate.

    The SHA-1 thumbprint is computed from the certificate when not given: it is
    what the app registration shows and what every msal version accepts.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise GraphConfigError("client_certificate: cannot read %s: %s" % (path, exc.strerror or exc))
    text = data.decode("ascii", "replace")
    key = re.search(r"-----BEGIN (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----.+?-----END (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----",
                    text, re.S)
    cert = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", text, re.S)
    if not key:
        raise GraphConfigError("client_certificate: %s holds no PEM private key (a PFX must be converted: "
                               "openssl pkcs12 -in app.pfx -out app.pem -nodes)" % path)
    # Only key + SHA-1 thumbprint (x5t): sending the certificate itself (x5c)
    # would switch Entra to subject-name/issuer validation, which ordinary app
    # registrations are not set up for.
    credential = {"private_key": key.group(0)}
    if thumbprint:
        thumb = thumbprint.replace(":", "").replace(" ", "").upper()
        if not re.match(r"^[0-9A-F]{40}$", thumb):
            raise GraphConfigError("client_certificate_thumbprint must be 40 hex digits (SHA-1), got %r" % thumbprint)
        credential["thumbprint"] = thumb
    elif cert:
        der = base64.b64decode("".join(cert.group(1).split()))
        credential["thumbprint"] = hashlib.sha1(der).hexdigest().upper()  # nosec: identifier, not security
    else:
        raise GraphConfigError("client_certificate: %s holds no certificate; add it to the PEM file or give "
                               "client_certificate_thumbprint" % path)
    if password:
        credential["passphrase"] = password
    return credential


class GraphSettings(object):
    """Validated connection settings (built before any network traffic)."""

    def __init__(self, tenant_id, client_id, client_secret=None, client_certificate=None,
                 client_certificate_password=None, client_certificate_thumbprint=None,
                 cloud="public", authority_host=None, graph_url=None, graph_timeout=300,
                 graph_max_retries=6):
        if not tenant_id:
            raise GraphConfigError("tenant_id is required (or set AZURE_TENANT_ID)")
        if not (is_guid(tenant_id) or re.match(r"^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}$", tenant_id)):
            raise GraphConfigError("tenant_id must be the tenant GUID or a verified domain name, got %r" % tenant_id)
        if not client_id:
            raise GraphConfigError("client_id is required (or set AZURE_CLIENT_ID)")
        if not is_guid(client_id):
            raise GraphConfigError("client_id must be the application (client) GUID, got %r" % client_id)
        if client_secret and client_certificate:
            raise GraphConfigError("client_secret and client_certificate are mutually exclusive; give one")
        if not client_secret and not client_certificate:
            raise GraphConfigError("one of client_secret or client_certificate is required "
                                   "(or set AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH)")
        if cloud not in CLOUDS:
            raise GraphConfigError("cloud must be one of %s, got %r" % (", ".join(sorted(CLOUDS)), cloud))
        if graph_timeout is None or int(graph_timeout) < 1:
            raise GraphConfigError("graph_timeout must be a positive number of seconds, got %r" % graph_timeout)
        if graph_max_retries is None or int(graph_max_retries) < 0:
            raise GraphConfigError("graph_max_retries must be 0 or more, got %r" % graph_max_retries)
        default_authority, default_graph = CLOUDS[cloud]
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.authority_host = _normalise_base(authority_host or default_authority, "authority_host")
        self.graph_url = _normalise_base(graph_url or default_graph, "graph_url")
        self.timeout = int(graph_timeout)
        self.max_retries = int(graph_max_retries)
        self._secrets = [s for s in (client_secret, client_certificate_password) if s]
        if client_secret:
            self._credential = client_secret
        else:
            self._credential = _read_certificate(client_certificate, client_certificate_password,
                                                 client_certificate_thumbprint)
            self._secrets.append(self._credential["private_key"])

    @classmethod
    def from_params(cls, params, environ=None):
        """From module params; missing values are looked up in the environment too."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, opt in AUTH_OPTIONS.items():
            value = params.get(name)
            if value is None:
                for env in opt.get("env", []):
                    if environ.get(env):
                        value = environ[env]
                        break
            if value is None:
                value = opt.get("default")
            if opt["type"] == "int" and isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise GraphConfigError("%s must be a whole number, got %r" % (name, value))
            values[name] = value
        return cls(**values)

    @property
    def secrets(self):
        return list(self._secrets)

    @property
    def credential(self):
        return self._credential


class GraphClient(object):
    """Graph v1.0 calls with token handling, bounded retries and paging."""

    def __init__(self, settings, api_version="v1.0", session=None, sleep=time.sleep, clock=time.monotonic,
                 request_timeout=60, backoff_base=1.0, backoff_cap=32.0):
        if not HAS_REQUESTS or not HAS_MSAL:
            raise GraphConfigError("the Python libraries msal and requests are required on the controller: %s"
                                   % ", ".join(n for n, ok in (("msal", HAS_MSAL), ("requests", HAS_REQUESTS)) if not ok))
        self.settings = settings
        self.base = "%s/%s" % (settings.graph_url, api_version)
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "m365ops.activation")
        self._sleep = sleep
        self._clock = clock
        self._request_timeout = request_timeout
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._app = None
        self._token = None
        self.requests_made = 0
        self.retries_done = 0

    # -- authentication ---------------------------------------------------
    def _application(self):
        if self._app is None:
            authority = "%s/%s" % (self.settings.authority_host, self.settings.tenant_id)
            try:
                # instance_discovery=False: the authority comes from the operator's
                # configuration; Microsoft's discovery round trip would only add a
                # call to login.microsoftonline.com (wrong for national clouds and
                # air-gapped controllers).
                self._app = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self.settings.credential,
                    authority=authority,
                    instance_discovery=False,
                    timeout=self._request_timeout,
                )
            except ValueError as exc:
                raise GraphAuthError("cannot use authority %s: %s" % (authority, redact(exc, self.settings.secrets)))
            except Exception as exc:  # msal wraps network and key errors in many types
                raise GraphAuthError("cannot initialise the token client for %s (%s): %s"
                                     % (authority, type(exc).__name__, redact(exc, self.settings.secrets)))
        return self._app

    def _access_token(self):
        if self._token is None or self._token[1] - 60 < time.time():
            scope = "%s/.default" % self.settings.graph_url
            try:
                result = self._application().acquire_token_for_client(scopes=[scope])
            except GraphError:
                raise
            except Exception as exc:
                raise GraphAuthError("token request failed (%s): %s"
                                     % (type(exc).__name__, redact(exc, self.settings.secrets)))
            if not result or "access_token" not in result:
                result = result or {}
                code = result.get("error") or "unknown_error"
                desc = (redact(result.get("error_description") or "", self.settings.secrets).splitlines() or [""])[0]
                raise GraphAuthError(
                    "could not get a Graph token for client_id %s in tenant %s: %s: %s. Check tenant_id, "
                    "client_id and the client secret or certificate of the app registration."
                    % (self.settings.client_id, self.settings.tenant_id, code, desc), status=401, code=code)
            self._token = (result["access_token"], time.time() + int(result.get("expires_in") or 3600))
        return self._token[0]

    # -- HTTP -------------------------------------------------------------
    def url(self, path):
        if path.startswith("https://"):
            return path
        return "%s/%s" % (self.base, path.lstrip("/"))

    def _retry_delay(self, response, attempt):
        if response is not None:
            header = response.headers.get("Retry-After")
            if header:
                header = header.strip()
                if header.isdigit():
                    return float(header)
                try:
                    when = email.utils.parsedate_to_datetime(header)
                    return max(0.0, when.timestamp() - time.time())
                except (TypeError, ValueError, IndexError):
                    pass
        return min(self._backoff_cap, self._backoff_base * (2 ** attempt))

    def request(self, method, path, params=None, json_body=None, headers=None, permission=None, what=None):
        """Send one Graph request; returns the decoded JSON body (None when empty).

        permission: the least-privileged application permission this call needs,
        named in the 403 message. what: a description of the addressed object,
        named in the 404 message.
        """
        method = method.upper()
        url = self.url(path)
        start = self._clock()
        attempt = 0
        while True:
            hdrs = {"Authorization": "Bearer %s" % self._access_token(), "Accept": "application/json"}
            hdrs.update(headers or {})
            response = None
            failure = None
            try:
                self.requests_made += 1
                response = self.session.request(method, url, params=params, json=json_body, headers=hdrs,
                                                timeout=self._request_timeout)
            except requests.RequestException as exc:
                failure = "%s: %s" % (type(exc).__name__, redact(exc, self.settings.secrets))
            if response is not None and response.status_code < 400:
                return self._decode(response, method, url)
            retryable = (response is None and method in IDEMPOTENT_METHODS) or (
                response is not None and (response.status_code in THROTTLE_STATUSES or (
                    response.status_code in TRANSIENT_STATUSES and method in IDEMPOTENT_METHODS)))
            if not retryable:
                if response is None:
                    raise GraphError("%s %s failed: %s" % (method, url, failure), method=method, url=url)
                raise self._error(response, method, url, permission, what)
            delay = self._retry_delay(response, attempt)
            elapsed = self._clock() - start
            status_text = failure or "HTTP %s" % response.status_code
            if attempt >= self.settings.max_retries or elapsed + delay > self.settings.timeout:
                raise GraphError(
                    "%s %s still failing after %d attempt(s) in %.0f s (last: %s; next wait %.0f s would pass "
                    "graph_timeout=%d or graph_max_retries=%d). Graph is throttling or unavailable; try later."
                    % (method, url, attempt + 1, elapsed, status_text, delay, self.settings.timeout,
                       self.settings.max_retries),
                    status=None if response is None else response.status_code, method=method, url=url,
                    request_id=None if response is None else response.headers.get("request-id"))
            self.retries_done += 1
            self._sleep(delay)
            attempt += 1

    def _decode(self, response, method, url):
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise GraphError("%s %s returned HTTP %s with a body that is not JSON"
                             % (method, url, response.status_code), status=response.status_code,
                             method=method, url=url)

    def _error(self, response, method, url, permission, what):
        status = response.status_code
        code = message = None
        try:
            body = response.json()
            err = body.get("error") or {}
            code = err.get("code")
            message = err.get("message")
        except (ValueError, AttributeError):
            message = (response.text or "")[:300]
        message = redact(message or response.reason or "", self.settings.secrets)
        request_id = response.headers.get("request-id") or response.headers.get("client-request-id")
        detail = "%s %s: HTTP %s %s: %s" % (method, url, status, code or "", message)
        if request_id:
            detail += " (request-id %s)" % request_id
        if status == 401:
            cls = GraphAuthError
            text = ("Graph rejected the access token (%s). Check tenant_id/client_id/credential and that the "
                    "token is for %s." % (detail, self.settings.graph_url))
        elif status == 403:
            cls = GraphError
            need = permission or "the matching"
            text = ("Graph denied the call (%s). The app registration needs the Microsoft Graph application "
                    "permission %s with admin consent (see docs/graph-permissions.md)." % (detail, need))
        elif status == 404:
            cls = GraphError
            text = "not found: %s (%s)" % (what or url, detail)
        else:
            cls = GraphError
            text = "Graph call failed (%s)" % detail
        return cls(text, status=status, code=code, request_id=request_id, method=method, url=url)

    def get(self, path, params=None, **kwargs):
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path, json_body=None, **kwargs):
        return self.request("POST", path, json_body=json_body, **kwargs)

    def put(self, path, json_body=None, **kwargs):
        return self.request("PUT", path, json_body=json_body, **kwargs)

    def get_all(self, path, params=None, max_pages=1000, **kwargs):
        """Every item of a collection, following @odata.nextLink."""
        items = []
        page = self.get(path, params=params, **kwargs) or {}
        pages = 1
        while True:
            items.extend(page.get("value") or [])
            link = page.get("@odata.nextLink")
            if not link:
                return items
            if pages >= max_pages:
                raise GraphError("%s: more than %d pages; refusing to continue" % (path, max_pages))
            # nextLink carries the query (including $skiptoken) already. It must
            # stay on the Graph host: the bearer token goes wherever it points.
            if urlsplit(link).netloc != urlsplit(self.base).netloc:
                raise GraphError("%s: @odata.nextLink points to another host (%s); refusing to send the token there"
                                 % (path, urlsplit(link).netloc))
            page = self.get(link, **kwargs) or {}
            pages += 1


def user_path(user):
    """Graph path segment for a user given by object id or UPN.

    UPNs of guests contain '#', and a UPN starting with '$' must use the
    key-as-string form, so the value is always percent-encoded.
    """
    if is_guid(user):
        return "users/%s" % user.lower()
    if user.startswith("$"):
        return "users('%s')" % quote(user.replace("'", "''"), safe="@")
    return "users/%s" % quote(user, safe="@")


def odata_quote(value):
    """A string literal for $filter (single quotes doubled, as OData requires)."""
    return "'%s'" % str(value).replace("'", "''")


def missing_libraries():
    return [name for name, ok in (("msal", HAS_MSAL), ("requests", HAS_REQUESTS)) if not ok]


def client_from_params(params, environ=None, **kwargs):
    """Settings + client from module params (env fallbacks applied), no network yet."""
    return GraphClient(GraphSettings.from_params(params, environ=environ), **kwargs)


def run_module(module, run, missing_required_lib):
    """The common body of every entra_* module's main().

    module is an AnsibleModule and missing_required_lib ansible's helper; both
    are passed in so this file keeps no ansible import. run(module, client)
    returns the result dict; it raises ValueError for bad input (before any
    change) and GraphError for failed calls. Every message is scrubbed of the
    secrets, so neither the result nor a traceback can carry them.
    """
    missing = missing_libraries()
    if missing:
        module.fail_json(msg=missing_required_lib(" and ".join(missing)),
                         exception=MSAL_IMPORT_ERROR or REQUESTS_IMPORT_ERROR)
    secrets = [module.params.get(name) for name, opt in AUTH_OPTIONS.items() if opt.get("no_log")]
    result = None
    try:
        client = client_from_params(module.params)
        result = run(module, client)
    except GraphError as exc:
        module.fail_json(msg=redact(exc, secrets), **exc.to_result())
    except ValueError as exc:
        module.fail_json(msg=redact(exc, secrets))
    except Exception as exc:
        module.fail_json(msg="unexpected %s: %s" % (type(exc).__name__, redact(exc, secrets)),
                         exception=redact(traceback.format_exc(), secrets))
    module.exit_json(**result)
