# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules engine: evidence (evidence.build_evidence) -> findings + a plan of rungs.

Every finding is ``{id, severity, summary, evidence, rung}``; the plan is the set of
rungs the findings ask for, sorted in ladder order (ladder.RUNGS). docs/triage.md explains
each finding id and each rung; keep the two in step.

Rules look for the *cause* before choosing a rung: a missing PRT on a device whose
broker cannot reach Entra ID gets ``fix_network_path``, not a TokenBroker reset that
would only cost a reboot.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .aad_events import ERROR_EVENT_IDS, classify_code
from .dsreg import hex_codes, lookup, parse_time, validity_window
from .ladder import PROBLEM_SEVERITIES, REBOOT_RUNGS, SEVERITIES, plan_of

# Every finding id the rules can raise; docs/triage.md explains each one.
FINDING_IDS = (
    'device_not_registered', 'scp_missing', 'drs_unreachable', 'device_not_synced', 'not_hybrid_joined',
    'hybrid_join_pending',
    'device_auth_failed', 'device_certificate_expired', 'device_recovery_pending',
    'network_blocked', 'wam_broker_errors', 'wam_account_errors', 'token_grant_rejected',
    'device_registration_refused', 'unknown_aad_errors',
    'prt_missing', 'prt_expired', 'prt_stale',
    'extra_work_accounts', 'office_credentials_cached', 'broker_plugin_broken', 'unsupported_identity_policy',
    'reduced_functionality_mode', 'no_office_license', 'reboot_pending', 'user_not_checked', 'office_not_installed',
    'events_before_repair', 'device_healthy',
)

# A PRT is refreshed every four hours while the user works (lock/unlock, sign-in);
# older than that on a device in use means refreshes are failing.
PRT_REFRESH = timedelta(hours=4)
# AAD errors older than this before collection describe a past state (the PRT and its
# tokens have been renewed since); the channel keeps them for months.
EVENT_WINDOW = timedelta(days=14)
# A hybrid join win_dsreg_join submitted is not planned again for this long after it was
# submitted (win_dsreg_join's own pending_expiry default): Entra Connect must first sync the
# computer's userCertificate (30-minute cycle) and Automatic-Device-Join retries hourly and
# at sign-in, so a younger join is still expected to complete.
HYBRID_JOIN_PENDING = timedelta(hours=24)
# Credential Manager targets Microsoft 365 Apps writes (MicrosoftOffice16_Data:SSPI:...,
# MicrosoftOffice16_Data:ADAL:...); Microsoft's 0xCAA50021 procedure removes these.
OFFICE_CREDENTIAL_PREFIX = 'microsoftoffice16'
# The repairs (host_facts.repairs, written by the rung modules) after which the AAD errors
# that ask for a rung describe replaced state. Purging the Office credentials, resetting
# the TokenBroker caches and rejoining all force a fresh sign-in, so they answer the account
# and grant errors; only the reset and the rejoin rebuild the broker state. A repair that
# needs a restart counts from the first boot after it: until then the broker still runs
# on what it had in memory.
EVENT_CUTOFF_REPAIRS = {
    'purge_office_credentials': ('purge_office_credentials', 'reset_token_broker', 'rejoin_hybrid'),
    'reset_token_broker': ('reset_token_broker', 'rejoin_hybrid'),
}
# WAM providers that are personal accounts, not work/school ones.
PERSONAL_PROVIDERS = ('msa', 'microsoft', 'microsoftaccount', 'consumers')
UNSUPPORTED_IDENTITY_VALUES = {'EnableADAL': 0, 'DisableAADWAM': 1, 'DisableADALatopWAMOverride': 1}
# The layers host_facts.network_probe names in ``blocked`` (_NetworkProbe.psm1), in the order
# a connection meets them: what an admin reads, and what to change.
PROBE_LAYERS = {
    'dns': ('DNS', 'make the names resolve in that context (DNS servers, forwarders, hosts file)'),
    'tcp': ('TCP/firewall', 'allow outbound TCP 443 to the endpoints (network and host firewall, routes)'),
    'proxy': ('the proxy', 'let the proxy open HTTPS tunnels (CONNECT) to the endpoints'),
    'proxy_auth': ('proxy authentication',
                   'exempt the endpoints from proxy authentication, or let that account authenticate '
                   '(SYSTEM authenticates as the computer account)'),
    'tls_inspection': ('TLS inspection',
                       'exempt Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy and the endpoints from TLS inspection '
                       '(the broker does not accept a re-signed chain)'),
    'tls': ('TLS', 'check the TLS handshake (protocol and cipher policy, an intercepting security agent)'),
}


def _finding(finding_id, severity, summary, evidence, rung=None):
    return {'id': finding_id, 'severity': severity, 'summary': summary,
            'evidence': list(evidence), 'rung': rung}


def _iso(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%SZ') if dt else None


def _parse_iso(value):
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.strptime(value.strip()[:19], '%Y-%m-%dT%H:%M:%S')
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc)


def _list(value):
    # host_facts.json is written by people too: a field of the wrong type reads as empty.
    return value if isinstance(value, list) else []


def _yes_no(value):
    return 'YES' if value is True else 'NO' if value is False else str(value)


