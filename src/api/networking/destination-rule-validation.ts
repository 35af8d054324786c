// DestinationRule validation (traffic policy, load balancer, connection pool, outlier detection, TLS, subsets), after Istio's rules.
import { fieldPath, keyPath } from '../problem.js';
import {
  asBoolean,
  asDuration,
  asEnum,
  asInteger,
  asList,
  asObject,
  asString,
  asStringList,
  eachObject,
  isSet,
  oneOf,
  type Checker,
  type Obj,
} from '../validation/checker.js';
import { checkLabels } from '../validation/names.js';
import { checkExportTo, checkHost, checkPortNumber, checkSubsetName, checkMatchLabelsSelector } from './common-validation.js';
import { CLIENT_TLS_MODES, SIMPLE_LB } from './destination-rule.js';
import { localityMatch, parseLocality, TOPOLOGY_LABELS } from './locality.js';

const POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'];

export function validateDestinationRule(c: Checker, spec: unknown, namespace: string): void {
  const dr = asObject(c, 'spec', spec, ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector']);
  if (!dr) return;
  const host = asString(c, 'spec.host', dr.host);
  if (!isSet(dr.host) || host === '') c.report('spec.host', 'host is required');
  else if (host !== undefined) checkHost(c, 'spec.host', host, { allowStar: true });

  checkTrafficPolicy(c, 'spec.trafficPolicy', dr.trafficPolicy);

  const seen = new Map<string, number>();
  eachObject(c, 'spec.subsets', dr.subsets, ['name', 'labels', 'trafficPolicy'], (subset, p, i) => {
    const name = asString(c, fieldPath(p, 'name'), subset.name);
    if (!isSet(subset.name)) c.report(fieldPath(p, 'name'), 'subset name is required');
    else if (name !== undefined) {
      checkSubsetName(c, fieldPath(p, 'name'), name);
      const first = seen.get(name);
      if (first !== undefined) c.report(fieldPath(p, 'name'), `duplicate subset name ${JSON.stringify(name)} (also spec.subsets[${first}])`);
      else seen.set(name, i);
    }
    checkLabels(c, fieldPath(p, 'labels'), subset.labels);
    checkTrafficPolicy(c, fieldPath(p, 'trafficPolicy'), subset.trafficPolicy);
  });

  checkExportTo(c, 'spec.exportTo', dr.exportTo, namespace);
  checkMatchLabelsSelector(c, 'spec.workloadSelector', dr.workloadSelector);
}

export function checkTrafficPolicy(c: Checker, path: string, value: unknown): void {
  const tp = asObject(c, path, value, [...POLICY_FIELDS, 'portLevelSettings', 'tunnel', 'proxyProtocol']);
  if (!tp) return;
  if (!Object.values(tp).some(isSet)) c.report(path, 'traffic policy must have at least one field');
  checkPolicyParts(c, path, tp);
  eachObject(c, fieldPath(path, 'portLevelSettings'), tp.portLevelSettings, ['port', ...POLICY_FIELDS], (pl, p) => {
    const port = asObject(c, fieldPath(p, 'port'), pl.port, ['number']);
    if (!port || !isSet(port.number)) c.report(fieldPath(p, 'port'), 'portLevelSettings entry must have a port number');
    else checkPortNumber(c, fieldPath(p, 'port.number'), port.number);
    if (!POLICY_FIELDS.some((k) => isSet(pl[k]))) c.report(p, 'port traffic policy must have at least one field');
    checkPolicyParts(c, p, pl);
  });
  const tunnel = asObject(c, fieldPath(path, 'tunnel'), tp.tunnel, ['protocol', 'targetHost', 'targetPort']);
  if (tunnel) {
    asEnum(c, fieldPath(path, 'tunnel.protocol'), tunnel.protocol, ['CONNECT', 'POST']);
    if (!asString(c, fieldPath(path, 'tunnel.targetHost'), tunnel.targetHost)) c.report(fieldPath(path, 'tunnel.targetHost'), 'targetHost is required');
    if (!isSet(tunnel.targetPort)) c.report(fieldPath(path, 'tunnel.targetPort'), 'targetPort is required');
    else checkPortNumber(c, fieldPath(path, 'tunnel.targetPort'), tunnel.targetPort);
  }
  const pp = asObject(c, fieldPath(path, 'proxyProtocol'), tp.proxyProtocol, ['version']);
  if (pp) asEnum(c, fieldPath(path, 'proxyProtocol.version'), pp.version, ['V1', 'V2']);
}

function checkPolicyParts(c: Checker, path: string, tp: Obj): void {
  checkLoadBalancer(c, fieldPath(path, 'loadBalancer'), tp.loadBalancer);
  checkConnectionPool(c, fieldPath(path, 'connectionPool'), tp.connectionPool);
  checkOutlierDetection(c, fieldPath(path, 'outlierDetection'), tp.outlierDetection);
  checkClientTls(c, fieldPath(path, 'tls'), tp.tls);
}

export function checkLoadBalancer(c: Checker, path: string, value: unknown): void {
  const lb = asObject(c, path, value, ['simple', 'consistentHash', 'localityLbSetting', 'warmupDurationSecs']);
  if (!lb) return;
  oneOf(c, path, lb, ['simple', 'consistentHash']);
  asEnum(c, fieldPath(path, 'simple'), lb.simple, SIMPLE_LB);
  const chPath = fieldPath(path, 'consistentHash');
  const ch = asObject(c, chPath, lb.consistentHash, [
    'httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize',
  ]);
  if (ch) {
    const keys = oneOf(c, chPath, ch, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']);
    if (keys.length === 0) c.report(chPath, 'consistentHash needs one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName');
    const header = asString(c, fieldPath(chPath, 'httpHeaderName'), ch.httpHeaderName);
    if (header === '') c.report(fieldPath(chPath, 'httpHeaderName'), 'header name cannot be empty');
    const qp = asString(c, fieldPath(chPath, 'httpQueryParameterName'), ch.httpQueryParameterName);
    if (qp === '') c.report(fieldPath(chPath, 'httpQueryParameterName'), 'query parameter name cannot be empty');
    const useSourceIp = asBoolean(c, fieldPath(chPath, 'useSourceIp'), ch.useSourceIp);
    if (useSourceIp === false && keys.length === 1 && keys[0] === 'useSourceIp') c.report(fieldPath(chPath, 'useSourceIp'), 'useSourceIp: false selects no hash key');
    const cookiePath = fieldPath(chPath, 'httpCookie');
    const cookie = asObject(c, cookiePath, ch.httpCookie, ['name', 'path', 'ttl']);
    if (cookie) {
      if (!asString(c, fieldPath(cookiePath, 'name'), cookie.name)) c.report(fieldPath(cookiePath, 'name'), 'name required for HttpCookie');
      asString(c, fieldPath(cookiePath, 'path'), cookie.path);
      if (!isSet(cookie.ttl)) c.report(fieldPath(cookiePath, 'ttl'), 'ttl required for HttpCookie');
      else asDuration(c, fieldPath(cookiePath, 'ttl'), cookie.ttl, 0);
    }
    const algorithms = oneOf(c, chPath, ch, ['ringHash', 'maglev']);
    if (algorithms.length && isSet(ch.minimumRingSize)) c.report(fieldPath(chPath, 'minimumRingSize'), 'minimumRingSize is deprecated; it cannot be combined with ringHash or maglev');
    const ring = asObject(c, fieldPath(chPath, 'ringHash'), ch.ringHash, ['minimumRingSize']);
    if (ring) asInteger(c, fieldPath(chPath, 'ringHash.minimumRingSize'), ring.minimumRingSize, 0);
    const maglev = asObject(c, fieldPath(chPath, 'maglev'), ch.maglev, ['tableSize']);
    if (maglev) {
      const size = asInteger(c, fieldPath(chPath, 'maglev.tableSize'), maglev.tableSize, 0);
      if (size !== undefined && size > 0 && !isPrime(size)) c.report(fieldPath(chPath, 'maglev.tableSize'), `maglev table size must be a prime number (got ${size})`);
    }
    asInteger(c, fieldPath(chPath, 'minimumRingSize'), ch.minimumRingSize, 0);
  }
  checkLocalityLb(c, fieldPath(path, 'localityLbSetting'), lb.localityLbSetting);
  asDuration(c, fieldPath(path, 'warmupDurationSecs'), lb.warmupDurationSecs);
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function checkLocalityLb(c: Checker, path: string, value: unknown): void {
  const l = asObject(c, path, value, ['distribute', 'failover', 'failoverPriority', 'enabled']);
  if (!l) return;
  asBoolean(c, fieldPath(path, 'enabled'), l.enabled);
  const distribute = asList(c, fieldPath(path, 'distribute'), l.distribute);
  const failover = asList(c, fieldPath(path, 'failover'), l.failover);
  if (distribute?.length && failover?.length) c.report(path, "can not simultaneously specify 'distribute' and 'failover'");
  const froms: string[] = [];
  eachObject(c, fieldPath(path, 'distribute'), distribute, ['from', 'to'], (d, p) => {
    checkLocality(c, fieldPath(p, 'from'), d.from);
    // Istio: a caller must match one rule at most, so no `from` may match an earlier one or be matched by it (each
    // read as a locality the other's pattern is matched against, as callers are).
    if (typeof d.from === 'string') {
      const from = d.from;
      if (froms.some((earlier) => localityMatch(parseLocality(from), earlier) || localityMatch(parseLocality(earlier), from))) c.report(fieldPath(p, 'from'), `locality ${from} overlap with previous specified ones`);
      froms.push(from);
    }
    const to = asObject(c, fieldPath(p, 'to'), d.to);
    let total = 0;
    for (const [loc, w] of Object.entries(to ?? {})) {
      checkLocality(c, keyPath(fieldPath(p, 'to'), loc), loc);
      const weight = asInteger(c, keyPath(fieldPath(p, 'to'), loc), w, 1, 100);
      total += weight ?? 0;
    }
    if (to && total !== 100) c.report(fieldPath(p, 'to'), `total locality weight must be 100 (got ${total})`);
  });
  eachObject(c, fieldPath(path, 'failover'), failover, ['from', 'to'], (f, p) => {
    const from = asString(c, fieldPath(p, 'from'), f.from);
    const to = asString(c, fieldPath(p, 'to'), f.to);
    if (from !== undefined && from === to) c.report(p, 'locality lb failover settings must specify different regions');
    if (to?.includes('*')) c.report(fieldPath(p, 'to'), "locality lb failover region should not contain '*' wildcard");
  });
  const priorities = asStringList(c, fieldPath(path, 'failoverPriority'), l.failoverPriority, false);
  // Istio: `failover` already ranks by region, zone and subzone; naming a topology label as well is contradictory.
  if (failover?.length && priorities) {
    const topology = priorities.find((p) => TOPOLOGY_LABELS.includes(p.split('=')[0]!));
    if (topology !== undefined) c.report(fieldPath(path, 'failoverPriority'), `can not simultaneously set 'failover' and topology label '${topology}' in 'failover_priority'`);
  }
}

function checkLocality(c: Checker, path: string, value: unknown): void {
  const loc = asString(c, path, value);
  if (loc === undefined) return;
  const stars = loc.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !loc.endsWith('*'))) c.report(path, `locality ${loc} wildcard '*' number can not exceed 1 and must be in the end`);
  if (loc.split('/').some((part) => part === '')) c.report(path, `locality ${loc} must not contain empty region/zone/subzone info`);
}

export function checkConnectionPool(c: Checker, path: string, value: unknown): void {
  const cp = asObject(c, path, value, ['tcp', 'http']);
  if (!cp) return;
  if (!isSet(cp.tcp) && !isSet(cp.http)) c.report(path, 'connection pool must have at least one field');
  const tp = fieldPath(path, 'tcp');
  const tcp = asObject(c, tp, cp.tcp, ['maxConnections', 'connectTimeout', 'tcpKeepalive', 'maxConnectionDuration', 'idleTimeout']);
  if (tcp) {
    asInteger(c, fieldPath(tp, 'maxConnections'), tcp.maxConnections, 0);
    asDuration(c, fieldPath(tp, 'connectTimeout'), tcp.connectTimeout);
    asDuration(c, fieldPath(tp, 'maxConnectionDuration'), tcp.maxConnectionDuration);
    asDuration(c, fieldPath(tp, 'idleTimeout'), tcp.idleTimeout, 0);
    const ka = asObject(c, fieldPath(tp, 'tcpKeepalive'), tcp.tcpKeepalive, ['probes', 'time', 'interval']);
    if (ka) {
      asInteger(c, fieldPath(tp, 'tcpKeepalive.probes'), ka.probes, 0);
      asDuration(c, fieldPath(tp, 'tcpKeepalive.time'), ka.time);
      asDuration(c, fieldPath(tp, 'tcpKeepalive.interval'), ka.interval);
    }
  }
  const hp = fieldPath(path, 'http');
  const http = asObject(c, hp, cp.http, [
    'http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeout', 'h2UpgradePolicy',
    'useClientProtocol', 'maxConcurrentStreams',
  ]);
  if (http) {
    for (const k of ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']) {
      asInteger(c, fieldPath(hp, k), http[k], 0);
    }
    asDuration(c, fieldPath(hp, 'idleTimeout'), http.idleTimeout);
    asEnum(c, fieldPath(hp, 'h2UpgradePolicy'), http.h2UpgradePolicy, ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']);
    asBoolean(c, fieldPath(hp, 'useClientProtocol'), http.useClientProtocol);
  }
}

function checkOutlierDetection(c: Checker, path: string, value: unknown): void {
  const od = asObject(c, path, value, [
    'consecutiveErrors', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures', 'consecutiveGatewayErrors',
    'consecutive5xxErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent',
  ]);
  if (!od) return;
  for (const k of ['consecutiveErrors', 'consecutiveLocalOriginFailures', 'consecutiveGatewayErrors', 'consecutive5xxErrors']) {
    asInteger(c, fieldPath(path, k), od[k], 0);
  }
  const split = asBoolean(c, fieldPath(path, 'splitExternalLocalOriginErrors'), od.splitExternalLocalOriginErrors);
  if (isSet(od.consecutiveLocalOriginFailures) && !split) {
    c.report(fieldPath(path, 'consecutiveLocalOriginFailures'), 'consecutiveLocalOriginFailures requires splitExternalLocalOriginErrors: true');
  }
  asDuration(c, fieldPath(path, 'interval'), od.interval);
  asDuration(c, fieldPath(path, 'baseEjectionTime'), od.baseEjectionTime);
  for (const k of ['maxEjectionPercent', 'minHealthPercent']) {
    const v = asInteger(c, fieldPath(path, k), od[k]);
    if (v !== undefined && (v < 0 || v > 100)) c.report(fieldPath(path, k), `percentage ${v} is not in range 0..100`);
  }
}

export function checkClientTls(c: Checker, path: string, value: unknown): void {
  const tls = asObject(c, path, value, [
    'mode', 'clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'subjectAltNames', 'sni', 'insecureSkipVerify', 'caCrl',
  ]);
  if (!tls) return;
  const mode = asEnum(c, fieldPath(path, 'mode'), tls.mode, CLIENT_TLS_MODES);
  const str = (k: string) => asString(c, fieldPath(path, k), tls[k]) ?? '';
  const clientCertificate = str('clientCertificate');
  const privateKey = str('privateKey');
  const caCertificates = str('caCertificates');
  const credentialName = str('credentialName');
  str('sni');
  str('caCrl');
  asStringList(c, fieldPath(path, 'subjectAltNames'), tls.subjectAltNames, false);
  asBoolean(c, fieldPath(path, 'insecureSkipVerify'), tls.insecureSkipVerify);
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && credentialName) {
    if (clientCertificate || caCertificates || privateKey) c.report(path, 'cannot specify client certificates or CA certificate if credentialName is set');
    return;
  }
  if (mode === 'MUTUAL') {
    if (!clientCertificate) c.report(fieldPath(path, 'clientCertificate'), 'client certificate required for mutual tls');
    if (!privateKey) c.report(fieldPath(path, 'privateKey'), 'private key required for mutual tls');
  }
  if (mode === 'ISTIO_MUTUAL' || mode === 'DISABLE') {
    for (const [k, v] of [['clientCertificate', clientCertificate], ['privateKey', privateKey], ['caCertificates', caCertificates], ['credentialName', credentialName]] as const) {
      if (v) c.report(fieldPath(path, k), `${k} cannot be set with tls mode ${mode}`);
    }
  }
}

