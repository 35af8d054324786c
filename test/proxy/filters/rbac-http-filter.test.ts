// The HTTP RBAC filter against a recorded filter context: decisions, local reply, Envoy's dynamic metadata keys and stat
// names (rules/shadow prefixes, per-policy stats), LOG's access_log_hint, RBACPerRoute, JWT claims and mTLS peers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpFilter, HttpFilterContext, LocalReplyOptions } from '../../../src/proxy/http/filter.js';
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { DownstreamTlsInfo, StreamInfo } from '../../../src/proxy/http/stream-info.js';
import { httpRbacFilterFactory, rbacResponseDetail, type CompiledHttpRbac } from '../../../src/proxy/filters/rbac/http-rbac.js';

interface Recorded {
  ctx: HttpFilterContext;
  reply?: { status: number; body: string; options?: LocalReplyOptions };
}

function context(headers: HttpHeaders, over: { tls?: DownstreamTlsInfo; state?: Record<string, unknown>; route?: CompiledHttpRbac } = {}): Recorded {
  const rec: Recorded = {} as Recorded;
  const info = {
    startTime: 0,
    protocol: 'HTTP/1.1',
    downstreamRemoteAddress: '10.0.0.7',
    downstreamRemotePort: 40000,
    downstreamLocalAddress: '10.0.0.1',
    downstreamLocalPort: 9080,
    ...(over.tls ? { downstreamTls: over.tls } : {}),
    listenerName: 'l',
    statPrefix: 'inbound',
    requestId: 'r',
    responseFlags: new Set(),
    bytesReceived: 0,
    bytesSent: 0,
    attemptCount: 0,
    filterState: new Map(Object.entries(over.state ?? {})),
    requestHeaders: headers,
  } as StreamInfo;
  rec.ctx = {
    requestHeaders: headers,
    info,
    routeConfig: <T>(name: string) => (name === 'envoy.filters.http.rbac' ? (over.route as T | undefined) : undefined),
    clearRouteCache: () => {},
    route: () => undefined,
    sendLocalReply: (status, body, options) => {
      rec.reply = { status, body, ...(options ? { options } : {}) };
    },
    continueDecoding: () => {},
    aborted: false,
  };
  return rec;
}

function filter(config: unknown, stats: Record<string, number>): HttpFilter {
  return httpRbacFilterFactory.create(config, { statPrefix: 'inbound', stats });
}

const GET = (path: string, extra: HttpHeaders = {}): HttpHeaders => ({ ':method': 'GET', ':path': path, ':authority': 'reviews:9080', ...extra });

test('enforced decision, 403 reply with details, dynamic metadata and stats with a rules prefix and per-policy stats', () => {
  const stats: Record<string, number> = {};
  const f = filter(
    {
      rules: { action: 'ALLOW', policies: { 'read only': { permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }], principals: [{ any: true }] } } },
      rules_stat_prefix: 'istio_',
      track_per_rule_stats: true,
    },
    stats,
  );
  const ok = context(GET('/r'));
  assert.equal(f.onRequestHeaders!(ok.ctx), 'continue');
  assert.equal(ok.reply, undefined);
  assert.deepEqual(ok.ctx.info.filterState.get('envoy.filters.http.rbac'), { 'istio_enforced_effective_policy_id': 'read only', 'istio_enforced_engine_result': 'allowed' });
  const bad = context({ ':method': 'DELETE', ':path': '/r' });
  assert.equal(f.onRequestHeaders!(bad.ctx), 'stop');
  assert.deepEqual(bad.reply, { status: 403, body: 'RBAC: access denied', options: { details: 'rbac_access_denied_matched_policy[none]' } });
  assert.deepEqual(bad.ctx.info.filterState.get('envoy.filters.http.rbac'), { 'istio_enforced_engine_result': 'denied' });
  assert.equal(stats['rbac.istio_.allowed'], 1);
  assert.equal(stats['rbac.istio_.denied'], 1);
  assert.equal(stats['rbac.istio_.policy.read only.allowed'], 1);
  assert.equal(rbacResponseDetail('ns[a]-policy[b c]'), 'rbac_access_denied_matched_policy[ns[a]-policy[b_c]]', 'whitespace becomes _');
});

