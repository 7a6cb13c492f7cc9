# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX's own rules for a custom credential type, restated to test examples/awx against.

Nothing here is AWX code; it restates, in this project's words, what these AWX sources do
(ansible/awx, devel at commit e21dd0a0933f, 2024-10):

- ``awx/main/fields.py`` ``CredentialTypeInputField``: the JSON schema of ``inputs`` (field
  keys, ``type`` string/boolean, the id pattern), ``tower`` as a reserved id, unique ids,
  a ``default`` of the field's type, ``choices``/``multiline``/``format``/``secret`` only on
  string fields;
- ``awx/main/fields.py`` ``CredentialTypeInjectorField``: the JSON schema of ``injectors``
  (only ``file``, ``env``, ``extra_vars``; file keys ``template`` or ``template.<name>``; env
  names of the shell's portable set, ASCII values; no ``ANSIBLE_*`` and nothing of
  ``ENV_BLOCKLIST`` in ``awx/main/constants.py``), single-file or multi-file syntax but not
  both, and every template rendered in Jinja's ``ImmutableSandboxedEnvironment`` with
  ``StrictUndefined`` against the input fields (value ``EXAMPLE``) and the reserved
  ``tower`` namespace, whose ``tower.filename[.<name>]`` exists only for declared files;
- ``awx/api/serializers.py`` ``CredentialTypeSerializer.validate``: custom types are of kind
  ``cloud`` or ``net`` and cannot ask at runtime;
- ``awx/main/models/credential.py`` ``CredentialType.inject_credential``: what a job gets -
  files written from the ``file`` templates (0600), ``tower.filename`` pointing at them,
  ``env`` and ``extra_vars`` rendered in the sandbox (plain ``Undefined``: an input left empty
  renders as ``""``).

