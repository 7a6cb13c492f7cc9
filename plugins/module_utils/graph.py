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

import os
import re
import time
import traceback

from urllib.parse import quote, urlsplit

# Each library's import traceback, for missing_required_lib's report; empty when both import.
IMPORT_ERRORS = {}
try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    requests = None
    HTTPAdapter = Retry = object
    IMPORT_ERRORS["requests"] = traceback.format_exc()
try:
    import msal
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    msal = None
    IMPORT_ERRORS["msal"] = traceback.format_exc()


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
    # No environment variable on purpose: an environment alone must never be able to send
    # the client secret or a token to a host outside Microsoft's clouds.
    "allow_custom_endpoints": {"type": "bool", "default": False},
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


# The sign-in and Graph hosts of Microsoft's clouds (global, US Government, China): the only
# ones authority_host / graph_url may name unless allow_custom_endpoints is set.
KNOWN_AUTHORITY_HOSTS = frozenset(urlsplit(a).netloc for a, _g in CLOUDS.values())
KNOWN_GRAPH_HOSTS = frozenset(urlsplit(g).netloc for _a, g in CLOUDS.values())


def _normalise_base(url, param, known_hosts=None, allow_custom=False):
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not parts.netloc:
        raise GraphConfigError("%s must be an https URL with a host name, got %r" % (param, url))
    if known_hosts is not None and not allow_custom and (parts.hostname or "").lower() not in known_hosts:
        raise GraphConfigError(
            "%s: %s is not an endpoint of Microsoft's clouds (%s); the client secret or certificate "
            "assertion and the tokens would go there. Set allow_custom_endpoints=true (a module option; "
            "no environment variable sets it) only for a test or proxy endpoint you control"
            % (param, parts.netloc, ", ".join(sorted(known_hosts))))
    return url.rstrip("/")


def _read_certificate(path, password, thumbprint):
    """msal's own certificate credential for ``path``.

    - a PKCS#12 file (.pfx / .p12): handed to msal as it is (``private_key_pfx_path``);
      msal signs with the certificate's SHA-256 thumbprint;
    - a PEM file with the private key and the certificate: read with cryptography (which
      msal itself requires) and handed over as key + ``public_certificate``, from which msal
      computes the SHA-256 thumbprint;
    - a PEM file with a key only: the legacy SHA-1 form, with ``client_certificate_thumbprint``
      (what older app registrations and ADFS show).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise GraphConfigError("client_certificate: cannot read %s: %s" % (path, exc.strerror or exc))
    if path.lower().endswith((".pfx", ".p12")):
        credential = {"private_key_pfx_path": path}
        if password:
            credential["passphrase"] = password
        return credential, None
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - msal requires cryptography
        raise GraphConfigError("client_certificate: the Python library cryptography is required for certificates")
    try:
        key = serialization.load_pem_private_key(data, password.encode("utf-8") if password else None)
    except TypeError as exc:
        raise GraphConfigError("client_certificate: %s: %s (client_certificate_password)" % (path, exc))
    except ValueError:
        raise GraphConfigError("client_certificate: %s holds no PEM private key that can be read%s (a PFX is "
                               "read as such when its name ends in .pfx or .p12)"
                               % (path, " with the password given" if password else ""))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    mine = [c for c in certificates if c.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public]
    if mine:
        cert_pem = mine[0].public_bytes(serialization.Encoding.PEM).decode("ascii")
        return {"private_key": key_pem, "public_certificate": cert_pem}, key_pem
    if not thumbprint:
        raise GraphConfigError("client_certificate: %s holds no certificate for its private key; add the "
                               "certificate to the PEM file, use a .pfx, or give client_certificate_thumbprint"
                               % path)
    thumb = thumbprint.replace(":", "").replace(" ", "").upper()
    if not re.match(r"^[0-9A-F]{40}$", thumb):
        raise GraphConfigError("client_certificate_thumbprint must be 40 hex digits (SHA-1), got %r" % thumbprint)
    return {"private_key": key_pem, "thumbprint": thumb}, key_pem


class GraphSettings(object):
    """Validated connection settings (built before any network traffic)."""

    def __init__(self, tenant_id, client_id, client_secret=None, client_certificate=None,
                 client_certificate_password=None, client_certificate_thumbprint=None,
                 cloud="public", authority_host=None, graph_url=None, graph_timeout=300,
                 graph_max_retries=6, allow_custom_endpoints=False):
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
        self.authority_host = _normalise_base(authority_host or default_authority, "authority_host",
                                              KNOWN_AUTHORITY_HOSTS, bool(allow_custom_endpoints))
        self.graph_url = _normalise_base(graph_url or default_graph, "graph_url",
                                         KNOWN_GRAPH_HOSTS, bool(allow_custom_endpoints))
        self.timeout = int(graph_timeout)
        self.max_retries = int(graph_max_retries)
        self._secrets = [s for s in (client_secret, client_certificate_password) if s]
        if client_secret:
            self._credential = client_secret
        else:
            self._credential, key_pem = _read_certificate(client_certificate, client_certificate_password,
                                                          client_certificate_thumbprint)
            if key_pem:
                self._secrets.append(key_pem)

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
            if opt["type"] == "bool" and not isinstance(value, bool):
                value = bool(value)
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


class _OverBudget(Exception):
    """The next wait would pass graph_timeout: raised from inside urllib3's retry loop."""

    def __init__(self, status, delay, attempts, request_id):
        super(_OverBudget, self).__init__("over budget")
        self.status = status
        self.delay = delay
        self.attempts = attempts
        self.request_id = request_id


