// PeerAuthentication, RequestAuthentication, AuthorizationPolicy and Telemetry validation, one test per rule family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { problems } from './helpers.js';

test('PeerAuthentication: modes are UNSET/DISABLE/PERMISSIVE/STRICT; port-level mTLS needs a selector', () => {
  assert.deepEqual(problems('PeerAuthentication', 'mtls: {mode: STRICT}'), []);
  assert.deepEqual(problems('PeerAuthentication', 'mtls: {mode: strict}\nportLevelMtls: {"8080": {mode: DISABLE}}'), [
    { path: 'spec.mtls.mode', message: 'unknown value "strict", expected one of UNSET, DISABLE, PERMISSIVE, STRICT' },
    { path: 'spec.portLevelMtls', message: 'mesh/namespace peer authentication cannot have port level mTLS' },
  ]);
  assert.deepEqual(problems('PeerAuthentication', 'selector: {matchLabels: {app: db}}\nportLevelMtls: {"0": {mode: PERMISSIVE}, "5432": {mode: OFF}}'), [
    { path: 'spec.portLevelMtls["0"]', message: 'port "0" must be a number in the range 1..65535' },
    { path: 'spec.portLevelMtls["5432"].mode', message: 'unknown value "OFF", expected one of UNSET, DISABLE, PERMISSIVE, STRICT' },
  ]);
});

test('RequestAuthentication: issuer required; jwks is a key set, jwksUri an http(s) URL, not both', () => {
  assert.deepEqual(
    problems('RequestAuthentication', `
selector: {matchLabels: {app: productpage}}
jwtRules:
- issuer: https://issuer.example.com
  jwksUri: https://issuer.example.com/jwks.json
  fromHeaders: [{name: Authorization, prefix: "Bearer "}]
`),
    [],
  );
  assert.deepEqual(
    problems('RequestAuthentication', `
jwtRules:
- jwksUri: ftp://keys.example.com/jwks
  audiences: [""]
- issuer: a
  jwks: "{not json"
- issuer: b
  jwks: '{"keys": []}'
  jwksUri: https://b.example.com/jwks
  fromHeaders: [{prefix: x}]
`),
    [
      { path: 'spec.jwtRules[0].issuer', message: 'issuer must be set' },
      { path: 'spec.jwtRules[0].audiences[0]', message: 'audience must be non-empty string' },
      { path: 'spec.jwtRules[0].jwksUri', message: 'URI scheme "ftp" is not supported (expected http or https)' },
      { path: 'spec.jwtRules[1].jwks', message: "jwks is not valid JSON: Expected property name or '}' in JSON at position 1" + jsonPositionSuffix() },
      { path: 'spec.jwtRules[2]', message: 'only one of jwks or jwksUri may be set (jwks would silently win)' },
      { path: 'spec.jwtRules[2].fromHeaders[0].name', message: 'location header name must be non-empty string' },
    ],
  );
});

// Node 20's JSON.parse message changed between minor versions ("... at position 1" vs "... (line 1 column 2)").
function jsonPositionSuffix(): string {
  try {
    JSON.parse('{not json');
  } catch (err) {
    const m = /at position 1(.*)$/.exec((err as Error).message);
    return m ? m[1]! : '';
  }
  return '';
}

test('AuthorizationPolicy: action enum; CUSTOM needs a provider; DENY needs rules', () => {
  assert.deepEqual(problems('AuthorizationPolicy', 'action: REJECT'), [
    { path: 'spec.action', message: 'unknown value "REJECT", expected one of ALLOW, DENY, AUDIT, CUSTOM' },
  ]);
  assert.deepEqual(problems('AuthorizationPolicy', 'action: CUSTOM\nrules: [{to: [{operation: {paths: [/admin]}}]}]'), [
    { path: 'spec.provider.name', message: 'a CUSTOM policy must name its extension provider' },
  ]);
  assert.deepEqual(problems('AuthorizationPolicy', 'action: DENY\nprovider: {name: ext-authz}'), [
    { path: 'spec.provider', message: 'provider is only allowed with action CUSTOM (action is DENY)' },
    { path: 'spec.rules', message: 'a DENY policy without rules is meaningless and has no effect' },
  ]);
  // An ALLOW policy with no rules is valid: it denies everything.
  assert.deepEqual(problems('AuthorizationPolicy', 'selector: {matchLabels: {app: x}}'), []);
});