jsonschema (Draft 4, as AWX validates) and Jinja2's sandbox are the real libraries AWX uses.
"""

from __future__ import annotations

import os
import stat
import tempfile

import jsonschema
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

NAME = r"^[a-zA-Z_]+[a-zA-Z0-9_]*$"
FILE_KEY = r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$"
EXTRA_VAR_KEY = r"^[a-zA-Z_\{\}]+[a-zA-Z0-9_\{\}]*$"

ENV_BLOCKLIST = frozenset((
    "VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
    "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
    "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
    "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH",
))

INPUTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "required": {"type": "array", "items": {"type": "string"}},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "label"],
                "properties": {
                    "type": {"enum": ["string", "boolean"]},
                    "format": {"enum": ["ssh_private_key", "url"]},
                    "choices": {"type": "array", "minItems": 1, "items": {"type": "string"}, "uniqueItems": True},
                    "id": {"type": "string", "pattern": NAME},
                    "label": {"type": "string"},
                    "help_text": {"type": "string"},
                    "multiline": {"type": "boolean"},
                    "secret": {"type": "boolean"},
                    "ask_at_runtime": {"type": "boolean"},
                    "default": {},
                },
            },
        },
    },
}

INJECTORS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file": {"type": "object", "additionalProperties": False,
                 "patternProperties": {FILE_KEY: {"type": "string"}}},
        "env": {"type": "object", "additionalProperties": False,
                "patternProperties": {NAME: {"type": "string", "pattern": "^[\x00-\x7F]*$"}}},
        "extra_vars": {"type": "object", "additionalProperties": False,
                       "patternProperties": {EXTRA_VAR_KEY: {"anyOf": [
                           {"type": "string"}, {"type": "array"}, {"$ref": "#/properties/extra_vars"}]}}},
    },
}


def _schema_errors(schema, value):
    return ["%s: %s" % ("/".join(str(p) for p in error.absolute_path) or "(top)", error.message)
            for error in jsonschema.Draft4Validator(schema).iter_errors(value)]


def input_errors(inputs):
    errors = _schema_errors(INPUTS_SCHEMA, inputs)
    if errors:
        return errors
    seen = set()
    for field in inputs.get("fields", []):
        if field["id"] == "tower":
            errors.append('"tower" is a reserved field name')
        if field["id"] in seen:
            errors.append("field IDs must be unique (%s)" % field["id"])
        seen.add(field["id"])
        kind = field.get("type", "string")
        if "default" in field and not isinstance(field["default"], {"string": str, "boolean": bool}[kind]):
            errors.append("%r is not a %s" % (field["default"], kind))
        for key in ("choices", "multiline", "format", "secret"):
            if key in field and kind != "string":
                errors.append("%s not allowed for %s type (%s)" % (key, kind, field["id"]))
        if field.get("ask_at_runtime"):
            errors.append("'ask_at_runtime' is not supported for custom credentials")
    return errors


class _Exploding:
    """``tower.filename`` when no unnamed file injector exists."""

    def __str__(self):
        raise UndefinedError("Must define unnamed file injector in order to reference `tower.filename`.")


class _Tower:
    def __init__(self):
        self.filename = _Exploding()

    def __str__(self):
        raise UndefinedError("Cannot directly reference reserved `tower` namespace container.")


def _render(text, namespace, strict):
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined) if strict else ImmutableSandboxedEnvironment()
    return env.from_string(text).render(namespace)


def injector_errors(credential_type):
    """Why AWX's API would refuse ``credential_type`` (kind, inputs, injectors); [] if it takes it."""
    errors = []
    if credential_type.get("kind") not in ("cloud", "net"):
        errors.append("kind: Must be 'cloud' or 'net', not %s" % credential_type.get("kind"))
    inputs = credential_type.get("inputs", {})
    injectors = credential_type.get("injectors", {})
    errors += input_errors(inputs)
    schema = _schema_errors(INJECTORS_SCHEMA, injectors)
    if schema or errors:
        return errors + schema
    namespace = {field["id"]: "EXAMPLE" for field in inputs.get("fields", [])}
    tower = namespace["tower"] = _Tower()
    files = [key for key in injectors.get("file", {}) if key.startswith("template")]
    if "template" in files:
        tower.filename = "EXAMPLE_FILENAME"
        if len(files) > 1:
            errors.append("Must use multi-file syntax when injecting multiple files")
    else:
        for key in files:
            setattr(tower.filename, key.split(".")[1], "EXAMPLE_FILENAME")

    def check(kind, key, text):
        try:
            _render(text, namespace, strict=True)
        except UndefinedError as exc:
            errors.append("%s uses an undefined field (%s)" % (key, exc))
        except SecurityError as exc:
            errors.append("Encountered unsafe code execution: %s" % exc)
        except TemplateSyntaxError as exc:
            errors.append("Syntax error rendering template for %s inside of %s (%s)" % (key, kind, exc))

    def check_extra_vars(key, node):
        if isinstance(node, dict):
            for k, v in node.items():
                check("extra_vars", key or "a key", k)
                check_extra_vars(k if key is None else "%s.%s" % (key, k), v)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                check_extra_vars("%s[%d]" % (key, i), item)
        else:
            check("extra_vars", key, node)

    for kind, injector in injectors.items():
        if kind == "env":
            for name in injector:
                if name.startswith("ANSIBLE_"):
                    errors.append("Environment variable %s may affect Ansible configuration" % name)
                elif name in ENV_BLOCKLIST:
                    errors.append("Environment variable %s is not allowed to be used in credentials" % name)
        if kind == "extra_vars":
            check_extra_vars(None, injector)
        else:
            for key, text in injector.items():
                check(kind, key, text)
    return errors


class _Files:
    pass


def inject(credential_type, inputs, private_data_dir):
    """(env, extra_vars) a job gets from a credential of this type holding ``inputs``, with
    the ``file`` templates written under ``<private_data_dir>/env`` as AWX writes them."""
    os.makedirs(os.path.join(private_data_dir, "env"), exist_ok=True)
    namespace = {k: v for k, v in inputs.items() if isinstance(v, bool) or len(v)}
    for field in credential_type["inputs"].get("fields", []):
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False
    tower = namespace["tower"] = _Files()
    injectors = credential_type.get("injectors", {})
    for label, text in injectors.get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=os.path.join(private_data_dir, "env"))
        with os.fdopen(handle, "w") as out:
            out.write(_render(text, namespace, strict=False))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." not in label:
            tower.filename = path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = _Files()
            setattr(tower.filename, label.split(".")[1], path)
    env = {name: _render(text, namespace, strict=False) for name, text in injectors.get("env", {}).items()
           if not name.startswith("ANSIBLE_") and name not in ENV_BLOCKLIST}

    def build(node):
        if isinstance(node, dict):
            return {build(k): build(v) for k, v in node.items()}
        if isinstance(node, list):
            return [build(x) for x in node]
        return _render(node, namespace, strict=False)

    return env, build(injectors.get("extra_vars", {}))
