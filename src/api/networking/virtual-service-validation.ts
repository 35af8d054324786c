// VirtualService validation, rule for rule after Istio's pkg/config/validation (virtualservice.go, validation.go).
import { fieldPath, indexPath, keyPath } from '../problem.js';
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
import { checkLabels, cidrProblem, isDns1123Label } from '../validation/names.js';
import { regexProblem } from '../validation/regex.js';
import {
  checkDestination,
  checkExportTo,
  checkGatewayNames,
  checkHost,
  checkPercent,
  checkPortNumber,
  checkStringMatch,
  hostsOverlap,
} from './common-validation.js';

const VS_FIELDS = ['hosts', 'gateways', 'http', 'tls', 'tcp', 'exportTo'];
const HTTP_ROUTE_FIELDS = [
  'name', 'match', 'route', 'redirect', 'directResponse', 'delegate', 'rewrite', 'timeout', 'retries', 'fault',
  'mirror', 'mirrors', 'mirrorPercentage', 'mirrorPercent', 'mirror_percent', 'corsPolicy', 'headers',
];
const HTTP_MATCH_FIELDS = [
  'name', 'uri', 'scheme', 'method', 'authority', 'headers', 'port', 'sourceLabels', 'gateways', 'queryParams',
  'ignoreUriCase', 'withoutHeaders', 'sourceNamespace', 'statPrefix',
];
const L4_MATCH_FIELDS = ['destinationSubnets', 'port', 'sourceLabels', 'gateways', 'sourceNamespace'];

/** Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions, as Istio accepts them in retryOn. */
export const RETRY_ON_POLICIES = [
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
];

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE'];
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const GRPC_STATUSES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
];