test('AuthorizationPolicy: rules from/to/when use Istio field names; sources and operations are not empty', () => {
  assert.deepEqual(
    problems('AuthorizationPolicy', `
rules:
- from:
  - source: {principal: [cluster.local/ns/default/sa/a]}
  - source: {ipBlocks: [10.0.0.0/40]}
  to:
  - operation: {}
  - operation: {ports: ["80", "http"], method: [GET]}
- from: []
`),
    [
      { path: 'spec.rules[0].from[0].source.principal', message: 'unknown field (did you mean "principals"?)' },
      { path: 'spec.rules[0].from[0].source', message: '`from.source` must not be empty' },
      { path: 'spec.rules[0].from[1].source.ipBlocks[0]', message: '"10.0.0.0/40" is not a valid CIDR block' },
      { path: 'spec.rules[0].to[0].operation', message: '`to.operation` must not be empty' },
      { path: 'spec.rules[0].to[1].operation.method', message: 'unknown field (did you mean "methods"?)' },
      { path: 'spec.rules[0].to[1].operation.ports[1]', message: 'bad port "http" (expected a number in 0..65535)' },
      { path: 'spec.rules[1].from', message: '`from` must not be empty' },
    ],
  );
});

test('AuthorizationPolicy: when.key must be an attribute Istio knows, with values of the right form', () => {
  assert.deepEqual(
    problems('AuthorizationPolicy', `
rules:
- when:
  - {key: "request.headers[x-tenant]", values: [acme]}
  - {key: "request.auth.claims[groups]", values: [admins]}
  - {key: source.ip, notValues: [10.0.0.0/8, 192.168.1.1]}
  - {key: destination.port, values: ["8080"]}
  - {key: source.serviceAccount, values: [default/productpage]}
  - {key: connection.sni, values: [a.example.com]}
`),
    [],
  );
  assert.deepEqual(
    problems('AuthorizationPolicy', `
rules:
- when:
  - {key: "request.header[x-tenant]", values: [acme]}
  - {key: request.headers, values: [x]}
  - {key: "destination.labels[app]", values: [x]}
  - {key: source.ip, values: [not-an-ip]}
  - {key: request.auth.principal}
`),
    [
      {
        path: 'spec.rules[0].when[0].key',
        message:
          'unknown attribute "request.header[x-tenant]", expected one of request.headers[], request.experimental.inline.headers[], source.ip, remote.ip, source.namespace, source.serviceAccount, source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[], destination.ip, destination.port, connection.sni, experimental.envoy.filters.*[]',
      },
      { path: 'spec.rules[0].when[1].key', message: 'bad key (request.headers): should have format request.headers[name]' },
      { path: 'spec.rules[0].when[2].key', message: 'attribute destination.labels[app] is replaced by the workload selector' },
      { path: 'spec.rules[0].when[3].values[0]', message: '"not-an-ip" is not a valid IP address or CIDR block' },
      { path: 'spec.rules[0].when[4]', message: 'at least one of `values` or `notValues` must be set for key request.auth.principal' },
    ],
  );
});

test('Telemetry: provider names, sampling percentage 0..100, modes', () => {
  assert.deepEqual(problems('Telemetry', 'tracing: [{providers: [{name: zipkin}], randomSamplingPercentage: 10}]\naccessLogging: [{providers: [{name: envoy}]}]'), []);
  assert.deepEqual(
    problems('Telemetry', `
tracing:
- providers: [{}]
  randomSamplingPercentage: 150
metrics:
- overrides: [{match: {metric: REQUEST_COUNT, mode: BOTH}, tagOverrides: {request_host: {operation: UPSERT}}}]
`),
    [
      { path: 'spec.tracing[0].providers[0].name', message: 'provider name is required' },
      { path: 'spec.tracing[0].randomSamplingPercentage', message: 'randomSamplingPercentage must be in the range 0..100 (got 150)' },
      { path: 'spec.metrics[0].overrides[0].match.mode', message: 'unknown value "BOTH", expected one of CLIENT_AND_SERVER, CLIENT, SERVER' },
      { path: 'spec.metrics[0].overrides[0].tagOverrides.request_host.value', message: 'value is required for UPSERT' },
    ],
  );
});
