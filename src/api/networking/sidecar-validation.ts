// Sidecar validation (egress hosts `namespace/host`, ingress default endpoints, unique ports), after Istio's rules.
import { fieldPath, indexPath } from '../problem.js';
import { asEnum, asObject, asString, asStringList, eachObject, isSet, type Checker } from '../validation/checker.js';
import { isDns1123Label, isIpAddress, wildcardDomainProblem } from '../validation/names.js';
import { checkPort, checkPortNumber, checkWorkloadSelector } from './common-validation.js';
import { checkConnectionPool } from './destination-rule-validation.js';
import { CAPTURE_MODES, OUTBOUND_TRAFFIC_MODES } from './sidecar.js';

export function validateSidecar(c: Checker, spec: unknown): void {
  const sc = asObject(c, 'spec', spec, ['workloadSelector', 'ingress', 'egress', 'inboundConnectionPool', 'outboundTrafficPolicy']);
  if (!sc) return;
  checkWorkloadSelector(c, 'spec.workloadSelector', sc.workloadSelector);

  const ingressPorts = new Set<number>();
  eachObject(c, 'spec.ingress', sc.ingress, ['port', 'bind', 'captureMode', 'defaultEndpoint', 'tls', 'connectionPool'], (l, p) => {
    const port = checkPort(c, fieldPath(p, 'port'), l.port, { number: true });
    if (port && typeof port.number === 'number') {
      if (ingressPorts.has(port.number)) c.report(fieldPath(p, 'port.number'), 'sidecar: ports on IP bound listeners must be unique');
      ingressPorts.add(port.number);
    }
    checkBind(c, fieldPath(p, 'bind'), l.bind);
    asEnum(c, fieldPath(p, 'captureMode'), l.captureMode, CAPTURE_MODES);
    const endpoint = asString(c, fieldPath(p, 'defaultEndpoint'), l.defaultEndpoint);
    if (endpoint) checkDefaultEndpoint(c, fieldPath(p, 'defaultEndpoint'), endpoint);
    asObject(c, fieldPath(p, 'tls'), l.tls);
    checkConnectionPool(c, fieldPath(p, 'connectionPool'), l.connectionPool);
  });

  const egressPorts = new Set<number>();
  const egress = eachObject(c, 'spec.egress', sc.egress, ['port', 'bind', 'captureMode', 'hosts'], (l, p, i) => {
    if (!isSet(l.port)) {
      if (i !== (sc.egress as unknown[]).length - 1) c.report(p, 'sidecar: the egress listener with empty port should be the last listener in the list');
    } else {
      const port = checkPort(c, fieldPath(p, 'port'), l.port, { number: true });
      if (port && typeof port.number === 'number') {
        if (egressPorts.has(port.number)) c.report(fieldPath(p, 'port.number'), 'sidecar: ports on IP bound listeners must be unique');
        egressPorts.add(port.number);
      }
    }
    checkBind(c, fieldPath(p, 'bind'), l.bind);
    asEnum(c, fieldPath(p, 'captureMode'), l.captureMode, CAPTURE_MODES);
    const hosts = asStringList(c, fieldPath(p, 'hosts'), l.hosts) ?? [];
    if (hosts.length === 0) c.report(fieldPath(p, 'hosts'), 'sidecar: egress listener must contain at least one host');
    hosts.forEach((h, hi) => checkEgressHost(c, indexPath(fieldPath(p, 'hosts'), hi), h));
  });
  if (egress.length === 0 && isSet(sc.egress)) c.report('spec.egress', 'sidecar: egress must have at least one listener when set');

  checkConnectionPool(c, 'spec.inboundConnectionPool', sc.inboundConnectionPool);
  const otp = asObject(c, 'spec.outboundTrafficPolicy', sc.outboundTrafficPolicy, ['mode', 'egressProxy']);
  if (otp) {
    const mode = asEnum(c, 'spec.outboundTrafficPolicy.mode', otp.mode, OUTBOUND_TRAFFIC_MODES);
    const proxy = asObject(c, 'spec.outboundTrafficPolicy.egressProxy', otp.egressProxy, ['host', 'subset', 'port']);
    if (proxy) {
      if (mode !== 'ALLOW_ANY') c.report('spec.outboundTrafficPolicy.egressProxy', 'sidecar: egressProxy must be set only with ALLOW_ANY outboundTrafficPolicy mode');
      const host = asString(c, 'spec.outboundTrafficPolicy.egressProxy.host', proxy.host);
      if (!host) c.report('spec.outboundTrafficPolicy.egressProxy.host', 'egressProxy host is required');
      const port = asObject(c, 'spec.outboundTrafficPolicy.egressProxy.port', proxy.port, ['number']);
      if (!port) c.report('spec.outboundTrafficPolicy.egressProxy.port', 'sidecar: egressProxy port must be set');
      else checkPortNumber(c, 'spec.outboundTrafficPolicy.egressProxy.port.number', port.number);
    }
  }
}

function checkBind(c: Checker, path: string, value: unknown): void {
  const bind = asString(c, path, value);
  if (bind && !bind.startsWith('unix://') && !isIpAddress(bind)) c.report(path, `${JSON.stringify(bind)} is not a valid IP`);
}

function checkDefaultEndpoint(c: Checker, path: string, endpoint: string): void {
  if (endpoint.startsWith('unix://')) return;
  const colon = endpoint.lastIndexOf(':');
  const host = colon < 0 ? '' : endpoint.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = colon < 0 ? '' : endpoint.slice(colon + 1);
  if (colon < 0 || (host !== '' && !['127.0.0.1', '0.0.0.0', '::1', '::'].includes(host))) {
    c.report(path, 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, or unix://filepath');
    return;
  }
  if (!/^[0-9]+$/.test(port)) c.report(path, `sidecar: defaultEndpoint port (${port}) is not a number`);
  else checkPortNumber(c, path, Number(port));
}

/** `namespace/dnsName`: namespace `*`, `.`, `~` or a label; dnsName `*`, `*.suffix` or an FQDN. */
function checkEgressHost(c: Checker, path: string, value: string): void {
  const slash = value.indexOf('/');
  if (slash < 0) {
    c.report(path, 'host must be of form namespace/dnsName');
    return;
  }
  const ns = value.slice(0, slash);
  const host = value.slice(slash + 1);
  if (!ns || !host) {
    c.report(path, 'config namespace and dnsName in host entry cannot be empty');
    return;
  }
  if (!['*', '.', '~'].includes(ns) && !isDns1123Label(ns)) c.report(path, `invalid namespace value ${JSON.stringify(ns)} in sidecar`);
  if (host !== '*' && !host.includes('.')) c.report(path, `short names (non FQDN) are not allowed: ${JSON.stringify(host)}`);
  else if (host !== '*') {
    const problem = wildcardDomainProblem(host);
    if (problem) c.report(path, problem);
  }
}