export function validateVirtualService(c: Checker, spec: unknown, namespace: string): void {
  const vs = asObject(c, 'spec', spec, VS_FIELDS);
  if (!vs) return;

  const gateways = checkGatewayNames(c, 'spec.gateways', vs.gateways);
  const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');

  const hosts = asStringList(c, 'spec.hosts', vs.hosts) ?? [];
  if (hosts.length === 0) c.report('spec.hosts', 'virtual service must have at least one host (delegate VirtualServices are not supported)');
  const validHosts: [string, number][] = [];
  hosts.forEach((host, i) => {
    const p = indexPath('spec.hosts', i);
    if (host === '*' && appliesToMesh) {
      c.report(p, 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      return;
    }
    if (checkHost(c, p, host, { allowIp: true, allowStar: true })) validHosts.push([host, i]);
  });
  for (let i = 0; i < validHosts.length; i++) {
    for (let j = i + 1; j < validHosts.length; j++) {
      const [a] = validHosts[i]!;
      const [b, bi] = validHosts[j]!;
      if (hostsOverlap(a, b)) c.report(indexPath('spec.hosts', bi), `duplicate hosts in virtual service: ${a} & ${b}`);
    }
  }

  const http = asList(c, 'spec.http', vs.http);
  const tcp = asList(c, 'spec.tcp', vs.tcp);
  const tls = asList(c, 'spec.tls', vs.tls);
  if (!http?.length && !tcp?.length && !tls?.length) c.report('spec', 'http, tcp or tls must be provided in virtual service');

  eachObject(c, 'spec.http', http, HTTP_ROUTE_FIELDS, (route, p) => validateHTTPRoute(c, p, route));
  eachObject(c, 'spec.tcp', tcp, ['match', 'route'], (route, p) => {
    eachObject(c, fieldPath(p, 'match'), route.match, L4_MATCH_FIELDS, (m, mp) => validateL4Match(c, mp, m));
    validateRouteDestinations(c, fieldPath(p, 'route'), route.route, false, 'TCP route is required');
  });
  eachObject(c, 'spec.tls', tls, ['match', 'route'], (route, p) => {
    const matches = asList(c, fieldPath(p, 'match'), route.match);
    if (!matches?.length) c.report(fieldPath(p, 'match'), 'TLS route must have at least one match condition');
    eachObject(c, fieldPath(p, 'match'), matches, [...L4_MATCH_FIELDS, 'sniHosts'], (m, mp) => {
      validateL4Match(c, mp, m);
      const sni = asStringList(c, fieldPath(mp, 'sniHosts'), m.sniHosts) ?? [];
      if (sni.length === 0) c.report(fieldPath(mp, 'sniHosts'), 'TLS match must have at least one SNI host');
      sni.forEach((h, i) => {
        const hp = indexPath(fieldPath(mp, 'sniHosts'), i);
        if (!checkHost(c, hp, h, { allowIp: true, allowStar: true })) return;
        if (hosts.length > 0 && !hosts.some((vh) => hostsOverlap(h, vh))) {
          c.report(hp, `SNI host ${JSON.stringify(h)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
        }
      });
    });
    validateRouteDestinations(c, fieldPath(p, 'route'), route.route, false, 'TLS route is required');
  });

  checkExportTo(c, 'spec.exportTo', vs.exportTo, namespace);
}

function validateHTTPRoute(c: Checker, path: string, route: Obj): void {
  const at = (k: string) => fieldPath(path, k);
  const hasRoute = Array.isArray(route.route) && route.route.length > 0;
  const hasRedirect = isSet(route.redirect);
  const hasDirect = isSet(route.directResponse);
  if (isSet(route.delegate)) c.report(at('delegate'), 'delegate is not supported by Trellis');
  if (hasRedirect) {
    if (hasRoute) c.report(path, 'HTTP route cannot contain both route and redirect');
    if (isSet(route.fault)) c.report(path, 'HTTP route cannot contain both fault and redirect');
    if (isSet(route.rewrite)) c.report(path, 'HTTP route rule cannot contain both rewrite and redirect');
    if (hasDirect) c.report(path, 'HTTP route rule cannot contain both direct_response and redirect');
  } else if (hasDirect) {
    if (hasRoute) c.report(path, 'HTTP route cannot contain both route and direct_response');
    if (isSet(route.fault)) c.report(path, 'HTTP route cannot contain both fault and direct_response');
    if (isSet(route.rewrite)) c.report(path, 'HTTP route rule cannot contain both rewrite and direct_response');
  } else if (!hasRoute && !isSet(route.delegate)) {
    c.report(at('route'), 'HTTP route, redirect or direct_response is required');
  }
  if (isSet(route.mirror) && isSet(route.mirrors)) c.report(path, 'HTTP route cannot contain both mirror and mirrors');

  asString(c, at('name'), route.name);
  eachObject(c, at('match'), route.match, HTTP_MATCH_FIELDS, (m, mp) => validateHTTPMatch(c, mp, m));
  validateRouteDestinations(c, at('route'), route.route, true);
  validateHeaders(c, at('headers'), route.headers);
  validateRedirect(c, at('redirect'), route.redirect);
  validateDirectResponse(c, at('directResponse'), route.directResponse);
  validateRewrite(c, at('rewrite'), route.rewrite);
  asDuration(c, at('timeout'), route.timeout);
  validateRetries(c, at('retries'), route.retries);
  validateFault(c, at('fault'), route.fault);
  if (isSet(route.mirror)) checkDestination(c, at('mirror'), route.mirror);
  eachObject(c, at('mirrors'), route.mirrors, ['destination', 'percentage'], (m, mp) => {
    checkDestination(c, fieldPath(mp, 'destination'), m.destination);
    checkPercent(c, fieldPath(mp, 'percentage'), m.percentage);
  });
  checkPercent(c, at('mirrorPercentage'), route.mirrorPercentage);
  for (const legacy of ['mirrorPercent', 'mirror_percent']) asInteger(c, at(legacy), route[legacy], 0, 100);
  validateCors(c, at('corsPolicy'), route.corsPolicy);
}

function validateHTTPMatch(c: Checker, path: string, m: Obj): void {
  const at = (k: string) => fieldPath(path, k);
  asString(c, at('name'), m.name);
  asString(c, at('statPrefix'), m.statPrefix);
  checkStringMatch(c, at('uri'), m.uri, true);
  for (const k of ['scheme', 'method', 'authority']) checkStringMatch(c, at(k), m[k]);
  for (const k of ['headers', 'withoutHeaders', 'queryParams']) {
    const map = asObject(c, at(k), m[k]);
    if (!map) continue;
    for (const [name, sm] of Object.entries(map)) {
      const p = keyPath(at(k), name);
      if (k !== 'queryParams') checkHeaderName(c, p, name);
      if (k === 'withoutHeaders' && isSet(sm) && (sm as Obj).regex === '*') continue; // `*` means "present", not a regex
      if (!isSet(sm) && k === 'headers') {
        c.report(p, `header match ${name} cannot be null`);
        continue;
      }
      checkStringMatch(c, p, sm, k === 'queryParams');
    }
  }
  if (isSet(m.port)) checkPortNumber(c, at('port'), m.port);
  checkLabels(c, at('sourceLabels'), m.sourceLabels);
  checkGatewayNames(c, at('gateways'), m.gateways);
  asBoolean(c, at('ignoreUriCase'), m.ignoreUriCase);
  const ns = asString(c, at('sourceNamespace'), m.sourceNamespace);
  if (ns && !isDns1123Label(ns)) c.report(at('sourceNamespace'), `sourceNamespace match ${ns} is invalid`);
}

function validateL4Match(c: Checker, path: string, m: Obj): void {
  const subnets = asStringList(c, fieldPath(path, 'destinationSubnets'), m.destinationSubnets) ?? [];
  subnets.forEach((s, i) => {
    const problem = cidrProblem(s);
    if (problem) c.report(indexPath(fieldPath(path, 'destinationSubnets'), i), problem);
  });
  if (isSet(m.port)) checkPortNumber(c, fieldPath(path, 'port'), m.port);
  checkLabels(c, fieldPath(path, 'sourceLabels'), m.sourceLabels);
  checkGatewayNames(c, fieldPath(path, 'gateways'), m.gateways);
  const ns = asString(c, fieldPath(path, 'sourceNamespace'), m.sourceNamespace);
  if (ns && !isDns1123Label(ns)) c.report(fieldPath(path, 'sourceNamespace'), `sourceNamespace match ${ns} is invalid`);
}

/** Route destinations: each has a destination and a weight in 0..100; with more than one, weights sum to 100. */
function validateRouteDestinations(c: Checker, path: string, value: unknown, http: boolean, requiredMessage?: string): void {
  const list = asList(c, path, value);
  if (requiredMessage && !list?.length) c.report(path, requiredMessage);
  if (!list) return;
  let total = 0;
  let allNumeric = true;
  eachObject(c, path, list, http ? ['destination', 'weight', 'headers'] : ['destination', 'weight'], (d, p) => {
    checkDestination(c, fieldPath(p, 'destination'), d.destination);
    const weight = asInteger(c, fieldPath(p, 'weight'), d.weight, 0, 100);
    if (isSet(d.weight) && weight === undefined) allNumeric = false;
    total += weight ?? 0;
    if (http) validateHeaders(c, fieldPath(p, 'headers'), d.headers);
  });
  if (list.length > 1 && allNumeric && total !== 100) c.report(path, `weights must sum to 100 (got ${total})`);
}

function checkHeaderName(c: Checker, path: string, name: string, allowPseudo = false): void {
  if (name === '') c.report(path, 'header name cannot be empty');
  else if (!HEADER_NAME.test(allowPseudo && name.startsWith(':') ? name.slice(1) : name)) c.report(path, `invalid header name ${JSON.stringify(name)}`);
}

function validateHeaders(c: Checker, path: string, value: unknown): void {
  const headers = asObject(c, path, value, ['request', 'response']);
  if (!headers) return;
  for (const side of ['request', 'response'] as const) {
    const sp = fieldPath(path, side);
    const ops = asObject(c, sp, headers[side], ['set', 'add', 'remove']);
    if (!ops) continue;
    for (const op of ['set', 'add'] as const) {
      const map = asObject(c, fieldPath(sp, op), ops[op]);
      if (!map) continue;
      for (const [name, v] of Object.entries(map)) {
        const p = keyPath(fieldPath(sp, op), name);
        // Envoy refuses to modify pseudo-headers and Host, except :authority on requests.
        const authority = side === 'request' && (name.toLowerCase() === ':authority' || name.toLowerCase() === 'host');
        if (!authority && (name.startsWith(':') || name.toLowerCase() === 'host')) c.report(p, `invalid header ${JSON.stringify(name)}: pseudo-headers and Host cannot be modified`);
        else checkHeaderName(c, p, name, authority);
        asString(c, p, v ?? '');
      }
    }
    const remove = asStringList(c, fieldPath(sp, 'remove'), ops.remove) ?? [];
    remove.forEach((name, i) => {
      const p = indexPath(fieldPath(sp, 'remove'), i);
      if (name.startsWith(':') || name.toLowerCase() === 'host') c.report(p, `invalid header ${JSON.stringify(name)}: pseudo-headers and Host cannot be removed`);
      else checkHeaderName(c, p, name);
    });
  }
}

function validateRedirect(c: Checker, path: string, value: unknown): void {
  const r = asObject(c, path, value, ['uri', 'authority', 'port', 'derivePort', 'scheme', 'redirectCode']);
  if (!r) return;
  const uri = asString(c, fieldPath(path, 'uri'), r.uri);
  const authority = asString(c, fieldPath(path, 'authority'), r.authority);
  const scheme = asString(c, fieldPath(path, 'scheme'), r.scheme);
  oneOf(c, path, r, ['port', 'derivePort']);
  if (isSet(r.port)) checkPortNumber(c, fieldPath(path, 'port'), r.port);
  asEnum(c, fieldPath(path, 'derivePort'), r.derivePort, ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']);
  if (!uri && !authority && !scheme && !isSet(r.port) && !isSet(r.derivePort)) c.report(path, 'redirect must specify URI, authority, scheme or port');
  if (isSet(r.redirectCode)) {
    const code = asInteger(c, fieldPath(path, 'redirectCode'), r.redirectCode);
    if (code !== undefined && (code < 300 || code > 399)) c.report(fieldPath(path, 'redirectCode'), `${code} is not a valid redirect code, must be 3xx`);
  }
}

function validateDirectResponse(c: Checker, path: string, value: unknown): void {
  const d = asObject(c, path, value, ['status', 'body']);
  if (!d) return;
  if (!isSet(d.status)) c.report(fieldPath(path, 'status'), 'status is required');
  else asInteger(c, fieldPath(path, 'status'), d.status, 200, 599);
  const body = asObject(c, fieldPath(path, 'body'), d.body, ['string', 'bytes']);
  if (body) {
    oneOf(c, fieldPath(path, 'body'), body, ['string', 'bytes']);
    asString(c, fieldPath(path, 'body.string'), body.string);
    asString(c, fieldPath(path, 'body.bytes'), body.bytes);
  }
}

function validateRewrite(c: Checker, path: string, value: unknown): void {
  const r = asObject(c, path, value, ['uri', 'authority', 'uriRegexRewrite']);
  if (!r) return;
  const uri = asString(c, fieldPath(path, 'uri'), r.uri);
  const authority = asString(c, fieldPath(path, 'authority'), r.authority);
  const rr = asObject(c, fieldPath(path, 'uriRegexRewrite'), r.uriRegexRewrite, ['match', 'rewrite']);
  if (uri && rr) c.report(path, 'rewrite may set uri or uriRegexRewrite, not both');
  if (rr) {
    const match = asString(c, fieldPath(path, 'uriRegexRewrite.match'), rr.match);
    if (!match) c.report(fieldPath(path, 'uriRegexRewrite.match'), 'match is required');
    else {
      const problem = regexProblem(match);
      if (problem) c.report(fieldPath(path, 'uriRegexRewrite.match'), problem);
    }
    asString(c, fieldPath(path, 'uriRegexRewrite.rewrite'), rr.rewrite);
  }
  if (!uri && !authority && !rr) c.report(path, 'rewrite must specify uri, uriRegexRewrite or authority');
}

function validateRetries(c: Checker, path: string, value: unknown): void {
  const r = asObject(c, path, value, ['attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities', 'retryIgnorePreviousHosts', 'backoff']);
  if (!r) return;
  const attempts = asInteger(c, fieldPath(path, 'attempts'), r.attempts);
  if (attempts !== undefined && attempts < 0) c.report(fieldPath(path, 'attempts'), 'attempts cannot be negative');
  if (attempts === 0 && (isSet(r.perTryTimeout) || isSet(r.retryOn) || isSet(r.retryRemoteLocalities))) {
    c.report(path, 'http retry policy configured when attempts are set to 0 (disabled)');
  }
  asDuration(c, fieldPath(path, 'perTryTimeout'), r.perTryTimeout);
  asDuration(c, fieldPath(path, 'backoff'), r.backoff);
  asBoolean(c, fieldPath(path, 'retryRemoteLocalities'), r.retryRemoteLocalities);
  asBoolean(c, fieldPath(path, 'retryIgnorePreviousHosts'), r.retryIgnorePreviousHosts);
  const retryOn = asString(c, fieldPath(path, 'retryOn'), r.retryOn);
  if (retryOn) {
    for (const raw of retryOn.split(',')) {
      const policy = raw.trim();
      const status = /^[0-9]{3}$/.test(policy) ? Number(policy) : NaN;
      if (!(status >= 100 && status <= 599) && !RETRY_ON_POLICIES.includes(policy)) {
        c.report(fieldPath(path, 'retryOn'), `${JSON.stringify(policy)} is not a valid retryOn policy (expected an HTTP status code or one of ${RETRY_ON_POLICIES.join(', ')})`);
      }
    }
  }
}

function validateFault(c: Checker, path: string, value: unknown): void {
  const f = asObject(c, path, value, ['delay', 'abort']);
  if (!f) return;
  if (!isSet(f.delay) && !isSet(f.abort)) c.report(path, 'HTTP fault injection must have an abort and/or a delay');
  const dp = fieldPath(path, 'delay');
  const delay = asObject(c, dp, f.delay, ['fixedDelay', 'exponentialDelay', 'percentage', 'percent']);
  if (delay) {
    oneOf(c, dp, delay, ['fixedDelay', 'exponentialDelay']);
    if (!isSet(delay.fixedDelay) && !isSet(delay.exponentialDelay)) c.report(fieldPath(dp, 'fixedDelay'), 'delay requires fixedDelay');
    asDuration(c, fieldPath(dp, 'fixedDelay'), delay.fixedDelay);
    if (isSet(delay.exponentialDelay)) c.report(fieldPath(dp, 'exponentialDelay'), 'exponentialDelay is not supported yet');
    checkPercent(c, fieldPath(dp, 'percentage'), delay.percentage);
    asInteger(c, fieldPath(dp, 'percent'), delay.percent, 0, 100);
  }
  const ap = fieldPath(path, 'abort');
  const abort = asObject(c, ap, f.abort, ['httpStatus', 'grpcStatus', 'http2Error', 'percentage']);
  if (abort) {
    const set = oneOf(c, ap, abort, ['httpStatus', 'grpcStatus', 'http2Error']);
    if (set.length === 0) c.report(fieldPath(ap, 'httpStatus'), 'abort requires httpStatus or grpcStatus');
    if (isSet(abort.httpStatus)) {
      const status = asInteger(c, fieldPath(ap, 'httpStatus'), abort.httpStatus);
      if (status !== undefined && (status < 200 || status > 599)) c.report(fieldPath(ap, 'httpStatus'), `HTTP status ${status} is not in range 200-599`);
    }
    if (isSet(abort.grpcStatus)) asEnum(c, fieldPath(ap, 'grpcStatus'), abort.grpcStatus, GRPC_STATUSES);
    if (isSet(abort.http2Error)) c.report(fieldPath(ap, 'http2Error'), 'HTTP/2 abort fault injection not supported yet');
    checkPercent(c, fieldPath(ap, 'percentage'), abort.percentage);
  }
}

function validateCors(c: Checker, path: string, value: unknown): void {
  const p = asObject(c, path, value, [
    'allowOrigins', 'allowOrigin', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'maxAge', 'allowCredentials', 'unmatchedPreflights',
  ]);
  if (!p) return;
  eachObject(c, fieldPath(path, 'allowOrigins'), p.allowOrigins, ['exact', 'prefix', 'regex'], (o, op) => {
    if (!isSet(o.exact) && !isSet(o.prefix) && !isSet(o.regex)) c.report(op, 'CORS allowOrigins entry needs exact, prefix or regex');
    checkStringMatch(c, op, o);
  });
  asStringList(c, fieldPath(path, 'allowOrigin'), p.allowOrigin);
  (asStringList(c, fieldPath(path, 'allowMethods'), p.allowMethods) ?? []).forEach((m, i) => {
    if (!HTTP_METHODS.includes(m)) c.report(indexPath(fieldPath(path, 'allowMethods'), i), `${JSON.stringify(m)} is not a supported HTTP method`);
  });
  for (const k of ['allowHeaders', 'exposeHeaders']) {
    (asStringList(c, fieldPath(path, k), p[k]) ?? []).forEach((h, i) => checkHeaderName(c, indexPath(fieldPath(path, k), i), h));
  }
  const maxAge = asDuration(c, fieldPath(path, 'maxAge'), p.maxAge);
  if (maxAge !== undefined && maxAge % 1000 !== 0) c.report(fieldPath(path, 'maxAge'), 'max_age duration is accurate only to seconds precision');
  asBoolean(c, fieldPath(path, 'allowCredentials'), p.allowCredentials);
  asEnum(c, fieldPath(path, 'unmatchedPreflights'), p.unmatchedPreflights, ['UNSPECIFIED', 'FORWARD', 'IGNORE']);
}
