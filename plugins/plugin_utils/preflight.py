# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the preflight action decides before a playbook contacts any host: which variables
the collection knows, which of the given ones it does not (and the closest known name),
and how to say that a target matched no host.

A variable is known when a role of the collection declares it (meta/argument_specs.yml,
defaults/main.yml) or a template of one of its playbooks reads it (``remediate_serial``
is a play keyword's variable, ``diagnose_report`` the tenant playbook's input), or, for
the survey variables of an AWX project playbook, when a template of the running play reads
it (the project playbook's ``vars`` are the imported plays' vars). Nothing here imports
Ansible: the action plugin hands in what it read from the run.
"""

from __future__ import annotations

import difflib
import os

import jinja2
import jinja2.meta
import yaml

# Task keys whose value is a bare Jinja expression (no braces).
_EXPRESSION_KEYS = frozenset(("when", "that", "failed_when", "changed_when", "until"))


class _AnyName(dict):
    """Ansible's filters and tests, unknown to plain Jinja, whose compiler refuses a name it
    does not have; reading which variables a template uses needs none of them."""

    def __contains__(self, name):
        return True

    def __missing__(self, name):
        return _nothing

    def get(self, name, default=None):
        return self[name]


def _nothing(*args, **kwargs):
    return None


# Public: tests that read the names a template uses (tests/awx) parse with the same environment.
JINJA = jinja2.Environment()
JINJA.filters = _AnyName(JINJA.filters)
JINJA.tests = _AnyName(JINJA.tests)
# How many host names a message lists before it says how many more there are.
_NAMES_SHOWN = 3


def template_names(text):
    """The variables a template string reads; none for a plain string or one that does
    not parse (such a string is not a template Ansible could run either)."""
    if "{{" not in text and "{%" not in text:
        return set()
    # Ansible-only syntax such as tests written as filters is still Jinja; a string that
    # is not a template Ansible could run reads nothing.
    try:
        return set(jinja2.meta.find_undeclared_variables(JINJA.parse(text)))
    except jinja2.TemplateError:
        return set()


def names_read(tree, key=None, contains=None):
    """Every variable the templates in a YAML tree (or a dict of variables) read. With
    ``contains``, only strings holding that text are parsed (the cheap path over every
    variable of a run)."""
    found = set()
    if isinstance(tree, dict):
        for name, value in tree.items():
            found |= names_read(value, name, contains)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            found |= names_read(value, key, contains)
    elif isinstance(tree, str):
        if contains is not None and contains not in tree:
            return found
        if key in _EXPRESSION_KEYS and "{{" not in tree:
            tree = "{{ %s }}" % tree
        found |= template_names(str(tree))
    return found


def _load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def collection_variables(collection_root):
    """Every variable a role of the collection declares, or a playbook of it reads."""
    known = set()
    roles = os.path.join(collection_root, "roles")
    for role in sorted(os.listdir(roles)) if os.path.isdir(roles) else []:
        specs = os.path.join(roles, role, "meta", "argument_specs.yml")
        if os.path.isfile(specs):
            for spec in ((_load_yaml(specs) or {}).get("argument_specs") or {}).values():
                known |= set((spec or {}).get("options") or {})
        defaults = os.path.join(roles, role, "defaults", "main.yml")
        if os.path.isfile(defaults):
            known |= set(_load_yaml(defaults) or {})
    playbooks = os.path.join(collection_root, "playbooks")
    for name in sorted(os.listdir(playbooks)) if os.path.isdir(playbooks) else []:
        if name.endswith((".yml", ".yaml")):
            known |= names_read(_load_yaml(os.path.join(playbooks, name)))
    return known


def _prefix_of(name, prefixes):
    return next((p for p in prefixes if name.startswith(p)), None)


def closest(name, known, prefixes):
    """The known variable with the same prefix nearest to ``name``, or None. Another
    prefix's name is no suggestion: survey_reboot is not remediate_reboot."""
    prefix = _prefix_of(name, prefixes)
    if not prefix:
        return None
    # Compared without the prefix they share, which would make any two names look alike.
    pool = sorted(k[len(prefix):] for k in known if k.startswith(prefix))
    match = difflib.get_close_matches(name[len(prefix):], pool, n=1, cutoff=0.6)
    return prefix + match[0] if match else None


def unknown_variables(extra_vars, inventory_vars, known, prefixes):
    """``[{name, source, closest}]`` for each variable with one of ``prefixes`` that is not
    known, sorted by name.

    ``extra_vars`` is the names given with -e (AWX: the survey's answers and the job's extra
    variables); ``inventory_vars`` maps host -> its variable names (group_vars, host_vars,
    the inventory file; extra vars among them are attributed to the extra vars).
    """
    prefixes = tuple(prefixes)
    extra = {n for n in extra_vars if _prefix_of(n, prefixes)}
    hosts_of = {}
    for host, names in (inventory_vars or {}).items():
        for name in names:
            if _prefix_of(name, prefixes) and name not in extra:
                hosts_of.setdefault(name, []).append(host)
    out = []
    for name in sorted((extra | set(hosts_of)) - set(known)):
        if name in extra:
            source = "extra vars"
        else:
            hosts = hosts_of[name]
            source = "inventory: %s" % _listed(hosts, _NAMES_SHOWN)
        out.append({"name": name, "source": source, "closest": closest(name, known, prefixes)})
    return out


def unknown_message(unknown, prefixes):
    """One message for every unknown variable, saying where each came from and what was
    probably meant."""
    parts = []
    for item in unknown:
        if item["closest"]:
            hint = "did you mean %s?" % item["closest"]
        elif item["name"].startswith("survey_"):
            hint = "nothing in this run reads it: survey answers are read by the AWX project playbook"
        else:
            hint = "no role or playbook of m365ops.activation has it"
        parts.append("%s (%s; %s)" % (item["name"], item["source"], hint))
    plural = "s" if len(unknown) > 1 else ""
    starts = ", ".join("%s*" % p for p in prefixes)
    return ("Unknown variable%s %s. Nothing was run: a misspelled variable would be ignored and its default used. "
            "Variables with the prefixes %s are the collection's own: `ansible-doc -t role m365ops.activation.<role>` "
            "lists them." % (plural, ", ".join(parts), starts))


def _listed(names, most):
    """The first ``most`` names, and how many more there are."""
    more = " and %d more" % (len(names) - most) if len(names) > most else ""
    return ", ".join(names[:most]) + more


def no_match_message(target, limit=None, sources=None, groups=None, candidates=None, candidates_from=None):
    """Why a target matched nothing, and where to look."""
    limited = " with --limit %r" % limit if limit else ""
    if candidates is not None:
        names = sorted(candidates)
        return ("target %r matches none of the %d host(s) of %s (%s). Nothing was checked."
                % (target, len(names), candidates_from or "this run", _listed(names, 10) or "none"))
    where = ", ".join(sources or []) or "none given"
    known_groups = sorted(g for g in (groups or []) if g not in ("all", "ungrouped"))
    hint = "its groups: %s" % _listed(known_groups, 10) if known_groups else "it has no group"
    return ("target %r%s matches no host of the inventory (%s). No host was contacted. Give a group, a host name or "
            "a pattern of that inventory with -e target=... (%s; `ansible-inventory --graph` lists them all)."
            % (target, limited, where, hint))
