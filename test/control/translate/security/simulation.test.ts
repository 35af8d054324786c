// Requests through the generated config (as Istio's simulation tests do): the RBAC filters Trellis generates, taken
// over the wire and compiled by Trellis's own proxy RBAC filter (so no NACK), decide like Istio would for each request.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy } from '../../../../src/api/index.js';
import type { Proxy } from '../../../../src/control/model/proxy.js';
import { securityHttpFilters, securityNetworkFilters } from '../../../../src/control/translate/security/inbound-filters.js';
import { compileRbacEngine } from '../../../../src/proxy/filters/rbac/engine.js';
import { compileHttpRbac } from '../../../../src/proxy/filters/rbac/http-rbac.js';
import type { RbacInput } from '../../../../src/proxy/filters/rbac/rbac-input.js';
import { ConfigProblems } from '../../../../src/proxy/router/config-problems.js';
import { authorizationPolicy, httpRbacOf, networkRbacOf, pushOf, workload } from './security-fixture.js';

interface Request {
  method?: string;
  path?: string;
  authority?: string;
  /** The caller's SPIFFE identity; undefined for plaintext. */
  peer?: string;
  headers?: Record<string, string>;
  /** What the JWT filter records for a verified token, in the shape of Istio's istio_authn metadata. */
  authn?: Record<string, unknown>;
}

function input(r: Request): RbacInput {
  return {
    connection: {
      remoteAddress: '10.1.0.9', localAddress: '10.0.0.5', localPort: 9080, requestedServerName: '',
      ...(r.peer ? { peer: { uriSans: [`spiffe://${r.peer}`], dnsSans: [], subject: '' } } : {}),
    },
    headers: { ':method': r.method ?? 'GET', ':path': r.path ?? '/', ':authority': r.authority ?? 'details:9080', ...r.headers },
    remoteIp: '10.1.0.9',
    filterState: new Map(r.authn ? [['istio_authn', r.authn]] : []),
  };
}

/** The RBAC filters of `proxy` in order, as the proxy compiles them; the request passes when each one allows it. */
function httpDecider(policies: AuthorizationPolicy[], proxy: Proxy) {
  const filters = securityHttpFilters({ push: pushOf(policies), proxy, port: 9080, isGateway: false });
  const compiled = filters.map((f, i) => compileHttpRbac(httpRbacOf(f), `http_filters[${i}]`));
  return (r: Request) => (compiled.every((c) => c.engine?.evaluate(input(r)).allowed ?? true) ? 200 : 403);
}

const details = workload({ namespace: 'default', labels: { app: 'details', version: 'v1' }, serviceAccount: 'bookinfo-details' });
const productpageSa = 'cluster.local/ns/default/sa/bookinfo-productpage';