class _Budget(object):
    """What the retry policy shares with its client: the clock, the sleep, the limit and
    when the current call started (one call at a time per client)."""

    def __init__(self, sleep, clock, timeout):
        self.sleep = sleep
        self.clock = clock
        self.timeout = timeout
        self.start = clock()
        self.sleeps = 0


class _GraphRetry(Retry):
    """urllib3's Retry with Graph's rules on top of its status list, Retry-After handling
    and exponential backoff:

    - 429/503/504 (Graph did not process the call) are repeated for every method, 500/502
      only for idempotent ones (Retry's allowed_methods); connection errors before the
      request was sent are repeated too (Retry's ``connect``);
    - the first retry backs off as well (urllib3 retries the first at once): backoff_factor,
      2x, 4x ... capped at backoff_max;
    - every wait goes through the client's sleep and clock, and a wait that would end past
      graph_timeout stops the call instead (_OverBudget).
    """

    budget = None

    def new(self, **kw):
        retry = super(_GraphRetry, self).new(**kw)
        retry.budget = self.budget
        return retry

    def is_retry(self, method, status_code, has_retry_after=False):
        if status_code in THROTTLE_STATUSES:
            return True
        return status_code in TRANSIENT_STATUSES and self._is_method_retryable(method)

    def get_backoff_time(self):
        errors = len(self.history)
        if errors < 1:
            return 0
        return float(min(self.backoff_max, self.backoff_factor * (2 ** (errors - 1))))

    def sleep(self, response=None):
        delay = None
        if response is not None and self.respect_retry_after_header:
            delay = self.get_retry_after(response)
        if delay is None:
            delay = self.get_backoff_time()
        budget = self.budget
        if budget.clock() - budget.start + delay > budget.timeout:
            raise _OverBudget(None if response is None else response.status, delay, len(self.history),
                              None if response is None else response.headers.get("request-id"))
        budget.sleeps += 1
        budget.sleep(delay)