class _Context:
    """Evidence plus the derived facts several rules share."""

    def __init__(self, evidence):
        if not isinstance(evidence, dict) or not isinstance(evidence.get('dsreg'), dict):
            raise ValueError('evidence: expected the dict evidence.build_evidence returns')
        self.dsreg = evidence['dsreg']
        self.events = evidence.get('events') or []
        self.facts = evidence.get('host_facts') or {}
        self.users = evidence.get('users') or []
        self.join_type = self.dsreg.get('join_type', 'workgroup')
        self.domain_joined = lookup(self.dsreg, 'domain_joined', 'device_state') is True
        self.reference = self._reference_time()
        self.code_hits = self._code_hits()
        self.hybrid_join = self._hybrid_join()
        self.repairs = self._repairs()
        # rung -> code hits newer than its cut-off (hits_for)
        self._hits_by_rung = {}

    def _reference_time(self):
        # "Now" for the evidence is when it was collected, never the wall clock: a
        # bundle triaged next month must give the same answer.
        collected = _parse_iso(self.facts.get('collected_at'))
        if collected:
            return collected
        client_time = parse_time(lookup(self.dsreg, 'client_time', 'diagnostic_data'))
        if client_time:
            return client_time
        if self.events:
            return _parse_iso(self.events[-1]['time_created'])
        return None

    def _hybrid_join(self):
        """The join win_dsreg_join submitted (host_facts.hybrid_join) on a device that is
        domain joined and not yet AzureAdJoined - the only state in which that join can still
        complete - as {record, at, age, pending}; None otherwise."""
        record = self.facts.get('hybrid_join')
        if not isinstance(record, dict) or not record.get('submitted_at'):
            return None
        if not self.domain_joined or lookup(self.dsreg, 'azure_ad_joined', 'device_state') is True:
            return None
        at = _parse_iso(record.get('submitted_at'))
        age = self.reference - at if at and self.reference else None
        # An unreadable time counts as expired, as win_dsreg_join itself treats it. With no
        # collection time the age is unknown: wait rather than rejoin a device that may be
        # about to finish its join.
        pending = bool(at) and (age is None or age < HYBRID_JOIN_PENDING)
        return {'record': record, 'at': at, 'age': age, 'pending': pending}

    def hybrid_join_evidence(self):
        join = self.hybrid_join
        record = join['record']
        line = 'host facts: hybrid join submitted at %s' % record.get('submitted_at')
        if record.get('submitted_by'):
            line += ' by %s' % record['submitted_by']
        if record.get('action'):
            line += ' (action %s)' % record['action']
        if join['age'] is not None:
            line += ', %.1f h before collection (%s)' % (join['age'].total_seconds() / 3600, _iso(self.reference))
        elif join['at'] is None:
            line += ' (not a readable time)'
        else:
            line += ' (no collection time to judge its age)'
        return line

    def _repairs(self):
        """rung -> {'at', 'effective', 'booted'} for the repairs host facts record with a
        readable time; 'effective' is when the repair took hold (the next boot for a rung
        that needs a restart, else the repair itself)."""
        records = self.facts.get('repairs')
        boot = _parse_iso(self.facts.get('last_boot'))
        out = {}
        for rung, record in (records.items() if isinstance(records, dict) else ()):
            at = _parse_iso(record.get('at')) if isinstance(record, dict) else None
            if at is None:
                continue
            booted = rung in REBOOT_RUNGS and boot is not None and boot > at
            out[rung] = {'at': at, 'effective': boot if booted else at, 'booted': booted}
        return out

    def cutoff(self, rung):
        """(time, repaired rung) before which the AAD errors asking for `rung` no longer
        count, or None."""
        best = None
        for repaired in EVENT_CUTOFF_REPAIRS.get(rung, ()):
            repair = self.repairs.get(repaired)
            if repair and (best is None or repair['effective'] > best[0]):
                best = (repair['effective'], repaired)
        return best

    def hits_for(self, rung):
        """code_hits restricted to the events after the cut-off of `rung`."""
        if rung not in self._hits_by_rung:
            cut = self.cutoff(rung)
            self._hits_by_rung[rung] = self.code_hits if cut is None else self._code_hits(since=cut[0])
        return self._hits_by_rung[rung]

    def events_left_out(self, rung, categories):
        """How many error events of `categories` the cut-off of `rung` left out."""
        def count(hits):
            return sum(seen[0] for hit in hits.values() if hit['class']['category'] in categories
                       for seen in hit['events'].values())
        return count(self.code_hits) - count(self.hits_for(rung))

    def _code_hits(self, since=None):
        """code -> {'class': classification, 'events': {id: [count, last_time]}}"""
        hits = {}
        oldest = self.reference - EVENT_WINDOW if self.reference else None
        if since and (oldest is None or since > oldest):
            oldest = since
        for event in self.events:
            if event['id'] not in ERROR_EVENT_IDS:
                continue
            if oldest and event['time_created'] < _iso(oldest):
                continue
            for code in event['codes']:
                entry = hits.get(code)
                if entry is None:
                    entry = hits[code] = {'class': classify_code(code), 'events': {}}
                seen = entry['events'].setdefault(event['id'], [0, None])
                seen[0] += 1
                seen[1] = event['time_created']
        return hits

    def codes_of(self, *categories, rung=None):
        hits = self.hits_for(rung)
        return [code for code, hit in hits.items() if hit['class']['category'] in categories]

    def event_evidence(self, codes, rung=None):
        hits = self.hits_for(rung)
        lines = []
        for code in codes:
            hit = hits[code]
            for event_id, (count, last) in sorted(hit['events'].items()):
                times = ' (x%d, last)' % count if count > 1 else ''
                lines.append('event %d %s%s at %s: %s' % (event_id, code, times, last, hit['class']['name']))
        return lines

    def ok_users(self):
        return [user for user in self.users if user.get('status', 'ok') == 'ok']

    def device_rung(self):
        """The rung that re-establishes the device's own registration."""
        if self.join_type == 'hybrid_joined':
            return 'rejoin_hybrid'
        if self.join_type == 'entra_joined':
            return 'forcerecovery_cloud_joined'
        return None


