# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection to Microsoft Graph, shared by the entra_* modules.
    DOCUMENTATION = r'''
options:
  tenant_id:
    description:
      - Microsoft Entra tenant, as its GUID or a verified domain name.
      - If not set, the environment variable E(AZURE_TENANT_ID) is used, then E(AZURE_TENANT).
    type: str
  client_id:
    description:
      - Application (client) ID of the app registration the module signs in as (client credentials flow).
      - If not set, the environment variable E(AZURE_CLIENT_ID) is used.
    type: str
  client_secret:
    description:
      - Client secret of the app registration. Mutually exclusive with O(client_certificate).
      - If not set, the environment variable E(AZURE_CLIENT_SECRET) is used, then E(AZURE_SECRET).
      - Never returned or logged.
    type: str
  client_certificate:
    description:
      - Path on the controller to the app registration's certificate with its private key, given to msal in
        msal's own forms - a PKCS#12 file (name ending in C(.pfx) or C(.p12)), or a PEM file holding the
        private key and the certificate. msal signs with the certificate's SHA-256 thumbprint.
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_PATH) is used.
    type: path
  client_certificate_password:
    description:
      - Passphrase of the PFX file or of an encrypted private key in O(client_certificate).
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_PASSWORD) is used.
    type: str
  client_certificate_thumbprint:
    description:
      - SHA-1 thumbprint of the certificate (40 hex digits) as shown in the app registration.
      - Only for a PEM O(client_certificate) that holds the private key alone (msal's legacy SHA-1 form,
        which it keeps for ADFS); with the certificate in the file or a PFX, msal uses its SHA-256 thumbprint.
      - If not set, the environment variable E(AZURE_CLIENT_CERTIFICATE_THUMBPRINT) is used.
    type: str
  cloud:
    description:
      - Microsoft cloud whose sign-in and Graph endpoints are used.
      - If not set, the environment variable E(M365OPS_GRAPH_CLOUD) is used.
    type: str
    default: public
    choices: [china, public, usgov, usgov_dod]
  authority_host:
    description:
      - Sign-in endpoint, overriding the one of O(cloud), for example V(https://login.microsoftonline.us).
      - If not set, the environment variable E(AZURE_AUTHORITY_HOST) is used.
      - Only the sign-in hosts of Microsoft's clouds (global, US Government, China) are accepted unless
        O(allow_custom_endpoints) is set.
    type: str
  graph_url:
    description:
      - Microsoft Graph base URL, overriding the one of O(cloud), without the API version.
      - If not set, the environment variable E(M365OPS_GRAPH_URL) is used.
      - Only the Graph hosts of Microsoft's clouds (global, US Government, China) are accepted unless
        O(allow_custom_endpoints) is set.
    type: str
  allow_custom_endpoints:
    description:
      - Accept O(authority_host) and O(graph_url) outside Microsoft's clouds (a test double, a proxy you
        control). The client secret or certificate assertion and the tokens go to those hosts.
      - No environment variable sets this, so an environment alone cannot send the credentials elsewhere.
    type: bool
    default: false
  graph_timeout:
    description:
      - Total time in seconds one Graph call may take including its retries.
      - Throttled calls (HTTP 429, 503, 504) wait as long as Graph's C(Retry-After) asks; other transient
        failures of idempotent calls back off exponentially. A wait that would pass this limit ends the task
        with an error instead.
      - If not set, the environment variable E(M365OPS_GRAPH_TIMEOUT) is used.
    type: int
    default: 300
  graph_max_retries:
    description:
      - How many times one Graph call is repeated after throttling or a transient failure.
    type: int
    default: 6
notes:
  - Runs on the controller (set C(delegate_to) to V(localhost) or use a C(localhost) play) and needs the Python
    libraries C(msal) and C(requests) there.
  - The Microsoft Graph application permissions each module needs are listed in the collection's
    C(docs/graph-permissions.md).
  - To trust a TLS-inspecting proxy, set E(REQUESTS_CA_BUNDLE) to its CA bundle; E(HTTPS_PROXY) is honoured.
requirements:
  - msal >= 1.28.0
  - requests >= 2.31.0
'''