describe('Bookinfo authorization walkthrough through the generated RBAC', () => {
  const allowNothing = authorizationPolicy('allow-nothing', {}, 'default');
  const detailsViewer = authorizationPolicy('details-viewer', {
    selector: { matchLabels: { app: 'details' } },
    rules: [{ from: [{ source: { principals: [productpageSa] } }], to: [{ operation: { methods: ['GET'] } }] }],
  }, 'default');

  test('allow-nothing alone: every request to the namespace is denied', () => {
    const decide = httpDecider([allowNothing], details);
    assert.equal(decide({ peer: productpageSa }), 403);
    assert.equal(decide({}), 403);
  });

  test('plus details-viewer: productpage may GET details; POST, other callers and plaintext are denied', () => {
    const decide = httpDecider([allowNothing, detailsViewer], details);
    assert.equal(decide({ peer: productpageSa, method: 'GET', path: '/details/0' }), 200);
    assert.equal(decide({ peer: productpageSa, method: 'POST', path: '/details/0' }), 403);
    assert.equal(decide({ peer: 'cluster.local/ns/default/sa/bookinfo-reviews' }), 403);
    assert.equal(decide({ peer: 'other.domain/ns/default/sa/bookinfo-productpage' }), 403);
    assert.equal(decide({}), 403);
  });

  test('a DENY wins over an ALLOW that matches (DENY is evaluated first)', () => {
    const denyAdmin = authorizationPolicy('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }, 'default');
    const decide = httpDecider([authorizationPolicy('allow-all', { rules: [{}] }, 'default'), denyAdmin], details);
    assert.equal(decide({ path: '/details/1' }), 200);
    assert.equal(decide({ path: '/admin/users' }), 403);
    assert.equal(decide({ path: '/admin?x=1' }), 403, 'the query is not part of the path');
  });
});

describe('matching semantics a user relies on', () => {
  test('path templates: {*} is one segment, {**} any depth', () => {
    const decide = httpDecider([authorizationPolicy('templates', { rules: [{ to: [{ operation: { paths: ['/api/{*}/items', '/static/{**}'] } }] }] }, 'default')], details);
    assert.equal(decide({ path: '/api/v1/items' }), 200);
    assert.equal(decide({ path: '/api/v1/x/items' }), 403);
    assert.equal(decide({ path: '/api//items' }), 403);
    assert.equal(decide({ path: '/static/css/site.css' }), 200);
    assert.equal(decide({ path: '/other' }), 403);
    const dotted = httpDecider([authorizationPolicy('dotted', { rules: [{ to: [{ operation: { paths: ['/v1.0/{*}'] } }] }] }, 'default')], details);
    assert.equal(dotted({ path: '/v1.0/a' }), 200);
    assert.equal(dotted({ path: '/v1x0/a' }), 403, 'template literals are literal, not regex');
  });

  test('hosts match case-insensitively; paths and methods case-sensitively', () => {
    const decide = httpDecider([authorizationPolicy('deny', { action: 'DENY', rules: [{ to: [{ operation: { hosts: ['Admin.Example.com'] } }] }, { to: [{ operation: { paths: ['/admin'] } }] }] }, 'default')], details);
    assert.equal(decide({ authority: 'admin.EXAMPLE.com' }), 403);
    assert.equal(decide({ path: '/admin' }), 403);
    assert.equal(decide({ path: '/ADMIN' }), 200, 'Istio path rules are case-sensitive');
  });

  test('requestPrincipals and claims read the istio_authn metadata of a verified token', () => {
    const decide = httpDecider([authorizationPolicy('jwt', {
      rules: [{ from: [{ source: { requestPrincipals: ['https://issuer.example.com/*'] } }], when: [{ key: 'request.auth.claims[groups]', values: ['admins'] }] }],
    }, 'default')], details);
    const token = (groups: string[]) => ({ 'request.auth.principal': 'https://issuer.example.com/alice', 'request.auth.claims': { groups } });
    assert.equal(decide({ authn: token(['users', 'admins']) }), 200);
    assert.equal(decide({ authn: token(['users']) }), 403);
    assert.equal(decide({}), 403, 'no token: no request principal');
  });

  test('notPrincipals and namespaces from the peer certificate', () => {
    const decide = httpDecider([authorizationPolicy('ns', { rules: [{ from: [{ source: { namespaces: ['default'], notPrincipals: ['cluster.local/ns/default/sa/blocked'] } }] }] }, 'default')], details);
    assert.equal(decide({ peer: 'cluster.local/ns/default/sa/any' }), 200);
    assert.equal(decide({ peer: 'cluster.local/ns/default/sa/blocked' }), 403);
    assert.equal(decide({ peer: 'cluster.local/ns/other/sa/any' }), 403);
  });
});

describe('JWT required at the ingress gateway (Istio\'s "Authorization with JWT")', () => {
  test('DENY notRequestPrincipals ["*"] on /api/v1/products*: no token 403, any verified token 200, other paths open', () => {
    const gateway = workload({ type: 'router', namespace: 'istio-system', labels: { istio: 'ingressgateway' } });
    const decide = httpDecider([authorizationPolicy('require-jwt-for-api', {
      selector: { matchLabels: { istio: 'ingressgateway' } },
      action: 'DENY',
      rules: [{ from: [{ source: { notRequestPrincipals: ['*'] } }], to: [{ operation: { paths: ['/api/v1/products*'] } }] }],
    }, 'istio-system')], gateway);
    const authn = { 'request.auth.principal': 'testing@secure.trellis.local/testing@secure.trellis.local' };
    assert.equal(decide({ path: '/api/v1/products/0' }), 403);
    assert.equal(decide({ path: '/api/v1/products/0', authn }), 200);
    assert.equal(decide({ path: '/productpage' }), 200);
  });
});

describe('TCP chains through the generated network RBAC', () => {
  test('a DENY on methods (HTTP only) denies every TCP connection; an ALLOW on methods allows none', () => {
    const mysql = workload({ namespace: 'default', labels: { app: 'mysql' } });
    const decideTcp = (policies: AuthorizationPolicy[]) => {
      const filters = securityNetworkFilters({ push: pushOf(policies), proxy: mysql, port: 3306, isGateway: false });
      return filters.every((f) => {
        const rules = networkRbacOf(f).rules;
        if (!rules) return true;
        const problems = new ConfigProblems();
        const engine = compileRbacEngine(rules, 'rules', problems);
        assert.deepEqual(problems.details, []);
        return engine.evaluate({ ...input({ peer: productpageSa }), headers: {} }).allowed;
      });
    };
    assert.equal(decideTcp([authorizationPolicy('deny-get', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }, 'default')]), false);
    assert.equal(decideTcp([authorizationPolicy('allow-get', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }, 'default')]), false);
    assert.equal(decideTcp([authorizationPolicy('allow-peer', { rules: [{ from: [{ source: { principals: [productpageSa] } }] }] }, 'default')]), true);
  });
});
