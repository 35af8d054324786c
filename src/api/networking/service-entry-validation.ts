// ServiceEntry and WorkloadEntry validation (hosts, resolution, ports, endpoints, addresses), after Istio's rules.
import { fieldPath, indexPath, keyPath } from '../problem.js';
import { asEnum, asInteger, asObject, asString, asStringList, eachObject, isSet, type Checker, type Obj } from '../validation/checker.js';
import { checkLabels, cidrProblem, fqdnProblem, isDns1123Label, isIpAddress } from '../validation/names.js';
import { checkExportTo, checkHost, checkPort, checkPortNumber, checkWorkloadSelector } from './common-validation.js';
import { SERVICE_ENTRY_LOCATIONS, SERVICE_ENTRY_RESOLUTIONS } from './service-entry.js';

const WORKLOAD_ENTRY_FIELDS = ['address', 'ports', 'labels', 'network', 'locality', 'weight', 'serviceAccount'];
const UNIX_PREFIX = 'unix://';

export function validateServiceEntry(c: Checker, spec: unknown, namespace: string): void {
  const se = asObject(c, 'spec', spec, [
    'hosts', 'addresses', 'ports', 'location', 'resolution', 'endpoints', 'workloadSelector', 'exportTo', 'subjectAltNames',
  ]);
  if (!se) return;
  const resolution = asEnum(c, 'spec.resolution', se.resolution, SERVICE_ENTRY_RESOLUTIONS) ?? (isSet(se.resolution) ? undefined : 'NONE');
  asEnum(c, 'spec.location', se.location, SERVICE_ENTRY_LOCATIONS);

  const hosts = asStringList(c, 'spec.hosts', se.hosts) ?? [];
  if (hosts.length === 0) c.report('spec.hosts', 'service entry must have at least one host');
  hosts.forEach((h, i) => checkHost(c, indexPath('spec.hosts', i), h));

  let cidrFound = false;
  (asStringList(c, 'spec.addresses', se.addresses) ?? []).forEach((a, i) => {
    cidrFound ||= a.includes('/');
    const problem = cidrProblem(a);
    if (problem) c.report(indexPath('spec.addresses', i), problem);
  });
  if (cidrFound && resolution !== 'NONE' && resolution !== 'STATIC') c.report('spec.addresses', 'CIDR addresses are allowed only for NONE/STATIC resolution types');

  const portNames = new Map<string, number>();
  const portNumbers = new Map<number, number>();
  const protocols: string[] = [];
  eachObject(c, 'spec.ports', se.ports, ['number', 'protocol', 'name', 'targetPort'], (port, p, i) => {
    checkPort(c, p, port, { number: true, name: true });
    if (typeof port.name === 'string') {
      if (portNames.has(port.name)) c.report(fieldPath(p, 'name'), `service entry port name ${JSON.stringify(port.name)} already defined (spec.ports[${portNames.get(port.name)}])`);
      else portNames.set(port.name, i);
    }
    if (typeof port.number === 'number') {
      if (portNumbers.has(port.number)) c.report(fieldPath(p, 'number'), `service entry port ${port.number} already defined (spec.ports[${portNumbers.get(port.number)}])`);
      else portNumbers.set(port.number, i);
    }
    protocols.push(typeof port.protocol === 'string' ? port.protocol.toUpperCase() : '');
  });

  const hasSelector = isSet(se.workloadSelector);
  checkWorkloadSelector(c, 'spec.workloadSelector', se.workloadSelector);
  const endpoints = eachObject(c, 'spec.endpoints', se.endpoints, WORKLOAD_ENTRY_FIELDS, (ep, p) => {
    checkWorkloadEntryFields(c, p, ep, { resolution, portNames });
  });
  if (hasSelector && isSet(se.endpoints)) c.report('spec', 'only one of workloadSelector or endpoints is allowed in a service entry');

  switch (resolution) {
    case 'NONE':
      if (endpoints.length) c.report('spec.endpoints', 'no endpoints should be provided for resolution type NONE');
      break;
    case 'STATIC':
      if (endpoints.length === 0 && !hasSelector) c.report('spec.endpoints', 'STATIC resolution requires endpoints or a workloadSelector');
      if (endpoints.some((e) => typeof e.address === 'string' && e.address.startsWith(UNIX_PREFIX)) && portNames.size !== 1) {
        c.report('spec.ports', 'exactly 1 service port required for unix endpoints');
      }
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0 && !hasSelector) {
        hosts.forEach((h, i) => {
          if (h !== '*' && h.startsWith('*')) c.report(indexPath('spec.hosts', i), `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution}`);
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) c.report('spec.endpoints', 'DNS_ROUND_ROBIN allows at most one endpoint');
      break;
    default:
      break;
  }

  // Plain TCP carries no host name, so several hosts on one TCP port cannot be told apart (unless NONE ignores them).
  if (resolution !== 'NONE' && hosts.length > 1 && protocols.some((p) => !['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'TLS'].includes(p))) {
    c.report('spec.hosts', 'multiple hosts provided with non-HTTP, non-TLS ports');
  }

  asStringList(c, 'spec.subjectAltNames', se.subjectAltNames, false);
  checkExportTo(c, 'spec.exportTo', se.exportTo, namespace, true);
}

export function validateWorkloadEntry(c: Checker, spec: unknown): void {
  const we = asObject(c, 'spec', spec, WORKLOAD_ENTRY_FIELDS);
  if (!we) return;
  checkWorkloadEntryFields(c, 'spec', we, {});
}

/** Fields shared by WorkloadEntry and ServiceEntry endpoints; the address rule depends on the ServiceEntry's resolution. */
function checkWorkloadEntryFields(c: Checker, path: string, we: Obj, ctx: { resolution?: string; portNames?: Map<string, number> }): void {
  const at = (k: string) => fieldPath(path, k);
  const address = asString(c, at('address'), we.address);
  const network = asString(c, at('network'), we.network);
  if (!address && !network) c.report(at('address'), 'address is required (it may be empty only when network is set)');
  if (address) {
    if (address.startsWith(UNIX_PREFIX)) {
      const socket = address.slice(UNIX_PREFIX.length);
      if (!socket.startsWith('@') && (!socket.startsWith('/') || socket.endsWith('/'))) c.report(at('address'), `${socket} is not an absolute path to a file`);
      if (isSet(we.ports)) c.report(at('ports'), `unix endpoint ${address} must not include ports`);
    } else if (ctx.resolution === 'STATIC') {
      if (!isIpAddress(address)) c.report(at('address'), `${JSON.stringify(address)} is not a valid IP address (STATIC resolution needs IPs)`);
    } else if (!isIpAddress(address) && fqdnProblem(address)) {
      c.report(at('address'), `endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`);
    }
  }
  const ports = asObject(c, at('ports'), we.ports);
  for (const [name, number] of Object.entries(ports ?? {})) {
    const p = keyPath(at('ports'), name);
    if (!isDns1123Label(name)) c.report(p, `invalid port name ${JSON.stringify(name)}`);
    if (ctx.portNames && !ctx.portNames.has(name)) c.report(p, `endpoint port ${JSON.stringify(name)} is not defined by the service entry`);
    checkPortNumber(c, p, number);
  }
  checkLabels(c, at('labels'), we.labels);
  const locality = asString(c, at('locality'), we.locality);
  if (locality && (locality.split('/').length > 3 || locality.split('/').some((s) => s === ''))) {
    c.report(at('locality'), `locality ${JSON.stringify(locality)} must be region, region/zone or region/zone/subzone`);
  }
  asInteger(c, at('weight'), we.weight, 0, 4294967295);
  asString(c, at('serviceAccount'), we.serviceAccount);
}

