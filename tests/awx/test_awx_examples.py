# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX examples (examples/awx) against what the AWX API accepts and what the collection reads.

Every survey question must set a variable that the project playbook, the collection playbook
it imports or the role behind it actually reads, with a survey type whose answer ends up as the
type the role's argument spec declares (AWX answers are strings, ints, and lists for
multi-select; a bool option needs a ``| bool`` on the way). The survey and credential-type
shapes are checked against the AWX API's own validation rules.
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path

import jinja2
import jinja2.meta
import jinja2.nodes
import pytest
import yaml

import awx_rules
# The collection preflight's own template reader: the survey checks read names the way it does.
from ansible_collections.m365ops.activation.plugins.plugin_utils.preflight import JINJA

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "examples" / "awx"
PROJECT = AWX / "project"
COLLECTION = "m365ops.activation."

# Parameters of awx.awx.job_template (awx_collection/plugins/modules/job_template.py,
# argument_spec), minus the controller_* auth options every awx.awx module shares.
JOB_TEMPLATE_OPTIONS = {
    "name", "new_name", "copy_from", "description", "organization", "job_type", "inventory",
    "project", "playbook", "credential", "vault_credential", "credentials",
    "execution_environment", "custom_virtualenv", "instance_groups", "forks", "limit",
    "verbosity", "extra_vars", "job_tags", "force_handlers", "skip_tags", "start_at_task",
    "timeout", "use_fact_cache", "host_config_key", "ask_diff_mode_on_launch",
    "ask_variables_on_launch", "ask_limit_on_launch", "ask_tags_on_launch",
    "ask_skip_tags_on_launch", "ask_job_type_on_launch", "ask_verbosity_on_launch",
    "ask_inventory_on_launch", "ask_credential_on_launch",
    "ask_execution_environment_on_launch", "ask_forks_on_launch",
    "ask_instance_groups_on_launch", "ask_job_slice_count_on_launch", "ask_labels_on_launch",
    "ask_timeout_on_launch", "survey_enabled", "survey_spec", "become_enabled", "diff_mode",
    "allow_simultaneous", "scm_branch", "ask_scm_branch_on_launch", "job_slice_count",
    "webhook_service", "webhook_credential", "labels", "notification_templates_started",
    "notification_templates_success", "notification_templates_error",
    "prevent_instance_group_fallback", "state",
}
CREDENTIAL_TYPE_OPTIONS = {"name", "description", "kind", "inputs", "injectors", "state"}

# JobTemplateSurveySpec.ALLOWED_TYPES in awx/api/views: question type -> type of its answer.
SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str,
                "multiselect": str, "integer": int, "float": float}
NAME_RE = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")

# What a play keyword does with the variable templated into it.
PLAY_KEYWORD_TYPES = {"hosts": "str", "serial": "serial", "max_fail_percentage": "int"}
# Filters after which a survey answer has the named type, whatever it was before.
CONVERTING_FILTERS = {"bool": "bool", "int": "int", "list": "list", "difference": "list",
                      "select": "list", "map": "list", "splitlines": "list", "split": "list"}
