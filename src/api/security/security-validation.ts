// Validation of PeerAuthentication, RequestAuthentication and AuthorizationPolicy, after Istio's rules (validation.go, security.go).
import { fieldPath, indexPath, keyPath } from '../problem.js';
import {
  asBoolean,
  asDuration,
  asEnum,
  asList,
  asObject,
  asString,
  asStringList,
  eachObject,
  isSet,
  type Checker,
  type Obj,
} from '../validation/checker.js';
import { checkLabels, cidrProblem } from '../validation/names.js';
import { AUTHORIZATION_ACTIONS } from './authorization-policy.js';
import { MTLS_MODES } from './peer-authentication.js';

const TARGET_REF_FIELDS = ['group', 'kind', 'name', 'namespace'];

/** `selector: {matchLabels}`; wildcards are not allowed. Returns whether any label is set. */
export function checkSecuritySelector(c: Checker, path: string, value: unknown): boolean {
  const sel = asObject(c, path, value, ['matchLabels']);
  if (!sel) return false;
  const labels = checkLabels(c, fieldPath(path, 'matchLabels'), sel.matchLabels, true);
  for (const key of Object.keys(labels ?? {})) if (key === '') c.report(fieldPath(path, 'matchLabels'), 'empty key is not supported in selector');
  return Object.keys(labels ?? {}).length > 0;
}

function checkTargetRefs(c: Checker, spec: Obj, hasSelector: boolean): void {
  const one = asObject(c, 'spec.targetRef', spec.targetRef, TARGET_REF_FIELDS);
  const many = eachObject(c, 'spec.targetRefs', spec.targetRefs, TARGET_REF_FIELDS, (ref, p) => checkTargetRef(c, p, ref));
  if (one) checkTargetRef(c, 'spec.targetRef', one);
  if (one && many.length) c.report('spec', 'only one of targetRef or targetRefs may be set');
  if (hasSelector && (one || many.length)) c.report('spec', 'only one of targetRefs or selector can be set');
  // Istio binds targetRef(s) policies to Gateway API Gateways and Services (waypoints); Trellis models neither, so
  // such a policy would silently apply nowhere. Refused instead, so the user knows to use a selector.
  if (one || many.length) c.report(one ? 'spec.targetRef' : 'spec.targetRefs', 'targetRef/targetRefs are not supported by Trellis: select workloads with spec.selector');
}

function checkTargetRef(c: Checker, path: string, ref: Obj): void {
  for (const k of TARGET_REF_FIELDS) asString(c, fieldPath(path, k), ref[k]);
  if (!ref.kind) c.report(fieldPath(path, 'kind'), 'kind is required');
  if (!ref.name) c.report(fieldPath(path, 'name'), 'name is required');
}

export function validatePeerAuthentication(c: Checker, spec: unknown): void {
  const pa = asObject(c, 'spec', spec, ['selector', 'mtls', 'portLevelMtls']);
  if (!pa) return;
  const hasSelector = checkSecuritySelector(c, 'spec.selector', pa.selector);
  const mtls = asObject(c, 'spec.mtls', pa.mtls, ['mode']);
  if (mtls) asEnum(c, 'spec.mtls.mode', mtls.mode, MTLS_MODES);
  const ports = asObject(c, 'spec.portLevelMtls', pa.portLevelMtls);
  if (ports) {
    if (!hasSelector) c.report('spec.portLevelMtls', 'mesh/namespace peer authentication cannot have port level mTLS');
    if (Object.keys(ports).length === 0) c.report('spec.portLevelMtls', 'port level mTLS, if defined, must have at least one element');
    for (const [port, setting] of Object.entries(ports)) {
      const p = keyPath('spec.portLevelMtls', port);
      const n = Number(port);
      if (!/^[0-9]+$/.test(port) || n < 1 || n > 65535) c.report(p, `port ${JSON.stringify(port)} must be a number in the range 1..65535`);
      const s = asObject(c, p, setting, ['mode']);
      if (s) asEnum(c, fieldPath(p, 'mode'), s.mode, MTLS_MODES);
    }
  }
}

