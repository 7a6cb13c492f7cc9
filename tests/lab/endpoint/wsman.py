# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WS-Management envelopes as a Windows WinRM service reads and writes them.

Only what the lab needs: parse a request envelope into a `Request`, build the
response envelopes of the shell operations (MS-WSMV 3.1.4.x) and SOAP faults in
the shape Windows sends them (s:Code/s:Subcode, s:Reason, s:Detail/f:WSManFault
with a numeric Code), so pywinrm and pypsrp take the same paths they take
against a real host.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
ACTION_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
ACTION_RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
ACTION_SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
# Disconnected sessions (MS-PSRP 3.1.4.12-15): recognised so they get a named "not supported"
# fault from the shell service instead of a generic unknown-action one.
ACTION_DISCONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect"
ACTION_RECONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Reconnect"
ACTION_CONNECT = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Connect"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

# Short names used in logs and in the per-host counters.
OPERATIONS = {
    ACTION_CREATE: "Create",
    ACTION_DELETE: "Delete",
    ACTION_COMMAND: "Command",
    ACTION_SEND: "Send",
    ACTION_RECEIVE: "Receive",
    ACTION_SIGNAL: "Signal",
    ACTION_DISCONNECT: "Disconnect",
    ACTION_RECONNECT: "Reconnect",
    ACTION_CONNECT: "Connect",
}

RESPONSE_ACTIONS = {
    ACTION_CREATE: "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
    ACTION_DELETE: "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
    ACTION_COMMAND: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
    ACTION_SEND: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse",
    ACTION_RECEIVE: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
    ACTION_SIGNAL: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse",
}

RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
# The PowerShell remoting plugin (tests/lab/endpoint/psrp.py), what pypsrp and ansible's psrp connection use.
RESOURCE_POWERSHELL = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"

SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
SIGNAL_CTRL_BREAK = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"

STATE_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
STATE_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# The client's w:MaxEnvelopeSize when it sends none (pywinrm and Windows both use 150 KiB).
DEFAULT_CLIENT_ENVELOPE = 153600
# Windows' MaxEnvelopeSizekb default (500 KiB) bounds what a client may send.
DEFAULT_SERVER_ENVELOPE = 512000