# Bare Jinja expressions (no braces) under these task keys.
EXPRESSION_KEYS = {"when", "that", "failed_when", "changed_when", "until"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def expression_of(text):
    """The Jinja AST of a template string, or None for a plain string."""
    if "{{" not in text and "{%" not in text:
        return None
    return JINJA.parse(text)


def names_and_filters(text):
    """(variables the template reads, filters and methods it applies)."""
    ast = expression_of(text)
    if ast is None:
        return set(), set()
    names = set(jinja2.meta.find_undeclared_variables(ast))
    filters = {node.name for node in ast.find_all(jinja2.nodes.Filter)}
    # str.splitlines() and friends are attribute calls, not filters.
    filters |= {node.node.attr for node in ast.find_all(jinja2.nodes.Call)
                if isinstance(node.node, jinja2.nodes.Getattr)}
    return names, filters


def strings_read(node, key=None):
    """Every template string in a YAML tree (bare expressions wrapped in braces)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings_read(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from strings_read(v, key)
    elif isinstance(node, str):
        if key in EXPRESSION_KEYS and "{{" not in node:
            yield "{{ %s }}" % node
        else:
            yield node


def role_spec(role):
    spec = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return spec["argument_specs"]["main"]["options"]


class Flow:
    """What one project playbook reads: the variables, the role options and the mappings.

    ``mappings`` holds, for every variable a play (or the import) defines from a template,
    the variables that template reads and the filters it applies, so a survey answer can be
    followed to the role option it finally sets.
    """

    def __init__(self, project_playbook):
        self.reads = set()
        self.options = {}          # role option name -> spec
        self.mappings = {}         # defined name -> list of (names read, filters)
        self.keyword_vars = {}     # variable -> play keyword it is templated into
        self.roles = []
        wrapper = load(project_playbook)
        self._scan_templates(wrapper)
        for entry in wrapper:
            target = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
            if target:
                self._map(entry.get("vars", {}))
                assert target.startswith(COLLECTION), "%s imports %s, not a playbook of the collection" % (
                    project_playbook.name, target)
                self._playbook(ROOT / "playbooks" / (target[len(COLLECTION):] + ".yml"))

    def _scan_templates(self, tree):
        for text in strings_read(tree):
            self.reads |= names_and_filters(text)[0]

    def _map(self, variables):
        for name, value in (variables or {}).items():
            if isinstance(value, str):
                self.mappings.setdefault(name, []).append(names_and_filters(value))

    def _playbook(self, path):
        assert path.is_file(), "%s does not exist" % path
        for play in load(path):
            self._scan_templates(play)
            self._map(play.get("vars"))
            for keyword, kind in PLAY_KEYWORD_TYPES.items():
                if isinstance(play.get(keyword), str):
                    for name in names_and_filters(play[keyword])[0]:
                        self.keyword_vars[name] = kind
            for role in play.get("roles", []):
                name = role["role"] if isinstance(role, dict) else role
                short = name[len(COLLECTION):] if name.startswith(COLLECTION) else name
                self.roles.append(short)
                self.options.update(role_spec(short))
                if isinstance(role, dict):
                    self._map(role.get("vars"))
                for tasks in sorted((ROOT / "roles" / short / "tasks").glob("*.yml")):
                    self._scan_templates(load(tasks))
        self.reads |= set(self.options)

    def sinks(self, variable, filters=frozenset(), seen=frozenset()):
        """(role option or play keyword, filters applied on the way) that ``variable`` reaches."""
        found = []
        if variable in self.options:
            found.append((("option", variable), frozenset(filters)))
        if variable in self.keyword_vars:
            found.append((("keyword", variable), frozenset(filters)))
        for defined, sources in self.mappings.items():
            for names, applied in sources:
                if variable in names and defined not in seen:
                    found += self.sinks(defined, filters | applied, seen | {variable})
        return found


def converted_type(filters):
    """The type a template's filters leave, later filters are not ordered: any bool wins."""
    kinds = {CONVERTING_FILTERS[f] for f in filters if f in CONVERTING_FILTERS}
    for kind in ("bool", "int", "list"):
        if kind in kinds:
            return kind
    return None


def type_errors(question, sink, filters, flow):
    """Why the answer to ``question`` cannot be what ``sink`` expects ([] if it can)."""
    qtype, var = question["type"], question["variable"]
    where, name = sink
    errors = []
    if where == "keyword":
        wanted = flow.keyword_vars[name]
        ok = {"str": {"text"}, "serial": {"text", "integer"}, "int": {"integer"}}[wanted]
        if qtype not in ok and converted_type(filters) != wanted:
            errors.append("%s: a %s answer cannot be the play's %s (%s)" % (var, qtype, name, wanted))
        return errors
    spec = flow.options[name]
    wanted = spec.get("type", "str")
    converted = converted_type(filters)
    choices = spec.get("choices")
    if wanted == "bool":
        if converted != "bool":
            errors.append("%s: a %s answer is a string, but %s is a bool: map it through '| bool'"
                          % (var, qtype, name))
        elif qtype == "multiplechoice" and not set(question["choices"]) <= {"true", "false", "yes", "no"}:
            errors.append("%s: choices %s are not booleans" % (var, question["choices"]))
    elif wanted == "int":
        if qtype != "integer" and converted != "int":
            errors.append("%s: a %s answer is a string, but %s is an int" % (var, qtype, name))
        elif choices and qtype == "integer":
            lo, hi = question.get("min"), question.get("max")
            if lo is None or hi is None or not set(range(lo, hi + 1)) <= set(choices):
                errors.append("%s: range %s..%s is not within the choices of %s %s"
                              % (var, lo, hi, name, choices))
    elif wanted == "list":
        if qtype == "multiselect":
            if choices and not set(question["choices"]) <= set(choices):
                errors.append("%s: choices %s are not choices of %s %s"
                              % (var, sorted(set(question["choices"]) - set(choices)), name, choices))
        elif converted != "list":
            errors.append("%s: a %s answer is a string, but %s is a list" % (var, qtype, name))
    elif wanted in ("str", "path", "raw"):
        if qtype not in ("text", "textarea", "password", "multiplechoice") and converted is None:
            errors.append("%s: a %s answer cannot be %s (%s)" % (var, qtype, name, wanted))
        if choices and qtype == "multiplechoice" and not set(question["choices"]) <= set(choices):
            errors.append("%s: choices are not choices of %s" % (var, name))
    else:
        errors.append("%s: %s is a %s, which no survey question can set" % (var, name, wanted))
    return errors


def survey_errors(template, flow):
    """Every problem of one job template's survey against what the playbooks read."""
    errors = []
    for question in template["survey_spec"]["spec"]:
        var = question["variable"]
        if var not in flow.reads:
            errors.append("%s: the survey asks for it, but nothing reads it" % var)
            continue
        sinks = flow.sinks(var)
        if not sinks:
            errors.append("%s: read, but it reaches no role option or play keyword" % var)
        for sink, filters in sinks:
            errors += type_errors(question, sink, filters, flow)
    return errors


def answers_of(survey):
    """The extra vars AWX sends for a survey answered with its defaults."""
    answers = {}
    for q in survey["spec"]:
        default = q.get("default", "")
        if q["type"] == "multiselect":
            answers[q["variable"]] = [c for c in str(default).splitlines() if c.strip()]
        else:
            answers[q["variable"]] = default
    return answers


@pytest.fixture(scope="module")
def job_templates():
    return load(AWX / "job_templates.yml")["m365_awx_job_templates"]


@pytest.fixture(scope="module")
def credential_types():
    return load(AWX / "credential_types.yml")["m365_awx_credential_types"]


def flow_of(template):
    return Flow(PROJECT / template["playbook"])


def test_job_templates_for_the_three_playbooks(job_templates):
    # diagnose twice: for one execution node, and sliced over several.
    assert sorted(t["playbook"] for t in job_templates) == ["diagnose.yml", "diagnose.yml", "remediate.yml", "tenant.yml"]
    roles = {t["playbook"]: flow_of(t).roles for t in job_templates}
    assert roles == {"diagnose.yml": ["diagnose"], "remediate.yml": ["remediate"],
                     "tenant.yml": ["tenant_check"]}


def test_the_sliced_diagnose_template(job_templates):
    """AWX runs it as job_slice_count slices (JobTemplate.create_unified_job: a workflow job of
    slices when the count is over 1); its survey is the diagnose template's, so every survey
    check above covers it; it sets no limit prompt, which would leave slices without hosts."""
    diagnose, sliced = (t for t in job_templates if t["playbook"] == "diagnose.yml")
    assert "job_slice_count" not in diagnose
    # job_slice_count is a PositiveIntegerField (awx/main/models/jobs.py); 1 means not sliced.
    assert isinstance(sliced["job_slice_count"], int) and sliced["job_slice_count"] > 1
    assert sliced["ask_job_slice_count_on_launch"] is True
    # AWX slices the inventory, not the target: the sliced run is the whole fleet (the playbook's
    # default target), with no host pattern nor limit to ask for; the other questions are the same.
    assert "ask_limit_on_launch" not in sliced
    assert sliced["survey_spec"]["spec"] == [q for q in diagnose["survey_spec"]["spec"] if q["variable"] != "target"]
    assert {k: v for k, v in sliced.items() if k not in ("name", "description", "job_slice_count",
                                                         "ask_job_slice_count_on_launch", "survey_spec")} \
        == {k: v for k, v in diagnose.items() if k not in ("name", "description", "ask_limit_on_launch", "survey_spec")}
    assert survey_errors(sliced, flow_of(sliced)) == []


def test_job_templates_use_only_job_template_module_options(job_templates):
    for template in job_templates:
        assert set(template) <= JOB_TEMPLATE_OPTIONS, set(template) - JOB_TEMPLATE_OPTIONS
        assert template["job_type"] in ("run", "check")
        # Check mode is offered at launch, as the survey cannot switch it.
        assert template["ask_job_type_on_launch"] is True
        assert template["survey_enabled"] is True


def test_configure_playbook_passes_every_job_template_key(job_templates):
    plays = load(AWX / "configure_awx.yml")
    tasks = [t for play in plays for t in play["tasks"]]
    jt_tasks = [t for t in tasks if "awx.awx.job_template" in t]
    assert len(jt_tasks) == 1
    args = jt_tasks[0]["awx.awx.job_template"]
    assert set(args) <= JOB_TEMPLATE_OPTIONS
    passed = {k for k, v in args.items() if isinstance(v, str) and ("item.%s " % k) in v + " "}
    used = set().union(*(set(t) for t in job_templates))
    assert used <= passed, "keys of job_templates.yml configure_awx.yml drops: %s" % (used - passed)
    assert jt_tasks[0]["loop"] == "{{ m365_awx_job_templates }}"
    ct_tasks = [t for t in tasks if "awx.awx.credential_type" in t]
    assert set(ct_tasks[0]["awx.awx.credential_type"]) <= CREDENTIAL_TYPE_OPTIONS
    # Credentials carry secrets: never logged.
    for task in tasks:
        if "awx.awx.credential" in task:
            assert task.get("no_log") is True, task["name"]


@pytest.mark.parametrize("name", ["diagnose", "diagnose (sliced)", "remediate", "tenant check"])
def test_survey_spec_passes_the_awx_api_validation(job_templates, name):
    template = next(t for t in job_templates if t["name"].endswith(name))
    survey = template["survey_spec"]
    assert isinstance(survey["name"], str) and isinstance(survey["description"], str)
    assert isinstance(survey["spec"], list) and survey["spec"]
    seen = set()
    for q in survey["spec"]:
        for key in ("type", "question_name", "variable"):
            assert isinstance(q[key], str), (q, key)
        assert isinstance(q["required"], bool)
        assert q["variable"] not in seen, "duplicate %s" % q["variable"]
        seen.add(q["variable"])
        assert NAME_RE.match(q["variable"])
        assert q["type"] in SURVEY_TYPES
        if q.get("default", "") != "":
            assert isinstance(q["default"], SURVEY_TYPES[q["type"]]), q
        for key in ("min", "max"):
            assert q.get(key) is None or isinstance(q[key], int), q
        if q["type"] in ("multiplechoice", "multiselect"):
            assert q["choices"] and all(isinstance(c, str) for c in q["choices"])
            defaults = str(q.get("default", "")).splitlines()
            assert set(defaults) <= set(q["choices"]), q
            if q["type"] == "multiplechoice":
                assert len(defaults) <= 1
        if q["type"] == "integer" and "default" in q:
            assert q["min"] <= q["default"] <= q["max"], q
        if q["type"] in ("text", "textarea") and q.get("default"):
            assert q.get("min", 0) <= len(q["default"]) <= q.get("max", 1024), q


def test_survey_asks_for_target_and_the_ladder(job_templates):
    # The sliced diagnose template is the whole fleet: test_the_sliced_diagnose_template.
    by_name = {t["playbook"]: {q["variable"] for q in t["survey_spec"]["spec"]} for t in job_templates
               if "job_slice_count" not in t}
    assert "target" in by_name["diagnose.yml"]
    assert {"target", "survey_rungs_allowed", "remediate_max_rung", "remediate_serial"} <= by_name["remediate.yml"]


@pytest.mark.parametrize("playbook", ["diagnose.yml", "remediate.yml", "tenant.yml"])
def test_every_survey_variable_is_read_with_the_right_type(job_templates, playbook):
    template = next(t for t in job_templates if t["playbook"] == playbook)
    assert survey_errors(template, flow_of(template)) == []


def test_a_question_nothing_reads_fails(job_templates):
    template = copy.deepcopy(next(t for t in job_templates if t["playbook"] == "remediate.yml"))
    template["survey_spec"]["spec"].append(
        {"question_name": "Typo", "variable": "remediate_max_rungs", "type": "integer",
         "required": True, "default": 1, "min": 0, "max": 5})
    assert survey_errors(template, flow_of(template)) == [
        "remediate_max_rungs: the survey asks for it, but nothing reads it"]


def test_a_question_of_the_wrong_type_fails(job_templates):
    template = copy.deepcopy(next(t for t in job_templates if t["playbook"] == "remediate.yml"))
    spec = template["survey_spec"]["spec"]
    # A boolean option set straight from a multiple choice arrives as the string "false".
    spec.append({"question_name": "Restart", "variable": "remediate_include_windows_pending",
                 "type": "multiplechoice", "required": True, "choices": ["true", "false"],
                 "default": "false"})
    max_rung = next(q for q in spec if q["variable"] == "remediate_max_rung")
    max_rung["max"] = 6
    fail_on = next(q for q in spec if q["variable"] == "remediate_fail_on")
    fail_on["choices"].append("fixed")
    errors = survey_errors(template, flow_of(template))
    assert len(errors) == 3, errors
    assert any("remediate_include_windows_pending" in e and "| bool" in e for e in errors)
    assert any("remediate_max_rung: range 0..6" in e for e in errors)
    assert any("remediate_fail_on: choices ['fixed']" in e for e in errors)


@pytest.mark.parametrize("playbook", ["diagnose.yml", "remediate.yml", "tenant.yml"])
def test_default_answers_pass_the_role_argument_validation(job_templates, playbook):
    """Template the project playbook's mappings with the answers AWX sends, as ansible-core
    does, and validate the role variables with the validator the role itself runs."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    template = next(t for t in job_templates if t["playbook"] == playbook)
    flow = flow_of(template)
    answers = answers_of(template["survey_spec"])
    wrapper = load(PROJECT / playbook)[0]
    templar = Templar(loader=DataLoader(), variables=answers)
    mapped = {k: templar.template(trust_as_template(v)) for k, v in wrapper.get("vars", {}).items()}
    values = {**answers, **mapped}
    role_vars = {k: v for k, v in values.items() if k in flow.options}
    result = ArgumentSpecValidator(flow.options).validate(role_vars)
    assert not result.error_messages
    for name, value in role_vars.items():
        # The role does not convert what it validated: the value itself must have the type.
        wanted = {"bool": bool, "int": int, "list": list}.get(flow.options[name].get("type"))
        if wanted:
            # bool is an int to isinstance; an int option given True is still wrong.
            assert isinstance(value, wanted) and (wanted is bool or not isinstance(value, bool)), (name, value)
    if playbook == "remediate.yml":
        assert values["remediate_rungs_disabled"] == ["rejoin_hybrid"]
        assert values["remediate_allow_rejoin_hybrid"] is False
        assert values["remediate_reboot"] is True
        assert values["remediate_users"] == []


def test_textarea_users_become_a_list(job_templates):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    wrapper = load(PROJECT / "remediate.yml")[0]
    templar = Templar(loader=DataLoader(), variables={"survey_users": "alice\n  CONTOSO\\bob \n\n"})
    assert templar.template(trust_as_template(wrapper["vars"]["remediate_users"])) == ["alice", "CONTOSO\\bob"]
    # Without the rungs question (e.g. an old survey), nothing is allowed rather than everything.
    templar = Templar(loader=DataLoader(), variables={})
    assert len(templar.template(trust_as_template(wrapper["vars"]["remediate_rungs_disabled"]))) == 5


def test_credential_types_pass_the_awx_api_validation(credential_types):
    """AWX's own rules (tests/awx/awx_rules.py names the AWX sources they restate)."""
    assert {c["name"] for c in credential_types} == {
        "Microsoft Graph application (m365ops)", "Microsoft Graph application, certificate (m365ops)",
        "Windows client certificate (WinRM/PSRP)"}
    for ctype in credential_types:
        assert set(ctype) <= CREDENTIAL_TYPE_OPTIONS
        assert awx_rules.injector_errors(ctype) == [], ctype["name"]
        ids = [f["id"] for f in ctype["inputs"]["fields"]]
        assert set(ctype["inputs"]["required"]) <= set(ids)
        # Secrets are stored encrypted only when the field says so.
        for field in ctype["inputs"]["fields"]:
            if any(word in field["id"] for word in ("secret", "password", "key", "pem")) and field["id"] != "cert_pem":
                assert field.get("secret") is True, field["id"]


@pytest.mark.parametrize("change, error", [
    # The namespace AWX renders injectors in is `tower`; `awx.filename` is undefined there.
    (lambda c: c["injectors"]["env"].update(AZURE_CLIENT_CERTIFICATE_PATH="{{ awx.filename.certificate }}"),
     "AZURE_CLIENT_CERTIFICATE_PATH uses an undefined field"),
    # A file must be declared before tower.filename.<name> exists.
    (lambda c: c["injectors"]["env"].update(AZURE_CLIENT_CERTIFICATE_PATH="{{ tower.filename.other }}"),
     "uses an undefined field"),
    (lambda c: c["injectors"]["file"].update(template="{{ tenant_id }}"),
     "Must use multi-file syntax when injecting multiple files"),
    (lambda c: c["injectors"]["env"].update(ANSIBLE_CONFIG="x"), "may affect Ansible configuration"),
    (lambda c: c["injectors"]["env"].update(PATH="x"), "is not allowed to be used in credentials"),
    (lambda c: c["injectors"].update(args="x"), "Additional properties are not allowed"),
    (lambda c: c["inputs"]["fields"].append({"id": "tower", "label": "x"}), '"tower" is a reserved field name'),
    (lambda c: c.update(kind="ssh"), "Must be 'cloud' or 'net'"),
    (lambda c: c["injectors"]["env"].update(X="{{ ''.__class__.__mro__ }}"), "unsafe"),
])
def test_awx_rules_refuse_what_awx_refuses(credential_types, change, error):
    ctype = copy.deepcopy(next(c for c in credential_types if "certificate" in c["name"] and "Graph" in c["name"]))
    change(ctype)
    errors = awx_rules.injector_errors(ctype)
    assert any(error in e for e in errors), errors


def test_certificate_credentials_inject_files_the_job_reads(credential_types, tmp_path):
    """What a job gets, rendered as AWX's inject_credential does: the PEM in a 0600 file that
    the injected path names; an optional input left empty renders as an empty string."""
    graph_cert = next(c for c in credential_types if c["name"].startswith("Microsoft Graph application, cert"))
    env, extra_vars = awx_rules.inject(graph_cert, {"tenant_id": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001",
                                                    "certificate_pem": "-----BEGIN PRIVATE KEY-----\nx\n", "certificate_password": "",
                                                    "cloud": "public"}, str(tmp_path))
    path = Path(env["AZURE_CLIENT_CERTIFICATE_PATH"])
    assert path.read_text() == "-----BEGIN PRIVATE KEY-----\nx\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] == "" and extra_vars == {}
    winrm_cert = next(c for c in credential_types if c["name"].startswith("Windows client certificate"))
    env, extra_vars = awx_rules.inject(winrm_cert, {"cert_pem": "CERT", "cert_key_pem": "KEY"}, str(tmp_path))
    assert Path(extra_vars["ansible_psrp_certificate_pem"]).read_text() == "CERT"
    assert Path(extra_vars["ansible_winrm_cert_key_pem"]).read_text() == "KEY"
    assert extra_vars["ansible_winrm_cert_pem"] == extra_vars["ansible_psrp_certificate_pem"]


def test_graph_credential_injects_what_the_graph_client_reads(credential_types):
    from ansible_collections.m365ops.activation.plugins.module_utils import graph

    env_names = {e for opt in graph.AUTH_OPTIONS.values() for e in opt.get("env", [])}
    graph_types = [c for c in credential_types if c["name"].startswith("Microsoft Graph")]
    assert len(graph_types) == 2
    for ctype in graph_types:
        injected = set(ctype["injectors"]["env"])
        assert injected <= env_names, injected - env_names
        cloud = next(f for f in ctype["inputs"]["fields"] if f["id"] == "cloud")
        assert set(cloud["choices"]) == set(graph.CLOUDS)
    secret_type = next(c for c in graph_types if "certificate" not in c["name"])
    assert secret_type["injectors"]["env"] == {
        "AZURE_TENANT_ID": "{{ tenant_id }}", "AZURE_CLIENT_ID": "{{ client_id }}",
        "AZURE_CLIENT_SECRET": "{{ client_secret }}", "M365OPS_GRAPH_CLOUD": "{{ cloud }}"}
    # graph.py refuses a secret and a certificate together: no type may inject both.
    for ctype in graph_types:
        injected = set(ctype["injectors"]["env"])
        assert not {"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"} <= injected


def test_tenant_job_template_uses_the_graph_credential(job_templates):
    configure = load(AWX / "configure_awx.yml")[0]
    tenant = next(t for t in job_templates if t["playbook"] == "tenant.yml")
    assert tenant["credentials"] == ["{{ m365_awx_graph_credential }}"]
    graph_task = next(t for t in configure["tasks"] if t["name"].startswith("Graph credential"))
    assert graph_task["awx.awx.credential"]["credential_type"] == "Microsoft Graph application (m365ops)"
    for template in job_templates:
        if template["playbook"] != "tenant.yml":
            assert template["credentials"] == ["{{ m365_awx_machine_credential }}"]


def test_certificate_credential_sets_real_connection_options(credential_types):
    import winrm.protocol
    from ansible.plugins.connection import psrp

    ctype = next(c for c in credential_types if c["name"].startswith("Windows client certificate"))
    psrp_doc = yaml.safe_load(psrp.DOCUMENTATION)
    psrp_vars = {v["name"] for o in psrp_doc["options"].values() for v in o.get("vars", [])}
    winrm_kwargs = set(inspect.signature(winrm.protocol.Protocol.__init__).parameters)
    for name in ctype["injectors"]["extra_vars"]:
        if name.startswith("ansible_psrp_"):
            assert name in psrp_vars, name
        else:
            # The winrm plugin hands ansible_winrm_<x> to pywinrm's Protocol(<x>=...).
            assert name[len("ansible_winrm_"):] in winrm_kwargs, name


def test_project_playbooks_import_the_collection_playbooks(tmp_path):
    """What AWX runs resolves: ansible-playbook --syntax-check on each project playbook."""
    import os
    import shutil
    import subprocess
    import sys

    playbook_bin = Path(sys.executable).with_name("ansible-playbook")
    if not playbook_bin.exists():
        playbook_bin = shutil.which("ansible-playbook")
    assert playbook_bin, "ansible-playbook not found next to %s or on PATH" % sys.executable
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.environ.get(
        "ANSIBLE_COLLECTIONS_PATH", str(ROOT / "build" / "collections")),
        ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_NOCOLOR="1")
    for playbook in ("diagnose.yml", "remediate.yml", "tenant.yml"):
        done = subprocess.run([str(playbook_bin), "-i", "localhost,", "--syntax-check", playbook],
                              cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def _ansible_env(tmp_path):
    import os
    return dict({k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
                ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / "build" / "collections")),
                ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_NOCOLOR="1")


