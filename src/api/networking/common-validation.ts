// Validation of the networking messages several kinds share: ports, protocols, string matches, destinations, hosts, exportTo.
import { fieldPath, indexPath } from '../problem.js';
import {
  asInteger,
  asList,
  asNumber,
  asObject,
  asString,
  isSet,
  oneOf,
  type Checker,
  type Obj,
} from '../validation/checker.js';
import { checkLabels, fqdnProblem, isDns1123Label, isIpAddress, isKubeLabelName, wildcardDomainProblem } from '../validation/names.js';
import { regexProblem } from '../validation/regex.js';
import { PROTOCOLS } from './common.js';

/** A port number in 1..65535. */
export function checkPortNumber(c: Checker, path: string, value: unknown): number | undefined {
  return asInteger(c, path, value, 1, 65535);
}

export function checkProtocol(c: Checker, path: string, value: unknown): string | undefined {
  const s = asString(c, path, value);
  if (s === undefined || s === '') return s;
  if (!(PROTOCOLS as readonly string[]).includes(s.toUpperCase())) {
    c.report(path, `unsupported protocol ${JSON.stringify(s)}, expected one of ${PROTOCOLS.join(', ')}`);
  }
  return s;
}

/** A Port message; `need` lists what this kind requires (Gateway needs all three, Sidecar egress none). */
export function checkPort(c: Checker, path: string, value: unknown, need: { number?: boolean; name?: boolean; protocol?: boolean } = {}): Obj | undefined {
  if (!isSet(value)) {
    c.report(path, 'port is required');
    return undefined;
  }
  const port = asObject(c, path, value, ['number', 'protocol', 'name', 'targetPort']);
  if (!port) return undefined;
  if (need.number && !isSet(port.number)) c.report(fieldPath(path, 'number'), 'port number is required');
  checkPortNumber(c, fieldPath(path, 'number'), port.number);
  if (need.protocol && !isSet(port.protocol)) c.report(fieldPath(path, 'protocol'), 'protocol is required');
  checkProtocol(c, fieldPath(path, 'protocol'), port.protocol);
  const name = asString(c, fieldPath(path, 'name'), port.name);
  if (need.name && !name) c.report(fieldPath(path, 'name'), 'port name is required');
  if (name && !isDns1123Label(name)) c.report(fieldPath(path, 'name'), `invalid port name ${JSON.stringify(name)} (expected a DNS-1123 label)`);
  checkPortNumber(c, fieldPath(path, 'targetPort'), port.targetPort);
  return port;
}

/** A Percent message (`{value: 12.5}`), 0..100. */
export function checkPercent(c: Checker, path: string, value: unknown): number | undefined {
  const obj = asObject(c, path, value, ['value']);
  if (!obj) return undefined;
  const v = asNumber(c, fieldPath(path, 'value'), obj.value);
  if (v !== undefined && (v < 0 || v > 100)) c.report(fieldPath(path, 'value'), `percentage must be in the range 0..100 (got ${v})`);
  return v;
}

/** A StringMatch: at most one of exact, prefix, regex; a regex must compile. An empty match means "present". */
export function checkStringMatch(c: Checker, path: string, value: unknown, allowEmptyString = false): Obj | undefined {
  const sm = asObject(c, path, value, ['exact', 'prefix', 'regex']);
  if (!sm) return undefined;
  oneOf(c, path, sm, ['exact', 'prefix', 'regex']);
  for (const key of ['exact', 'prefix', 'regex'] as const) {
    const s = asString(c, fieldPath(path, key), sm[key]);
    if (s === '' && !allowEmptyString) c.report(fieldPath(path, key), 'must not be empty');
  }
  if (typeof sm.regex === 'string' && sm.regex !== '') {
    const problem = regexProblem(sm.regex);
    if (problem) c.report(fieldPath(path, 'regex'), problem);
  }
  return sm;
}

/** Whether two hosts overlap: equal, or one's wildcard covers the other (`*.foo.com` and `a.foo.com`). */
export function hostsOverlap(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y || x === '*' || y === '*') return true;
  if (x.startsWith('*')) {
    const suffix = x.slice(1);
    if (y.endsWith(suffix)) return true;
  }
  if (y.startsWith('*')) {
    const suffix = y.slice(1);
    if (x.endsWith(suffix)) return true;
  }
  return false;
}