class WSManFault(Exception):
    """A SOAP fault to send back; `reason` is also what the lab logs."""

    def __init__(self, subcode: str, reason: str, wsman_code: int, *, code: str = "s:Sender",
                 http_status: int = 500, detail: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.wsman_code = wsman_code
        self.http_status = http_status
        self.detail = detail


# Codes Windows sends for these conditions (seen in WinRM clients' bug reports and in
# pywinrm/pypsrp, which test for 2150858793 to keep polling).
CODE_OPERATION_TIMEOUT = 2150858793
CODE_SHELL_NOT_FOUND = 2150858843
CODE_ENVELOPE_TOO_LARGE = 2150859025  # 0x80338111, "exceeded the configured MaxEnvelopeSize quota"
# Win32 codes where the lab has no captured Windows sample; they say what happened.
CODE_INVALID_PARAMETER = 87  # ERROR_INVALID_PARAMETER, "The parameter is incorrect."
CODE_INVALID_DATA = 13  # ERROR_INVALID_DATA
CODE_NOT_SUPPORTED = 50  # ERROR_NOT_SUPPORTED
CODE_FILE_NOT_FOUND = 2  # ERROR_FILE_NOT_FOUND, CreateProcess of a missing program


def timeout_fault() -> WSManFault:
    return WSManFault(
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
        CODE_OPERATION_TIMEOUT,
        code="s:Receiver",
    )


def shell_not_found(shell_id: str) -> WSManFault:
    return WSManFault(
        "w:InvalidSelectors",
        "The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the "
        "server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the "
        "server. Provide the correct ShellId or create a new shell and retry the operation." % shell_id,
        CODE_SHELL_NOT_FOUND,
    )


@dataclass
class Request:
    action: str
    resource_uri: str
    message_id: str
    shell_id: str | None
    operation_timeout: float
    max_envelope_size: int
    options: dict[str, str]
    body: ET.Element
    locale: str = "en-US"
    selectors: dict[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return OPERATIONS.get(self.action, "Unknown")


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> float:
    """xs:duration as WS-Man uses it for OperationTimeout (PT20S, PT1M30.5S)."""
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "PT"):
        raise WSManFault("w:InvalidParameter", "The OperationTimeout value %r is not a valid xs:duration." % text,
                         CODE_INVALID_PARAMETER)
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _text(parent: ET.Element, path: str) -> str | None:
    node = parent.find(path, NS)
    return None if node is None or node.text is None else node.text.strip()


def parse_request(data: bytes, max_request_size: int = DEFAULT_SERVER_ENVELOPE) -> Request:
    """Parse and check a request envelope; raises WSManFault for anything Windows would refuse."""
    if len(data) > max_request_size:
        raise WSManFault(
            "w:EncodingLimit",
            "The WS-Management service cannot process the request because the request size %d exceeded the "
            "configured MaxEnvelopeSize quota of %d bytes." % (len(data), max_request_size),
            CODE_ENVELOPE_TOO_LARGE,
            http_status=413,
            detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize",
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WSManFault("w:SchemaValidationError",
                         "The WS-Management service cannot process the request because the XML is invalid: %s" % exc,
                         CODE_INVALID_DATA, http_status=400) from None
    if root.tag != "{%s}Envelope" % NS["s"]:
        raise WSManFault("w:SchemaValidationError",
                         "The WS-Management service cannot process the request: the root element %s is not a "
                         "SOAP 1.2 Envelope." % root.tag, CODE_INVALID_DATA, http_status=400)
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise WSManFault("w:SchemaValidationError",
                         "The WS-Management service cannot process the request: the envelope has no Header or Body.",
                         CODE_INVALID_DATA, http_status=400)
    action = _text(header, "a:Action")
    resource_uri = _text(header, "w:ResourceURI")
    message_id = _text(header, "a:MessageID")
    if not action or not message_id:
        raise WSManFault("a:InvalidMessageInformationHeader",
                         "The WS-Management service cannot process the request: the a:Action or a:MessageID header "
                         "is missing.", CODE_INVALID_DATA, http_status=400)
    if action not in OPERATIONS:
        raise WSManFault("a:ActionNotSupported",
                         "The action %s is not supported by the service." % action, CODE_NOT_SUPPORTED)
    if not resource_uri:
        raise WSManFault("w:InvalidParameter",
                         "The WS-Management service cannot process the request: the w:ResourceURI header is missing.",
                         CODE_INVALID_PARAMETER)

    timeout_text = _text(header, "w:OperationTimeout")
    operation_timeout = parse_duration(timeout_text) if timeout_text else 60.0
    max_env_text = _text(header, "w:MaxEnvelopeSize")
    try:
        max_envelope_size = int(max_env_text) if max_env_text else DEFAULT_CLIENT_ENVELOPE
    except ValueError:
        raise WSManFault("w:InvalidParameter", "The MaxEnvelopeSize value %r is not a number." % max_env_text,
                         CODE_INVALID_PARAMETER) from None
    if max_envelope_size < 8192:
        raise WSManFault("w:EncodingLimit", "The MaxEnvelopeSize %d is below the minimum of 8192." % max_envelope_size,
                         CODE_ENVELOPE_TOO_LARGE)

    selectors = {}
    for sel in header.findall("w:SelectorSet/w:Selector", NS):
        selectors[sel.get("Name", "")] = (sel.text or "").strip()
    options = {}
    for opt in header.findall("w:OptionSet/w:Option", NS):
        options[opt.get("Name", "")] = (opt.text or "").strip()
    locale_node = header.find("w:Locale", NS)
    locale = "en-US"
    if locale_node is not None:
        locale = locale_node.get("{http://www.w3.org/XML/1998/namespace}lang", "en-US")

    return Request(
        action=action,
        resource_uri=resource_uri,
        message_id=message_id,
        shell_id=selectors.get("ShellId"),
        operation_timeout=operation_timeout,
        max_envelope_size=max_envelope_size,
        options=options,
        body=body,
        locale=locale,
        selectors=selectors,
    )


def _envelope(action: str, relates_to: str | None) -> tuple[ET.Element, ET.Element]:
    env = ET.Element("{%s}Envelope" % NS["s"], {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"})
    header = ET.SubElement(env, "{%s}Header" % NS["s"])
    ET.SubElement(header, "{%s}Action" % NS["a"]).text = action
    ET.SubElement(header, "{%s}MessageID" % NS["a"]).text = "uuid:%s" % str(uuid.uuid4()).upper()
    ET.SubElement(header, "{%s}To" % NS["a"]).text = ANONYMOUS
    if relates_to:
        ET.SubElement(header, "{%s}RelatesTo" % NS["a"]).text = relates_to
    body = ET.SubElement(env, "{%s}Body" % NS["s"])
    return env, body


def response(req: Request) -> tuple[ET.Element, ET.Element]:
    """An empty response envelope for `req`; the caller fills the Body."""
    return _envelope(RESPONSE_ACTIONS[req.action], req.message_id)


def serialize(env: ET.Element) -> bytes:
    return ET.tostring(env, encoding="utf-8", xml_declaration=False)


def fault_envelope(fault: WSManFault, relates_to: str | None, machine: str) -> bytes:
    env, body = _envelope(ACTION_FAULT, relates_to)
    f = ET.SubElement(body, "{%s}Fault" % NS["s"])
    code = ET.SubElement(f, "{%s}Code" % NS["s"])
    ET.SubElement(code, "{%s}Value" % NS["s"]).text = fault.code
    sub = ET.SubElement(code, "{%s}Subcode" % NS["s"])
    ET.SubElement(sub, "{%s}Value" % NS["s"]).text = fault.subcode
    reason = ET.SubElement(f, "{%s}Reason" % NS["s"])
    ET.SubElement(reason, "{%s}Text" % NS["s"], {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"}).text = (
        fault.reason + " ")
    detail = ET.SubElement(f, "{%s}Detail" % NS["s"])
    if fault.detail:
        ET.SubElement(detail, "{%s}FaultDetail" % NS["w"]).text = fault.detail
    wf = ET.SubElement(detail, "{%s}WSManFault" % NS["f"], {"Code": str(fault.wsman_code), "Machine": machine})
    ET.SubElement(wf, "{%s}Message" % NS["f"]).text = fault.reason + " "
    return serialize(env)