def _bin(name):
    import shutil
    import sys
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else shutil.which(name)


# awx/playbooks/project_update.yml (ansible/awx): the requirement files a project sync hands to
# `ansible-galaxy ... install -r`, first found of each pair, run from the project folder.
PROJECT_SYNC_REQUIREMENTS = (
    (("roles/requirements.yml", "roles/requirements.yaml"), ["role", "install"]),
    (("collections/requirements.yml", "collections/requirements.yaml"), ["collection", "install"]),
    (("requirements.yaml", "requirements.yml"), ["install"]),
)


def test_project_syncs_without_galaxy(tmp_path):
    """Run what AWX's project update runs on the example project with Galaxy unreachable: it
    must succeed. The collections come from the execution environment
    (examples/execution-environment.yml), which carries both."""
    import subprocess
    env = dict(_ansible_env(tmp_path), ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9/",
               ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "requirements_collections"),
               ANSIBLE_ROLES_PATH=str(tmp_path / "requirements_roles"))
    for candidates, command in PROJECT_SYNC_REQUIREMENTS:
        found = next((PROJECT / c for c in candidates if (PROJECT / c).is_file()), None)
        if found is None:
            continue
        done = subprocess.run([_bin("ansible-galaxy"), *command, "-r", str(found)], cwd=PROJECT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, "%s: %s" % (found, done.stdout + done.stderr)
    ee = load(ROOT / "examples" / "execution-environment.yml")
    carried = {c["name"] for c in ee["dependencies"]["galaxy"]["collections"]}
    assert "ansible.windows" in carried
    assert any(name.startswith("collections/m365ops-activation-") for name in carried)


INVENTORY = """
m365_clients:
  hosts:
    PC042:
    PC043:
others:
  hosts:
    PC099:
"""


# Both playbooks take their hosts from the same `target` expression; each case costs an
# ansible-playbook start, so remediate gets every case and diagnose the two launch paths.
@pytest.mark.parametrize("playbook, how, args, hosts", [
    ("remediate.yml", "survey target", ["-e", "target=PC042"], ["PC042"]),
    ("remediate.yml", "limit prompt", ["--limit", "PC042"], ["PC042"]),
    ("remediate.yml", "survey default + limit", ["-e", "target=m365_clients", "--limit", "PC043"], ["PC043"]),
    ("remediate.yml", "host outside the group by name", ["-e", "target=PC099"], ["PC099"]),
    ("diagnose.yml", "survey target", ["-e", "target=PC042"], ["PC042"]),
    ("diagnose.yml", "limit prompt", ["--limit", "PC042"], ["PC042"]),
])
def test_one_host_by_name(job_templates, tmp_path, playbook, how, args, hosts):
    """AWX sends the survey answer as an extra var and the limit prompt as --limit."""
    import subprocess
    template = next(t for t in job_templates if t["playbook"] == playbook)
    assert template["ask_limit_on_launch"] is True
    assert any(q["variable"] == "target" for q in template["survey_spec"]["spec"])
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    done = subprocess.run([_bin("ansible-playbook"), "-i", str(inventory), "--list-hosts", playbook, *args],
                          cwd=PROJECT, env=_ansible_env(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Play 1 is the check before any host (on localhost:all, so it runs under any limit);
    # play 2 runs on the target.
    plays = re.split(r"\n\s*play #\d+ ", done.stdout)[1:]
    assert len(plays) == 2 and "Check the variables and the target" in plays[0], done.stdout
    listed = sorted({line.strip() for line in plays[1].splitlines() if re.fullmatch(r"\s+PC\d+", line)})
    assert listed == hosts, (how, done.stdout)