/** A Destination: host (not `*`), subset (DNS label), port.number. */
export function checkDestination(c: Checker, path: string, value: unknown): Obj | undefined {
  if (!isSet(value)) {
    c.report(path, 'destination is required');
    return undefined;
  }
  const d = asObject(c, path, value, ['host', 'subset', 'port']);
  if (!d) return undefined;
  const host = asString(c, fieldPath(path, 'host'), d.host);
  if (!isSet(d.host) || host === '') c.report(fieldPath(path, 'host'), 'destination host is required');
  else if (host === '*') c.report(fieldPath(path, 'host'), 'invalid destination host "*"');
  else if (host !== undefined) {
    const problem = wildcardDomainProblem(host);
    if (problem) c.report(fieldPath(path, 'host'), problem);
  }
  const subset = asString(c, fieldPath(path, 'subset'), d.subset);
  if (subset !== undefined) checkSubsetName(c, fieldPath(path, 'subset'), subset);
  const port = asObject(c, fieldPath(path, 'port'), d.port, ['number']);
  if (port) checkPortNumber(c, fieldPath(path, 'port.number'), port.number);
  return d;
}

export function checkSubsetName(c: Checker, path: string, name: string): void {
  if (name === '') c.report(path, 'subset name cannot be empty');
  else if (!isDns1123Label(name)) c.report(path, `subset name ${JSON.stringify(name)} is invalid (expected a DNS-1123 label)`);
}

/** A host in VirtualService / ServiceEntry / DestinationRule: FQDN, short name, `*.suffix`, or (where allowed) an IP. */
export function checkHost(c: Checker, path: string, host: string, opts: { allowIp?: boolean; allowStar?: boolean } = {}): boolean {
  if (host === '*' && !opts.allowStar) {
    c.report(path, 'wildcard host "*" is not allowed here');
    return false;
  }
  const problem = wildcardDomainProblem(host);
  if (!problem) return true;
  if (opts.allowIp && isIpAddress(host)) return true;
  c.report(path, problem);
  return false;
}

/** VirtualService `gateways`: `mesh`, `namespace/name`, or a gateway name (short or FQDN). */
export function checkGatewayNames(c: Checker, path: string, value: unknown): string[] {
  const list = asList(c, path, value) ?? [];
  const out: string[] = [];
  list.forEach((item, i) => {
    const p = indexPath(path, i);
    const name = asString(c, p, item ?? '');
    if (name === undefined) return;
    out.push(name);
    const slash = name.indexOf('/');
    if (slash < 0) {
      const problem = fqdnProblem(name);
      if (problem) c.report(p, `invalid gateway name: ${problem}`);
      return;
    }
    const ns = name.slice(0, slash);
    const gw = name.slice(slash + 1);
    if (!ns || !gw) c.report(p, 'config namespace and gateway name cannot be empty');
    else {
      if (!isDns1123Label(ns)) c.report(p, `invalid value for namespace: ${JSON.stringify(ns)}`);
      if (!isDns1123Label(gw)) c.report(p, `invalid value for gateway name: ${JSON.stringify(gw)}`);
    }
  });
  return out;
}

/** `exportTo`: `.`, `*`, a namespace, or (ServiceEntry only) `~`; no duplicates; `*`/`~` alone. */
export function checkExportTo(c: Checker, path: string, value: unknown, namespace: string, isServiceEntry = false): void {
  const list = asList(c, path, value);
  if (!list) return;
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const p = indexPath(path, i);
    const e = asString(c, p, item ?? '');
    if (e === undefined) return;
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) c.report(p, e === key ? `duplicate entries in exportTo for entry ${e}` : `duplicate entries in exportTo: . and current namespace ${namespace}`);
    seen.add(key);
    if (e === '.' || e === '*') return;
    if (e === '~') {
      if (!isServiceEntry) c.report(p, 'exportTo "~" is only allowed on ServiceEntry');
      return;
    }
    if (!isKubeLabelName(e)) c.report(p, `invalid exportTo value ${JSON.stringify(e)} (expected ".", "*" or a namespace)`);
  });
  if (list.length > 1 && seen.has('*')) c.report(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (list.length > 1 && seen.has('~')) c.report(path, 'cannot export service entry to no one (~) and someone');
}

/** The networking WorkloadSelector (`workloadSelector: {labels: …}`). */
/** Istio's type.v1beta1.WorkloadSelector, `{matchLabels}` (DestinationRule, and the security kinds' `selector`). */
export function checkMatchLabelsSelector(c: Checker, path: string, value: unknown): Record<string, string> | undefined {
  const sel = asObject(c, path, value, ['matchLabels']);
  if (!sel) return undefined;
  return checkLabels(c, fieldPath(path, 'matchLabels'), sel.matchLabels, true);
}

/** Networking's WorkloadSelector, `{labels}` (Sidecar, ServiceEntry, Gateway-less selection). */
export function checkWorkloadSelector(c: Checker, path: string, value: unknown): Record<string, string> | undefined {
  const sel = asObject(c, path, value, ['labels']);
  if (!sel) return undefined;
  return checkLabels(c, fieldPath(path, 'labels'), sel.labels, true);
}