# --- device registration ---------------------------------------------------------------

def _rule_join_state(ctx, findings):
    dsreg = ctx.dsreg
    if ctx.join_type == 'workgroup':
        findings.append(_finding(
            'device_not_registered', 'info',
            'The device is neither joined to a domain or Entra ID nor registered; Office signs in '
            'with the account alone and device-based Conditional Access will not be met.',
            ['dsregcmd: AzureAdJoined = NO, DomainJoined = NO, WorkplaceJoined = %s'
             % _yes_no(lookup(dsreg, 'workplace_joined', 'user_state'))]))
        return
    if ctx.join_type != 'domain_joined':
        return

    base = ['dsregcmd: DomainJoined = YES, AzureAdJoined = NO']
    client_codes = hex_codes(lookup(dsreg, 'client_error_code', 'diagnostic_data'))
    server_codes = hex_codes(lookup(dsreg, 'server_error_code', 'diagnostic_data'))
    ad_config = lookup(dsreg, 'ad_configuration_test', 'diagnostic_data')
    drs_tests = [(name, lookup(dsreg, key, 'diagnostic_data')) for name, key in (
        ('DRS Discovery Test', 'drs_discovery_test'), ('DRS Connectivity Test', 'drs_connectivity_test'),
        ('Token acquisition Test', 'token_acquisition_test'))]
    blockers = []

    if (isinstance(ad_config, str) and ad_config.upper().startswith('FAIL')) or '0x801C001D' in client_codes:
        blockers.append('scp_missing')
        evidence = list(base)
        if isinstance(ad_config, str):
            evidence.append('dsregcmd: AD Configuration Test = %s' % ad_config)
        if client_codes:
            evidence.append('dsregcmd: Client ErrorCode = %s' % ', '.join(client_codes))
        findings.append(_finding(
            'scp_missing', 'high',
            'Hybrid join cannot read the Service Connection Point from Active Directory, so the '
            'device does not know its Entra tenant; configure the SCP (Entra Connect device '
            'options) or the client-side tenant registry keys, then let the join task retry.',
            evidence))

    network_codes = []
    failed_tests = []
    for name, value in drs_tests:
        if isinstance(value, str) and value.upper().startswith('FAIL'):
            failed_tests.append('dsregcmd: %s = %s' % (name, value))
            network_codes += [code for code in hex_codes(value)
                              if classify_code(code)['category'] == 'network']
    if failed_tests or '0x801C0021' in client_codes:
        blockers.append('drs_unreachable')
        findings.append(_finding(
            'drs_unreachable', 'high',
            'Hybrid join cannot reach the Device Registration Service '
            '(enterpriseregistration.windows.net); fix the proxy/firewall path for the SYSTEM '
            'account.',
            base + failed_tests + (['codes: %s' % ', '.join(network_codes)] if network_codes else []),
            'fix_network_path'))

    if '0x801C03F2' in client_codes + server_codes:
        blockers.append('device_not_synced')
        findings.append(_finding(
            'device_not_synced', 'medium',
            'Entra ID does not know the device object yet: for a managed domain the join completes '
            'only after Entra Connect has synced the computer\'s userCertificate (default cycle 30 '
            'minutes); wait for the sync, do not rejoin.',
            base + ['dsregcmd: error code 0x801C03F2']))

    join = ctx.hybrid_join
    evidence = base + (['dsregcmd: Previous Registration = %s' % lookup(dsreg, 'previous_registration')]
                       if lookup(dsreg, 'previous_registration') else [])
    if join:
        evidence.append(ctx.hybrid_join_evidence())
    if blockers:
        advice = ' The join is blocked (%s); rejoining before that is fixed would fail.' % ', '.join(blockers)
    elif join and join['pending']:
        advice = ' A hybrid join was submitted and may still complete; wait for it, do not rejoin.'
    else:
        advice = ' Re-run the hybrid join as SYSTEM.'
    if join and not join['pending']:
        advice += ' The hybrid join submitted at %s did not complete within %d hours.' % (
            join['record'].get('submitted_at'), HYBRID_JOIN_PENDING.total_seconds() // 3600)
    findings.append(_finding(
        'not_hybrid_joined', 'high',
        'The device is domain joined but not Entra hybrid joined, so users get no PRT and WAM '
        'sign-in to Microsoft 365 fails or prompts.' + advice,
        evidence, None if blockers or (join and join['pending']) else 'rejoin_hybrid'))

    if join and join['pending']:
        # device_not_synced is what a submitted join waits for, not a reason it cannot finish.
        stuck = [b for b in blockers if b != 'device_not_synced']
        findings.append(_finding(
            'hybrid_join_pending', 'low',
            'A hybrid join submitted by win_dsreg_join is still within the %d hours it may take '
            '(Entra Connect syncs the device every 30 minutes, the Automatic-Device-Join task '
            'retries hourly and at sign-in); it is not planned again. Restart or sign in, then '
            'diagnose again.%s' % (HYBRID_JOIN_PENDING.total_seconds() // 3600,
                                   ' It cannot complete while %s stands.' % ', '.join(stuck)
                                   if stuck else ''),
            [ctx.hybrid_join_evidence(), 'dsregcmd: DomainJoined = YES, AzureAdJoined = NO']))


def _rule_device_health(ctx, findings):
    if ctx.join_type not in ('hybrid_joined', 'entra_joined'):
        return
    dsreg = ctx.dsreg
    rung = ctx.device_rung()
    recovery = (' Recover with dsregcmd /forcerecovery while the user is present (a leave on a '
                'cloud-only device cannot be undone by /join).'
                if rung == 'forcerecovery_cloud_joined' else ' Leave and rejoin the hybrid join as SYSTEM.')

    status = lookup(dsreg, 'device_auth_status', 'device_details')
    if isinstance(status, str) and status and status.upper() != 'SUCCESS':
        findings.append(_finding(
            'device_auth_failed', 'critical',
            'The device cannot authenticate to Entra ID (its object is disabled or deleted, or its '
            'keys do not match).' + recovery,
            ['dsregcmd: DeviceAuthStatus = %s' % status], rung))

    window = validity_window(lookup(dsreg, 'device_certificate_validity', 'device_details'))
    if window and ctx.reference and window[1] < ctx.reference:
        findings.append(_finding(
            'device_certificate_expired', 'critical',
            'The device certificate has expired, so the device cannot get tokens.' + recovery,
            ['dsregcmd: DeviceCertificateValidity ends %s, evidence collected %s'
             % (_iso(window[1]), _iso(ctx.reference))], rung))

    if lookup(dsreg, 'aad_recovery_enabled', 'diagnostic_data') is True:
        findings.append(_finding(
            'device_recovery_pending', 'high',
            'Windows has marked the device keys unusable and flagged the device for recovery.' + recovery,
            ['dsregcmd: AadRecoveryEnabled = YES'], rung))


# --- network, events ------------------------------------------------------------------

def _dsreg_network_codes(dsreg):
    codes = []
    for key in ('attempt_status', 'http_error'):
        for code in hex_codes(lookup(dsreg, key, 'sso_state')):
            if classify_code(code)['category'] == 'network' and code not in codes:
                codes.append(code)
    return codes


def _probe_contexts(ctx):
    """host_facts.network_probe.contexts that are objects (the file may be hand-edited)."""
    probe = ctx.facts.get('network_probe')
    if not isinstance(probe, dict):
        return []
    return [c for c in _list(probe.get('contexts')) if isinstance(c, dict)]


def _probe_route(context):
    """How a context reached the endpoints, as the probe recorded its proxy setting."""
    proxy = context.get('proxy') if isinstance(context.get('proxy'), dict) else {}
    source, server = proxy.get('source'), proxy.get('server')
    if source == 'pac':
        return 'PAC %s' % proxy.get('pac_url')
    if source == 'auto_detect':
        return 'proxy auto-detect (WPAD)'
    if server:
        return '%s proxy %s' % ('WinHTTP' if source == 'winhttp' else 'WinINET', server)
    if source == 'unknown':
        return 'proxy unknown'
    return 'direct'


def _probe_who(context):
    if context.get('context') == 'user':
        return 'user %s' % (context.get('user') or context.get('sid') or context.get('account') or '?')
    return 'system' + (' as %s' % context['account'] if context.get('account') else '')


def _probe_evidence(ctx):
    """(blocked, evidence lines) from the network probe: blocked is [(layer, context label)]
    in the order found; the lines name each blocked endpoint, or say the probe passed."""
    blocked, lines, passed = [], [], []
    for context in _probe_contexts(ctx):
        who = _probe_who(context)
        label = 'network probe (%s, %s)' % (who, _probe_route(context))
        short = 'user context (%s)' % who[5:] if context.get('context') == 'user' else 'system context'
        if context.get('error'):
            lines.append('%s: did not run (%s)' % (label, context['error']))
            continue
        results = [r for r in _list(context.get('results')) if isinstance(r, dict)]
        found = False
        for result in results:
            layer = result.get('blocked')
            if layer in PROBE_LAYERS:
                found = True
                if (layer, short) not in blocked:
                    blocked.append((layer, short))
                endpoint = result.get('endpoint') or result.get('host')
                lines.append('%s: %s blocked at %s: %s' % (label, endpoint, PROBE_LAYERS[layer][0], result.get('detail')))
        skipped = [r for r in results if not r.get('blocked') and str(r.get('detail', '')).startswith('not probed')]
        if skipped:
            lines.append('%s: %d endpoint(s) not probed, the %s s budget ran out'
                         % (label, len(skipped), context.get('timeout_seconds')))
        if results and not found and not skipped:
            passed.append(short)
    if passed and not blocked:
        lines.append('network probe: every endpoint reached in the %s' % ', '.join(passed))
    return blocked, lines


def _probe_summary(blocked):
    """'blocked at proxy authentication in the user context (CONTOSO\\erin); ...' and the advice."""
    by_layer = {}
    for layer, short in blocked:
        by_layer.setdefault(layer, []).append(short)
    parts, advice = [], []
    for layer in PROBE_LAYERS:
        if layer in by_layer:
            parts.append('%s in the %s' % (PROBE_LAYERS[layer][0], ' and the '.join(by_layer[layer])))
            advice.append(PROBE_LAYERS[layer][1])
    return '; '.join(parts), '; '.join(advice)


def _rule_network(ctx, findings):
    codes = ctx.codes_of('network')
    evidence = ctx.event_evidence(codes)
    sources = [ctx.dsreg] + [user['dsreg'] for user in ctx.ok_users() if user.get('dsreg')]
    for dsreg in sources:
        for code in _dsreg_network_codes(dsreg):
            line = 'dsregcmd SSO State: %s (%s)' % (code, classify_code(code)['name'])
            if line not in evidence:
                evidence.append(line)
    blocked, probe_lines = _probe_evidence(ctx)
    if not evidence and not blocked:
        return False
    evidence += probe_lines
    network = ctx.facts.get('network') or {}
    proxy = network.get('proxy_server')
    winhttp = network.get('winhttp_proxy')
    # Both keys describe the one WinHTTP setting the broker uses (docs/development.md): the
    # parsed proxy when there is one, else the text as netsh prints it.
    if isinstance(proxy, str) and proxy:
        bypass = network.get('bypass_list')
        evidence.append('host facts: WinHTTP proxy %s%s' % (proxy, ' (bypass %s)' % bypass if bypass else ''))
    elif isinstance(winhttp, str) and winhttp and 'direct access' not in winhttp.lower():
        evidence.append('host facts: WinHTTP proxy %s' % winhttp)
    if blocked:
        where, advice = _probe_summary(blocked)
        summary = ('The AAD token broker cannot reach Entra ID: the network probe is blocked at %s. '
                   'Fix it before touching caches: %s.' % (where, advice))
    else:
        summary = ('The AAD token broker cannot reach Entra ID (proxy, firewall, DNS or an intercepting '
                   'security agent); allow Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy and the Entra endpoints '
                   'before touching caches.')
        if any(line.startswith('network probe: every endpoint reached') for line in probe_lines):
            summary += (' The network probe reached every endpoint, so the block is intermittent or '
                        'specific to the broker (an antivirus or a per-app firewall rule).')
    findings.append(_finding('network_blocked', 'high', summary, evidence, 'fix_network_path'))
    return True


def _rule_events(ctx, findings, network_blocked):
    broker_rung = None if network_blocked else 'reset_token_broker'
    broker = ctx.codes_of('broker', rung=broker_rung)
    if broker:
        findings.append(_finding(
            'wam_broker_errors', 'high',
            'The AAD token broker is failing for this user (the 0xCAA50021 family); '
            + ('these follow from the network failure, fix that first.' if network_blocked else
               'quarantine the TokenBroker caches so WAM rebuilds them.'),
            ctx.event_evidence(broker, rung=broker_rung), broker_rung))
    # Both answered by a fresh sign-in: purging the Office credentials.
    for category, finding_id, summary in (
            ('account', 'wam_account_errors',
             'WAM handed Office an account that does not match the signed-in user; clear the '
             'Office credentials so the right account is picked.'),
            ('grant', 'token_grant_rejected',
             'Entra ID rejected the cached grant (expired or revoked token, password change, or a '
             'wrong device clock); clear the Office credentials so a fresh sign-in happens.')):
        codes = ctx.codes_of(category, rung='purge_office_credentials')
        if codes:
            findings.append(_finding(finding_id, 'medium', summary,
                                     ctx.event_evidence(codes, rung='purge_office_credentials'),
                                     'purge_office_credentials'))
    _note_events_before_repair(ctx, findings, [(broker_rung, ('broker',)),
                                               ('purge_office_credentials', ('account', 'grant'))])
    policy = ctx.codes_of('registration_policy')
    if policy:
        findings.append(_finding(
            'device_registration_refused', 'high',
            'Entra ID refused to register the device for this user (device settings "Users may '
            'join/register devices" or the per-user device quota).',
            ctx.event_evidence(policy), 'check_device_registration_policy'))
    unknown = ctx.codes_of('unknown')
    # 1081/1104 carry HTTP and OAuth detail codes that are not failures on their own.
    unknown = [code for code in unknown if any(i in ctx.code_hits[code]['events'] for i in (1098, 1097))]
    if unknown:
        findings.append(_finding(
            'unknown_aad_errors', 'info',
            'AAD Operational errors with codes this collection does not classify; look them up '
            'before acting.', ctx.event_evidence(unknown)))


def _note_events_before_repair(ctx, findings, rungs):
    """(rung, categories) pairs -> say which AAD errors were left out because a repair came
    after them: a report that silently dropped them could not be checked against the event log."""
    evidence = []
    for rung, categories in rungs:
        cut = ctx.cutoff(rung)
        left_out = ctx.events_left_out(rung, categories) if cut else 0
        if not left_out:
            continue
        repair = ctx.repairs[cut[1]]
        when = ('the restart at %s after it was done at %s' % (_iso(repair['effective']), _iso(repair['at']))
                if repair['booted'] else _iso(repair['at']))
        evidence.append('%d AAD error event(s) logged before %s (%s) not counted for %s'
                        % (left_out, cut[1], when, rung))
    if evidence:
        findings.append(_finding(
            'events_before_repair', 'info',
            'AAD errors logged before the last repair are not counted: they describe the state the '
            'repair replaced. New errors after it would count again.', evidence))


# --- PRT --------------------------------------------------------------------------------

def _prt_sources(ctx):
    """(label, parsed dsregcmd) pairs whose SSO State speaks for a real user.

    With host facts listing users, the bundle came from win_activation_facts: its
    dsregcmd_status.txt ran over WinRM under the admin's network logon, whose SSO State
    says nothing about the users, so only their own (user-context) outputs count.
    The same holds for a live bundle with no users at all (nobody logged on, or the
    user-context step switched off): host facts then name their ``collector`` and the
    device file still ran as the admin. Only a hand-collected file, with no collector,
    speaks for the user who ran it.
    """
    sources = []
    for user in ctx.ok_users():
        if user.get('dsreg'):
            sources.append((user.get('sign_in_upn') or user.get('user') or 'user', user['dsreg']))
    collected_live = bool(ctx.facts.get('collector'))
    if not ctx.users and not collected_live and isinstance(ctx.dsreg.get('sso_state'), dict):
        # "Executing Account Name : CONTOSO\alice, alice@contoso.com": name the user by UPN.
        account = lookup(ctx.dsreg, 'executing_account_name', 'diagnostic_data')
        parts = [p.strip() for p in account.split(',')] if isinstance(account, str) else []
        label = next((p for p in parts if '@' in p), parts[0] if parts and parts[0] else 'the executing account')
        sources.append((label, ctx.dsreg))
    return sources


def _rule_prt(ctx, findings, network_blocked):
    if ctx.join_type not in ('hybrid_joined', 'entra_joined'):
        return
    device_broken = any(f['id'] in ('device_auth_failed', 'device_certificate_expired',
                                    'device_recovery_pending') for f in findings)
    for label, dsreg in _prt_sources(ctx):
        sso = dsreg.get('sso_state')
        if not isinstance(sso, dict) or 'azure_ad_prt' not in sso:
            continue
        if sso['azure_ad_prt'] is False:
            evidence = ['dsregcmd (%s): AzureAdPrt = NO' % label]
            for key, name in (('attempt_status', 'Attempt Status'), ('server_error_code', 'Server Error Code'),
                              ('server_error_description', 'Server Error Description')):
                if sso.get(key):
                    evidence.append('dsregcmd (%s): %s = %s' % (label, name, sso[key]))
            if network_blocked:
                rung, why = 'fix_network_path', 'the broker cannot reach Entra ID.'
            elif device_broken:
                rung, why = ctx.device_rung(), 'the device registration itself is broken.'
            else:
                rung, why = 'reset_token_broker', 'the broker state is suspect; reset the TokenBroker caches.'
            findings.append(_finding(
                'prt_missing', 'high',
                'No Primary Refresh Token for %s, so Office cannot sign in silently; %s' % (label, why),
                evidence, rung))
            continue
        if sso['azure_ad_prt'] is not True or ctx.reference is None:
            continue
        expiry = parse_time(sso.get('azure_ad_prt_expiry_time'))
        updated = parse_time(sso.get('azure_ad_prt_update_time'))
        if expiry and expiry < ctx.reference:
            findings.append(_finding(
                'prt_expired', 'high',
                'The Primary Refresh Token for %s has expired and is not being renewed.' % label,
                ['dsregcmd (%s): AzureAdPrtExpiryTime = %s, evidence collected %s'
                 % (label, sso.get('azure_ad_prt_expiry_time'), _iso(ctx.reference))],
                'fix_network_path' if network_blocked else 'reset_token_broker'))
        elif updated and ctx.reference - updated > PRT_REFRESH:
            findings.append(_finding(
                'prt_stale', 'low',
                'The PRT for %s was last refreshed more than four hours before collection; lock and '
                'unlock the session and check again before acting.' % label,
                ['dsregcmd (%s): AzureAdPrtUpdateTime = %s, evidence collected %s'
                 % (label, sso.get('azure_ad_prt_update_time'), _iso(ctx.reference))]))


# --- per-user host facts ----------------------------------------------------------------

def _upn(value):
    return value.strip().lower() if isinstance(value, str) else ''


def _rule_work_accounts(ctx, findings):
    evidence = []
    for user in ctx.ok_users():
        sign_in = _upn(user.get('sign_in_upn'))
        for account in _list(user.get('wam_accounts')):
            if not isinstance(account, dict):
                continue
            provider = _upn(account.get('provider'))
            upn = _upn(account.get('upn'))
            if provider in PERSONAL_PROVIDERS or not upn:
                continue
            if sign_in and upn != sign_in:
                evidence.append('host facts: %s has WAM work account %s (signs in as %s)'
                                % (user.get('user') or sign_in, account.get('upn'), user.get('sign_in_upn')))
    accounts = ctx.dsreg.get('work_accounts') or []
    tenants = []
    for account in accounts:
        tenant = account.get('workplace_tenant_id') or account.get('workplace_tenant_name')
        if tenant and tenant not in tenants:
            tenants.append(tenant)
    device_tenant = lookup(ctx.dsreg, 'tenant_id', 'tenant_details')
    foreign = [t for t in tenants if device_tenant and ctx.join_type in ('hybrid_joined', 'entra_joined')
               and t != device_tenant]
    if len(tenants) > 1 or foreign:
        names = [a.get('workplace_tenant_name') or a.get('workplace_tenant_id') for a in accounts]
        evidence.append('dsregcmd: %d Work Account boxes (%s)' % (len(accounts), ', '.join(str(n) for n in names)))
    if evidence:
        findings.append(_finding(
            'extra_work_accounts', 'medium',
            'Work/school accounts other than the Windows sign-in are connected; WAM may hand Office '
            'the wrong one. Disconnect them.', evidence, 'remove_extra_work_accounts'))


# Findings that cached Office credentials cannot cause: with only these, purging the
# credentials would cost the user a sign-in and change nothing.
_NOT_CREDENTIAL_SYMPTOMS = ('scp_missing', 'drs_unreachable', 'not_hybrid_joined', 'device_not_synced',
                            'network_blocked', 'unsupported_identity_policy')


def _rule_office_credentials(ctx, findings, network_blocked):
    symptomatic = any(f['severity'] in PROBLEM_SEVERITIES and f['id'] not in _NOT_CREDENTIAL_SYMPTOMS
                      # a PRT the network keeps from being issued is not a credential symptom
                      and not (network_blocked and f['rung'] == 'fix_network_path')
                      for f in findings)
    evidence = []
    foreign = False
    for user in ctx.ok_users():
        sign_in = _upn(user.get('sign_in_upn'))
        targets = [t for t in _list(user.get('credential_targets'))
                   if isinstance(t, str) and t.lower().startswith(OFFICE_CREDENTIAL_PREFIX)]
        for target in targets:
            other = sign_in and '@' in target and sign_in not in target.lower()
            foreign = foreign or bool(other)
            evidence.append('host facts: %s has credential %s%s' % (
                user.get('user') or sign_in, target, ' (not the sign-in account)' if other else ''))
    if evidence and (symptomatic or foreign):
        findings.append(_finding(
            'office_credentials_cached', 'medium' if foreign else 'low',
            'Microsoft 365 Apps credentials are cached in Credential Manager'
            + (' for an account other than the Windows sign-in' if foreign else '')
            + '; removing them is the first step of Microsoft\'s 0xCAA50021 procedure.',
            evidence, 'purge_office_credentials'))


def _rule_broker_plugin(ctx, findings):
    evidence = []
    plugin = ctx.facts.get('broker_plugin')
    if isinstance(plugin, dict):
        if plugin.get('installed') is False:
            evidence.append('host facts: Microsoft.AAD.BrokerPlugin is not installed')
        elif plugin.get('status') not in (None, 'Ok'):
            evidence.append('host facts: Microsoft.AAD.BrokerPlugin status %s' % plugin.get('status'))
    for user in ctx.ok_users():
        if user.get('broker_plugin_registered') is False:
            evidence.append('host facts: BrokerPlugin not registered for %s' % (user.get('user') or user.get('sid')))
    if evidence:
        findings.append(_finding(
            'broker_plugin_broken', 'high',
            'The AAD BrokerPlugin app is missing or broken, so WAM cannot issue work-account '
            'tokens; re-register it for the user.', evidence, 'reregister_broker_plugin'))


def _rule_profiles(ctx, findings):
    policy_evidence, rfm_evidence, unlicensed = [], [], []
    reference = ctx.reference
    for profile in ctx.facts.get('profiles') or []:
        who = profile.get('user') or profile.get('sid') or 'profile'
        policy = profile.get('identity_policy')
        policy = policy if isinstance(policy, dict) else {}
        for name, bad in UNSUPPORTED_IDENTITY_VALUES.items():
            if policy.get(name) == bad:
                policy_evidence.append('host facts: %s Office\\16.0\\Common\\Identity\\%s = %s' % (who, name, bad))
        licensing = profile.get('licensing')
        if isinstance(licensing, dict) and isinstance(licensing.get('licenses'), list):
            licenses = [lic for lic in licensing['licenses'] if isinstance(lic, dict)]
            if not licenses and (ctx.facts.get('office') or {}).get('installed'):
                unlicensed.append('host facts: %s has no Microsoft 365 Apps license file' % who)
            for lic in licenses:
                not_after = _parse_iso(lic.get('not_after'))
                expired = bool(reference and not_after and not_after < reference)
                if lic.get('reduced_functionality') or expired:
                    rfm_evidence.append('host facts: %s license %s not_after %s%s' % (
                        who, lic.get('product'), lic.get('not_after'),
                        ' (reduced functionality)' if lic.get('reduced_functionality') else ' (expired)'))
    for finding_id, severity, summary, evidence, rung in (
            ('unsupported_identity_policy', 'medium',
             'Office identity values Microsoft does not support are set (they force the legacy '
             'ADAL path or turn WAM off); remove them in the policy that sets them. This collection '
             'only reports them.', policy_evidence, None),
            ('reduced_functionality_mode', 'high',
             'Microsoft 365 Apps license expired or in Reduced Functionality Mode (read-only); '
             'check the user\'s license in the tenant.', rfm_evidence, 'check_license'),
            ('no_office_license', 'medium',
             'Microsoft 365 Apps is installed but the user has no license on this device; check the '
             'license assignment.', unlicensed, 'check_license')):
        if evidence:
            findings.append(_finding(finding_id, severity, summary, evidence, rung))


def _rule_host_state(ctx, findings):
    pending = ctx.facts.get('pending_reboot') or {}
    if pending.get('marker') or pending.get('windows'):
        reasons = _list(pending.get('reasons'))
        findings.append(_finding(
            'reboot_pending', 'low',
            'A reboot is pending; finish it before judging the result of earlier repairs.',
            ['host facts: pending reboot (%s)' % (', '.join(str(r) for r in reasons) or
                                                  ('collection marker' if pending.get('marker') else 'Windows'))]))
    skipped = [user for user in ctx.users if user.get('status', 'ok') != 'ok']
    if skipped:
        findings.append(_finding(
            'user_not_checked', 'info',
            'Per-user checks did not run for some users; their credentials, WAM accounts and PRT '
            'are unknown.',
            ['host facts: %s %s%s' % (user.get('user') or user.get('sid'), user.get('status'),
                                      (': %s' % (user['message'],)) if user.get('message') else '') for user in skipped]))
    office = ctx.facts.get('office') or {}
    if office.get('installed') is False:
        findings.append(_finding(
            'office_not_installed', 'info', 'Microsoft 365 Apps is not installed on this device.',
            ['host facts: office.installed = false']))


def _users(ctx):
    upns = []
    for user in ctx.users:
        upn = user.get('sign_in_upn')
        if isinstance(upn, str) and upn and upn not in upns:
            upns.append(upn)
    if not ctx.users:
        # hand-collected: the file ran in the user's own session
        account = lookup(ctx.dsreg, 'executing_account_name', 'diagnostic_data')
        if isinstance(account, str):
            for part in account.split(','):
                part = part.strip()
                if '@' in part and part not in upns:
                    upns.append(part)
    return upns


def evaluate(evidence: dict) -> dict:
    """Findings and plan for one host's evidence (see the module docstring)."""
    ctx = _Context(evidence)
    findings = []
    _rule_join_state(ctx, findings)
    _rule_device_health(ctx, findings)
    network_blocked = _rule_network(ctx, findings)
    _rule_events(ctx, findings, network_blocked)
    _rule_prt(ctx, findings, network_blocked)
    _rule_work_accounts(ctx, findings)
    _rule_broker_plugin(ctx, findings)
    _rule_profiles(ctx, findings)
    _rule_office_credentials(ctx, findings, network_blocked)
    _rule_host_state(ctx, findings)

    for finding in findings:
        # The one hard safety rule: never plan a hybrid leave/join on a device that is not
        # domain joined (on a cloud-only device /join cannot undo a /leave).
        if finding['rung'] == 'rejoin_hybrid' and not ctx.domain_joined:
            finding['rung'] = None
        # Nor a second join while the one submitted may still complete.
        if finding['rung'] == 'rejoin_hybrid' and ctx.hybrid_join and ctx.hybrid_join['pending']:
            finding['rung'] = None
    if not any(f['severity'] in PROBLEM_SEVERITIES for f in findings):
        findings.append(_finding(
            'device_healthy', 'info',
            'No problem found in the evidence: the device is %s and nothing points at WAM, the '
            'PRT, credentials, license or network.' % ctx.join_type.replace('_', ' '),
            ['dsregcmd: join type %s' % ctx.join_type]))
    findings.sort(key=lambda f: SEVERITIES.index(f['severity']))

    plan = plan_of(findings)
    dsreg = ctx.dsreg
    return {
        'join_type': ctx.join_type,
        'device_id': lookup(dsreg, 'device_id', 'device_details'),
        'device_name': lookup(dsreg, 'device_name', 'device_state') or ctx.facts.get('hostname'),
        'tenant_name': lookup(dsreg, 'tenant_name', 'tenant_details') or None,
        'users': _users(ctx),
        'findings': findings,
        'plan': plan,
    }


def reference_time(evidence: dict):
    """The moment the evidence is judged at (an aware datetime, or None): when it was
    collected, never the wall clock - see _Context._reference_time."""
    return _Context(evidence).reference