class GraphClient(object):
    """Graph v1.0 calls with token handling, bounded retries (urllib3's Retry through a
    requests HTTPAdapter) and paging."""

    def __init__(self, settings, api_version="v1.0", session=None, sleep=time.sleep, clock=time.monotonic,
                 request_timeout=60, backoff_base=1.0, backoff_cap=32.0):
        if IMPORT_ERRORS:
            raise GraphConfigError("the Python libraries msal and requests are required on the controller: %s"
                                   % ", ".join(missing_libraries()))
        self.settings = settings
        self.base = "%s/%s" % (settings.graph_url, api_version)
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "m365ops.activation")
        self._clock = clock
        self._request_timeout = request_timeout
        self._budget = _Budget(sleep, clock, settings.timeout)
        retry = _GraphRetry(
            total=settings.max_retries, connect=settings.max_retries, read=settings.max_retries,
            status=settings.max_retries, other=0, redirect=0,
            allowed_methods=frozenset(IDEMPOTENT_METHODS),
            status_forcelist=frozenset(THROTTLE_STATUSES + TRANSIENT_STATUSES),
            respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False,
            backoff_factor=backoff_base, backoff_max=backoff_cap)
        retry.budget = self._budget
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self._app = None
        self._token = None
        self.requests_made = 0

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

    @property
    def retries_done(self):
        """How many times a call was repeated (waits taken) over the client's life."""
        return self._budget.sleeps

    def request(self, method, path, params=None, json_body=None, headers=None, permission=None, what=None):
        """Send one Graph request; returns the decoded JSON body (None when empty).

        permission: the least-privileged application permission this call needs,
        named in the 403 message. what: a description of the addressed object,
        named in the 404 message.
        """
        method = method.upper()
        url = self.url(path)
        hdrs = {"Authorization": "Bearer %s" % self._access_token(), "Accept": "application/json"}
        hdrs.update(headers or {})
        self._budget.start = self._clock()
        self.requests_made += 1
        try:
            response = self.session.request(method, url, params=params, json=json_body, headers=hdrs,
                                            timeout=self._request_timeout)
        except _OverBudget as over:
            raise self._still_failing(method, url, over.attempts, "HTTP %s" % over.status, over.delay,
                                      over.status, over.request_id)
        except requests.RequestException as exc:
            raise GraphError("%s %s failed: %s: %s" % (method, url, type(exc).__name__,
                                                       redact(exc, self.settings.secrets)), method=method, url=url)
        if response.status_code < 400:
            return self._decode(response, method, url)
        status = response.status_code
        if status in THROTTLE_STATUSES or (status in TRANSIENT_STATUSES and method in IDEMPOTENT_METHODS):
            # A status the policy repeats came back: urllib3 gave up (graph_max_retries).
            retries = getattr(response.raw, "retries", None)
            attempts = len(retries.history) + 1 if retries is not None else 1
            raise self._still_failing(method, url, attempts, "HTTP %s" % status, 0, status,
                                      response.headers.get("request-id"))
        raise self._error(response, method, url, permission, what)

    def _still_failing(self, method, url, attempts, status_text, delay, status, request_id):
        elapsed = self._clock() - self._budget.start
        return GraphError(
            "%s %s still failing after %d attempt(s) in %.0f s (last: %s; next wait %.0f s would pass "
            "graph_timeout=%d or graph_max_retries=%d). Graph is throttling or unavailable; try later."
            % (method, url, attempts, elapsed, status_text, delay or 0, self.settings.timeout,
               self.settings.max_retries),
            status=status, method=method, url=url, request_id=request_id)

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
    return sorted(IMPORT_ERRORS)


def client_from_params(params, environ=None, **kwargs):
    """Settings + client from module params (env fallbacks applied), no network yet."""
    return GraphClient(GraphSettings.from_params(params, environ=environ), **kwargs)


def run_module(basic, options, run):
    """The whole main() of an entra_* module.

    basic is ``ansible.module_utils.basic``, passed in so this file keeps no ansible
    import; options are the module's own options, added to the auth options. run(module,
    client) returns the result dict; it raises ValueError for bad input (before any
    change) and GraphError for failed calls. Every message is scrubbed of the secrets,
    so neither the result nor a traceback can carry them.
    """
    spec = auth_argument_spec(basic.env_fallback)
    spec.update(options)
    module = basic.AnsibleModule(argument_spec=spec, supports_check_mode=True)
    missing = missing_libraries()
    if missing:
        module.fail_json(msg=basic.missing_required_lib(" and ".join(missing)),
                         exception="".join(IMPORT_ERRORS[name] for name in missing))
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