test('shadow rules record without enforcing; no enforced rules means allow', () => {
  const stats: Record<string, number> = {};
  const f = filter({ shadow_rules: { action: 'DENY', policies: { 'deny-admin': { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] } } }, shadow_rules_stat_prefix: 'istio_dry_run_allow_' }, stats);
  const r = context(GET('/admin/x'));
  assert.equal(f.onRequestHeaders!(r.ctx), 'continue');
  assert.equal(r.reply, undefined);
  assert.deepEqual(r.ctx.info.filterState.get('envoy.filters.http.rbac'), { istio_dry_run_allow_shadow_effective_policy_id: 'deny-admin', istio_dry_run_allow_shadow_engine_result: 'denied' });
  assert.equal(stats['rbac.istio_dry_run_allow_.shadow_denied'], 1);
  assert.equal(stats['rbac.allowed'], 0, 'nothing enforced, nothing counted as enforced');
});

test('LOG action never denies and sets envoy.common access_log_hint', () => {
  const f = filter({ rules: { action: 'LOG', policies: { audit: { permissions: [{ url_path: { path: { prefix: '/audit' } } }], principals: [{ any: true }] } } } }, {});
  const hit = context(GET('/audit/1'));
  assert.equal(f.onRequestHeaders!(hit.ctx), 'continue');
  assert.deepEqual(hit.ctx.info.filterState.get('envoy.common'), { access_log_hint: true });
  const miss = context(GET('/other'));
  assert.equal(f.onRequestHeaders!(miss.ctx), 'continue');
  assert.deepEqual(miss.ctx.info.filterState.get('envoy.common'), { access_log_hint: false });
});

test('RBACPerRoute replaces the filter config; an empty one turns RBAC off', () => {
  const f = filter({ rules: { action: 'ALLOW', policies: {} } }, {});
  assert.equal(f.onRequestHeaders!(context(GET('/')).ctx), 'stop', 'ALLOW with no policies denies all');
  const off = httpRbacFilterFactory.createRouteConfig!({}) as CompiledHttpRbac;
  assert.equal(f.onRequestHeaders!(context(GET('/'), { route: off }).ctx), 'continue');
  const open = httpRbacFilterFactory.createRouteConfig!({ rbac: { rules: { action: 'DENY', policies: {} } } }) as CompiledHttpRbac;
  assert.equal(f.onRequestHeaders!(context(GET('/'), { route: open }).ctx), 'continue', 'DENY with no policies allows all');
  assert.throws(() => httpRbacFilterFactory.createRouteConfig!({ rbac: { rules: { policies: { p: { permissions: [], principals: [] } } } } }), /rbac\.rules\.policies\["p"\]\.permissions: at least one permission is required/);
});

test('JWT claims from istio_authn and the mTLS peer identity', () => {
  const f = filter(
    {
      rules: {
        policies: {
          'jwt-group': {
            permissions: [{ any: true }],
            principals: [
              {
                and_ids: {
                  ids: [
                    { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'https://issuer.example/alice' } } } },
                    { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'admins' } } } } } },
                    { authenticated: { principal_name: { suffix: '/sa/productpage' } } },
                  ],
                },
              },
            ],
          },
        },
      },
    },
    {},
  );
  const tls: DownstreamTlsInfo = { sni: 'reviews.default.svc', peerUriSans: ['spiffe://cluster.local/ns/default/sa/productpage'] };
  const jwt = { 'request.auth.principal': 'https://issuer.example/alice', 'request.auth.claims': { groups: ['dev', 'admins'] } };
  assert.equal(f.onRequestHeaders!(context(GET('/'), { tls, state: { istio_authn: jwt } }).ctx), 'continue');
  assert.equal(f.onRequestHeaders!(context(GET('/'), { state: { istio_authn: jwt } }).ctx), 'stop', 'plaintext: not authenticated');
  assert.equal(f.onRequestHeaders!(context(GET('/'), { tls, state: { istio_authn: { ...jwt, 'request.auth.claims': { groups: ['dev'] } } } }).ctx), 'stop');
  assert.equal(f.onRequestHeaders!(context(GET('/'), { tls }).ctx), 'stop', 'no JWT');
});