export function validateRequestAuthentication(c: Checker, spec: unknown): void {
  const ra = asObject(c, 'spec', spec, ['selector', 'targetRef', 'targetRefs', 'jwtRules']);
  if (!ra) return;
  const hasSelector = checkSecuritySelector(c, 'spec.selector', ra.selector);
  checkTargetRefs(c, ra, hasSelector);
  const fields = [
    'issuer', 'audiences', 'jwksUri', 'jwks', 'fromHeaders', 'fromParams', 'fromCookies', 'outputPayloadToHeader',
    'forwardOriginalToken', 'outputClaimToHeaders', 'timeout',
  ];
  const issuers = new Map<string, number>();
  eachObject(c, 'spec.jwtRules', ra.jwtRules, fields, (rule, p, i) => {
    const at = (k: string) => fieldPath(p, k);
    const issuer = asString(c, at('issuer'), rule.issuer);
    if (!issuer) c.report(at('issuer'), 'issuer must be set');
    else if (issuers.has(issuer)) c.report(at('issuer'), `duplicate issuer ${JSON.stringify(issuer)} (also spec.jwtRules[${issuers.get(issuer)}])`);
    else issuers.set(issuer, i);
    (asStringList(c, at('audiences'), rule.audiences) ?? []).forEach((a, ai) => {
      if (a === '') c.report(indexPath(at('audiences'), ai), 'audience must be non-empty string');
    });
    const jwksUri = asString(c, at('jwksUri'), rule.jwksUri);
    const jwks = asString(c, at('jwks'), rule.jwks);
    if (jwksUri) {
      let url: URL | undefined;
      try {
        url = new URL(jwksUri);
      } catch {
        c.report(at('jwksUri'), `invalid URL ${JSON.stringify(jwksUri)}`);
      }
      if (url && url.protocol !== 'http:' && url.protocol !== 'https:') c.report(at('jwksUri'), `URI scheme ${JSON.stringify(url.protocol.slice(0, -1))} is not supported (expected http or https)`);
    }
    if (jwks) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(jwks);
      } catch (err) {
        c.report(at('jwks'), `jwks is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (parsed !== undefined && !(typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as Obj).keys))) {
        c.report(at('jwks'), 'jwks must be a JSON Web Key Set (an object with a "keys" list)');
      }
    }
    if (jwks && jwksUri) c.report(p, 'only one of jwks or jwksUri may be set (jwks would silently win)');
    eachObject(c, at('fromHeaders'), rule.fromHeaders, ['name', 'prefix'], (h, hp) => {
      if (!asString(c, fieldPath(hp, 'name'), h.name)) c.report(fieldPath(hp, 'name'), 'location header name must be non-empty string');
      asString(c, fieldPath(hp, 'prefix'), h.prefix);
    });
    for (const k of ['fromParams', 'fromCookies']) {
      (asStringList(c, at(k), rule[k]) ?? []).forEach((v, vi) => {
        if (v === '') c.report(indexPath(at(k), vi), `location ${k === 'fromParams' ? 'query' : 'cookie'} must be non-empty string`);
      });
    }
    asString(c, at('outputPayloadToHeader'), rule.outputPayloadToHeader);
    asBoolean(c, at('forwardOriginalToken'), rule.forwardOriginalToken);
    eachObject(c, at('outputClaimToHeaders'), rule.outputClaimToHeaders, ['header', 'claim'], (h, hp) => {
      if (!asString(c, fieldPath(hp, 'header'), h.header)) c.report(fieldPath(hp, 'header'), 'header must be non-empty string');
      if (!asString(c, fieldPath(hp, 'claim'), h.claim)) c.report(fieldPath(hp, 'claim'), 'claim must be non-empty string');
    });
    asDuration(c, at('timeout'), rule.timeout);
  });
}

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'serviceAccounts', 'notServiceAccounts', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
];
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];

/** Condition keys Istio accepts in `when` (pkg/config/security ValidateAttribute); `[name]` keys need a name. */
export const CONDITION_KEYS = [
  'request.headers[]', 'request.experimental.inline.headers[]', 'source.ip', 'remote.ip', 'source.namespace', 'source.serviceAccount',
  'source.principal', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'request.auth.claims[]',
  'destination.ip', 'destination.port', 'connection.sni', 'experimental.envoy.filters.*[]',
];

export function validateAuthorizationPolicy(c: Checker, spec: unknown): void {
  const ap = asObject(c, 'spec', spec, ['selector', 'targetRef', 'targetRefs', 'rules', 'action', 'provider']);
  if (!ap) return;
  const hasSelector = checkSecuritySelector(c, 'spec.selector', ap.selector);
  checkTargetRefs(c, ap, hasSelector);
  const action = asEnum(c, 'spec.action', ap.action, AUTHORIZATION_ACTIONS) ?? (isSet(ap.action) ? undefined : 'ALLOW');
  const provider = asObject(c, 'spec.provider', ap.provider, ['name']);
  const providerName = provider ? asString(c, 'spec.provider.name', provider.name) : undefined;
  if (action === 'CUSTOM' && !providerName) c.report('spec.provider.name', 'a CUSTOM policy must name its extension provider');
  if (action !== 'CUSTOM' && provider) c.report('spec.provider', `provider is only allowed with action CUSTOM (action is ${action ?? ap.action})`);

  const rules = asList(c, 'spec.rules', ap.rules);
  if ((action === 'DENY' || action === 'AUDIT' || action === 'CUSTOM') && !rules) {
    c.report('spec.rules', `a ${action} policy without rules is meaningless and has no effect`);
  }
  eachObject(c, 'spec.rules', rules, ['from', 'to', 'when'], (rule, p) => {
    const from = asList(c, fieldPath(p, 'from'), rule.from);
    if (from && from.length === 0) c.report(fieldPath(p, 'from'), '`from` must not be empty');
    eachObject(c, fieldPath(p, 'from'), from, ['source'], (f, fp) => {
      const sp = fieldPath(fp, 'source');
      if (!isSet(f.source)) return void c.report(sp, '`from.source` must not be nil');
      const src = asObject(c, sp, f.source, SOURCE_FIELDS);
      if (!src) return;
      if (!SOURCE_FIELDS.some((k) => Array.isArray(src[k]) && (src[k] as unknown[]).length > 0)) c.report(sp, '`from.source` must not be empty');
      for (const k of SOURCE_FIELDS) {
        const values = asStringList(c, fieldPath(sp, k), src[k], false) ?? [];
        if (k.toLowerCase().includes('ipblocks')) values.forEach((v, vi) => {
          const problem = v && cidrProblem(v);
          if (problem) c.report(indexPath(fieldPath(sp, k), vi), problem);
        });
      }
      if (isSet(src.serviceAccounts) && (isSet(src.principals) || isSet(src.notPrincipals))) c.report(sp, 'cannot set serviceAccounts with principals or notPrincipals');
      for (const k of ['serviceAccounts', 'notServiceAccounts']) {
        const values = Array.isArray(src[k]) ? (src[k] as unknown[]) : [];
        if (values.length > 16) c.report(fieldPath(sp, k), 'may not have more than 16 values');
        values.forEach((v, vi) => {
          if (typeof v === 'string' && v !== '') checkServiceAccount(c, indexPath(fieldPath(sp, k), vi), k, v);
        });
      }
    });
    const to = asList(c, fieldPath(p, 'to'), rule.to);
    if (to && to.length === 0) c.report(fieldPath(p, 'to'), '`to` must not be empty');
    eachObject(c, fieldPath(p, 'to'), to, ['operation'], (t, tp) => {
      const op = fieldPath(tp, 'operation');
      if (!isSet(t.operation)) return void c.report(op, '`to.operation` must not be nil');
      const o = asObject(c, op, t.operation, OPERATION_FIELDS);
      if (!o) return;
      if (!OPERATION_FIELDS.some((k) => Array.isArray(o[k]) && (o[k] as unknown[]).length > 0)) c.report(op, '`to.operation` must not be empty');
      for (const k of OPERATION_FIELDS) {
        const values = asStringList(c, fieldPath(op, k), o[k], false) ?? [];
        if (k === 'ports' || k === 'notPorts') values.forEach((v, vi) => checkPortString(c, indexPath(fieldPath(op, k), vi), v));
        if (k === 'paths' || k === 'notPaths') values.forEach((v, vi) => checkPathTemplate(c, indexPath(fieldPath(op, k), vi), v));
      }
    });
    eachObject(c, fieldPath(p, 'when'), rule.when, ['key', 'values', 'notValues'], (w, wp) => checkCondition(c, wp, w));
  });
}

/** Istio's CheckServiceAccount: `sa` or `namespace/sa`, no wildcard, at most 320 characters. */
function checkServiceAccount(c: Checker, path: string, field: string, v: string): void {
  if (v.includes('*')) c.report(path, `wildcard not allowed in ${field}`);
  else if (v.split('/').length > 2 || v.split('/').some((s) => s === '')) c.report(path, `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(v)}`);
  else if (v.length > 320) c.report(path, 'value cannot exceed 320 characters');
}

/** RFC 3986 pchar: what a literal segment of a path template may hold (Istio's validLiteral). */
const PATH_TEMPLATE_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/**
 * Istio's CheckValidPathTemplate: `{*}` (one segment) and `{**}` (the rest) only as whole segments, nothing template-like
 * after `{**}`, no other braces, and literal segments of a template path made of path characters.
 */
function checkPathTemplate(c: Checker, path: string, value: string): void {
  const hasTemplate = value.includes('{*}') || value.includes('{**}');
  let sawMatchAny = false;
  for (const glob of value.replace(/^\/+|\/+$/g, '').split('/')) {
    if ((glob === '{*}' || glob === '{**}') && sawMatchAny) return void c.report(path, `invalid or unsupported path ${JSON.stringify(value)}: {**} is not the last operator`);
    if (glob === '{*}') continue;
    if (glob === '{**}') {
      sawMatchAny = true;
      continue;
    }
    if (/[{}]/.test(glob)) return void c.report(path, `invalid or unsupported path ${JSON.stringify(value)}: contains '{' or '}' beyond a supported path template`);
    if (hasTemplate && !PATH_TEMPLATE_LITERAL.test(glob)) return void c.report(path, `invalid or unsupported path ${JSON.stringify(value)}: segment ${JSON.stringify(glob)} is not a valid string literal`);
  }
}

function checkPortString(c: Checker, path: string, value: string): void {
  if (value === '') return;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n > 65535) c.report(path, `bad port ${JSON.stringify(value)} (expected a number in 0..65535)`);
}

function checkCondition(c: Checker, path: string, w: Obj): void {
  const key = asString(c, fieldPath(path, 'key'), w.key);
  const values = asStringList(c, fieldPath(path, 'values'), w.values, false) ?? [];
  const notValues = asStringList(c, fieldPath(path, 'notValues'), w.notValues, false) ?? [];
  if (!key) {
    c.report(fieldPath(path, 'key'), '`key` must not be empty');
    return;
  }
  if (values.length === 0 && notValues.length === 0) c.report(path, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
  const problem = conditionKeyProblem(key);
  if (problem) {
    c.report(fieldPath(path, 'key'), problem);
    return;
  }
  for (const [field, list] of [['values', values], ['notValues', notValues]] as const) {
    list.forEach((v, i) => {
      const p = indexPath(fieldPath(path, field), i);
      if (['source.ip', 'remote.ip', 'destination.ip'].includes(key)) {
        const bad = cidrProblem(v);
        if (bad) c.report(p, bad);
      } else if (key === 'destination.port') checkPortString(c, p, v);
      else if (key === 'source.serviceAccount') checkServiceAccount(c, p, key, v);
    });
  }
}

/** Why `key` is not an attribute Istio's authorization accepts, or undefined when it is. */
export function conditionKeyProblem(key: string): string | undefined {
  const mapKey = (prefix: string) => {
    if (!key.startsWith(prefix)) return undefined;
    const rest = key.slice(prefix.length);
    return /^\[[^\]]+\]$/.test(rest) ? 'ok' : `bad key (${key}): should have format ${prefix}[name]`;
  };
  for (const prefix of ['request.headers', 'request.experimental.inline.headers']) {
    const r = mapKey(prefix);
    if (r) return r === 'ok' ? undefined : r;
  }
  // Claims may be nested: request.auth.claims[a][b] is claim b inside claim a.
  if (key.startsWith('request.auth.claims')) {
    return /^(\[[^[\]]+\])+$/.test(key.slice('request.auth.claims'.length)) ? undefined : `bad key (${key}): should have format request.auth.claims[name] or request.auth.claims[name][nested]`;
  }
  if (key.startsWith('experimental.envoy.filters.')) return /\[[^\]]+\]$/.test(key) ? undefined : `bad key (${key}): should have format a[b]`;
  const plain = [
    'source.ip', 'remote.ip', 'source.namespace', 'source.serviceAccount', 'source.principal', 'request.auth.principal',
    'request.auth.audiences', 'request.auth.presenter', 'destination.ip', 'destination.port', 'connection.sni',
  ];
  if (plain.includes(key)) return undefined;
  if (key === 'destination.namespace') return `attribute ${key} is replaced by the metadata.namespace`;
  if (key.startsWith('destination.labels')) return `attribute ${key} is replaced by the workload selector`;
  if (key === 'destination.name' || key === 'destination.user') return `deprecated attribute ${key}: only supported in v1alpha1`;
  return `unknown attribute ${JSON.stringify(key)}, expected one of ${CONDITION_KEYS.join(', ')}`;
}
