// VirtualService validation, one test per rule family, asserting exact field paths and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { problems } from './helpers.js';

const route = (body: string) => `
hosts: [reviews]
http:
- ${body.trim().split('\n').join('\n  ')}
`;

test('weights: each 0..100 and summing to 100 when there is more than one destination', () => {
  assert.deepEqual(
    problems('VirtualService', route(`
route:
- destination: {host: reviews, subset: v1}
  weight: 50
- destination: {host: reviews, subset: v2}
  weight: 40
`)),
    [{ path: 'spec.http[0].route', message: 'weights must sum to 100 (got 90)' }],
  );
  assert.deepEqual(
    problems('VirtualService', route(`
route:
- destination: {host: reviews}
  weight: 120
- destination: {host: reviews}
  weight: -20
`)),
    [
      { path: 'spec.http[0].route[0].weight', message: 'must be in the range 0..100 (got 120)' },
      { path: 'spec.http[0].route[1].weight', message: 'must be in the range 0..100 (got -20)' },
    ],
  );
  // A single destination needs no weight; an explicit 100/0 split is fine.
  assert.deepEqual(problems('VirtualService', route('route: [{destination: {host: reviews}}]')), []);
  assert.deepEqual(
    problems('VirtualService', route('route: [{destination: {host: a}, weight: 100}, {destination: {host: b}, weight: 0}]')),
    [],
  );
});

test('wrong field types are reported at their path, not thrown', () => {
  assert.deepEqual(
    problems('VirtualService', route(`
route:
- destination: {host: reviews}
  weight: "fifty"
- destination: {host: ratings}
  weight: 50
`)),
    [{ path: 'spec.http[0].route[0].weight', message: 'expected an integer, got a string ("fifty")' }],
  );
  assert.deepEqual(problems('VirtualService', 'hosts: [reviews]\nhttp: {}'), [
    { path: 'spec.http', message: 'expected a list, got an object' },
    { path: 'spec', message: 'http, tcp or tls must be provided in virtual service' },
  ]);
  assert.deepEqual(problems('VirtualService', 'hosts: reviews\nhttp: [{route: [{destination: {host: 7}}]}]'), [
    { path: 'spec.hosts', message: 'expected a list, got a string ("reviews")' },
    { path: 'spec.hosts', message: 'virtual service must have at least one host (delegate VirtualServices are not supported)' },
    { path: 'spec.http[0].route[0].destination.host', message: 'expected a string, got a number (7)' },
  ]);
});

test('unknown fields are reported with the closest known name', () => {
  assert.deepEqual(problems('VirtualService', route('route: [{destination: {host: reviews}, weigth: 100}]')), [
    { path: 'spec.http[0].route[0].weigth', message: 'unknown field (did you mean "weight"?)' },
  ]);
});

test('hosts: well-formed names, wildcards only as a first label, no * for the mesh, no duplicates', () => {
  assert.deepEqual(
    problems('VirtualService', `
hosts: ["", "bad_host.example.com", "*.example.com", "a.*.com", "10.0.0.1", "reviews", "reviews"]
http: [{route: [{destination: {host: reviews}}]}]
`),
    [
      { path: 'spec.hosts[0]', message: 'empty domain name not allowed' },
      { path: 'spec.hosts[1]', message: 'domain name "bad_host.example.com" invalid (label "bad_host" invalid)' },
      { path: 'spec.hosts[3]', message: 'domain name "a.*.com" invalid (label "*" invalid)' },
      { path: 'spec.hosts[6]', message: 'duplicate hosts in virtual service: reviews & reviews' },
    ],
  );
  assert.deepEqual(problems('VirtualService', 'hosts: ["*"]\nhttp: [{route: [{destination: {host: reviews}}]}]'), [
    { path: 'spec.hosts[0]', message: 'wildcard host * is not allowed for virtual services bound to the mesh gateway' },
  ]);
  assert.deepEqual(problems('VirtualService', 'hosts: ["*"]\ngateways: [istio-system/ingress]\nhttp: [{route: [{destination: {host: reviews}}]}]'), []);
  assert.deepEqual(problems('VirtualService', 'hosts: [a]\ngateways: ["bad/"]\nhttp: [{route: [{destination: {host: "*"}}]}]'), [
    { path: 'spec.gateways[0]', message: 'config namespace and gateway name cannot be empty' },
    { path: 'spec.http[0].route[0].destination.host', message: 'invalid destination host "*"' },
  ]);
});

test('durations: Istio syntax, at least 1ms, millisecond precision', () => {
  for (const ok of ['1.5s', '100ms', '1m', '1h', '1h30m']) {
    assert.deepEqual(problems('VirtualService', route(`route: [{destination: {host: reviews}}]\ntimeout: ${ok}`)), [], ok);
  }
  assert.deepEqual(
    problems('VirtualService', route(`
route: [{destination: {host: reviews}}]
timeout: 10 seconds
retries: {attempts: 2, perTryTimeout: 500us}
`)),
    [
      { path: 'spec.http[0].timeout', message: 'invalid duration "10 seconds", expected a number with a unit such as 1.5s, 100ms, 1m or 1h' },
      { path: 'spec.http[0].retries.perTryTimeout', message: 'duration must be at least 1ms (got 500us)' },
    ],
  );
  assert.deepEqual(problems('VirtualService', route('route: [{destination: {host: reviews}}]\ntimeout: 1.0005s')), [
    { path: 'spec.http[0].timeout', message: 'only durations to millisecond precision are supported (got 1.0005s)' },
  ]);
});

test('regexes must compile (RE2-style: no lookaround)', () => {
  assert.deepEqual(
    problems('VirtualService', `
hosts: [reviews]
http:
- match:
  - uri: {regex: "/api/(v1|v2"}
  - headers: {x-user: {regex: "(?!admin).*"}}
  - uri: {regex: "(?i)/Reviews/(?P<id>[0-9]+)"}
  route: [{destination: {host: reviews}}]
`),
    [
      {
        path: 'spec.http[0].match[0].uri.regex',
        message: 'invalid regex "/api/(v1|v2": Unterminated group; Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)',
      },
      { path: 'spec.http[0].match[1].headers.x-user.regex', message: 'invalid regex "(?!admin).*": lookahead and lookbehind are not supported by RE2' },
    ],
  );
});

test('string matches: one of exact, prefix, regex', () => {
  assert.deepEqual(problems('VirtualService', route('match: [{uri: {exact: /a, prefix: /b}}]\nroute: [{destination: {host: reviews}}]')), [
    { path: 'spec.http[0].match[0].uri', message: 'only one of exact, prefix, regex may be set (got exact and prefix)' },
  ]);
});

test('ports are 1..65535', () => {
  assert.deepEqual(
    problems('VirtualService', route('match: [{port: 0}]\nroute: [{destination: {host: reviews, port: {number: 70000}}}]')),
    [
      { path: 'spec.http[0].match[0].port', message: 'must be in the range 1..65535 (got 0)' },
      { path: 'spec.http[0].route[0].destination.port.number', message: 'must be in the range 1..65535 (got 70000)' },
    ],
  );
});

test('fault injection: abort status 200..599, percentages 0..100, abort or delay required', () => {
  assert.deepEqual(
    problems('VirtualService', route(`
route: [{destination: {host: reviews}}]
fault:
  abort: {httpStatus: 700, percentage: {value: 150}}
  delay: {fixedDelay: 5s, percentage: {value: -1}}
`)),
    [
      { path: 'spec.http[0].fault.delay.percentage.value', message: 'percentage must be in the range 0..100 (got -1)' },
      { path: 'spec.http[0].fault.abort.httpStatus', message: 'HTTP status 700 is not in range 200-599' },
      { path: 'spec.http[0].fault.abort.percentage.value', message: 'percentage must be in the range 0..100 (got 150)' },
    ],
  );
  assert.deepEqual(problems('VirtualService', route('route: [{destination: {host: reviews}}]\nfault: {}')), [
    { path: 'spec.http[0].fault', message: 'HTTP fault injection must have an abort and/or a delay' },
  ]);
});

test('retries: attempts >= 0, known retryOn policies, no policy when disabled', () => {
  assert.deepEqual(
    problems('VirtualService', route('route: [{destination: {host: reviews}}]\nretries: {attempts: -1, retryOn: "5xx,503,sometimes"}')),
    [
      { path: 'spec.http[0].retries.attempts', message: 'attempts cannot be negative' },
      {
        path: 'spec.http[0].retries.retryOn',
        message:
          '"sometimes" is not a valid retryOn policy (expected an HTTP status code or one of 5xx, gateway-error, reset, reset-before-request, connect-failure, envoy-ratelimited, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)',
      },
    ],
  );
  assert.deepEqual(problems('VirtualService', route('route: [{destination: {host: reviews}}]\nretries: {attempts: 0, perTryTimeout: 1s}')), [
    { path: 'spec.http[0].retries', message: 'http retry policy configured when attempts are set to 0 (disabled)' },
  ]);
});

test('route, redirect and direct response exclude each other; one is required', () => {
  assert.deepEqual(problems('VirtualService', route('redirect: {uri: /v2}\nroute: [{destination: {host: reviews}}]')), [
    { path: 'spec.http[0]', message: 'HTTP route cannot contain both route and redirect' },
  ]);
  assert.deepEqual(problems('VirtualService', route('match: [{uri: {prefix: /}}]')), [
    { path: 'spec.http[0].route', message: 'HTTP route, redirect or direct_response is required' },
  ]);
  assert.deepEqual(problems('VirtualService', route('redirect: {uri: /v2, redirectCode: 200}')), [
    { path: 'spec.http[0].redirect.redirectCode', message: '200 is not a valid redirect code, must be 3xx' },
  ]);
});

test('mirror, header operations and CORS', () => {
  assert.deepEqual(
    problems('VirtualService', route(`
route: [{destination: {host: reviews}}]
mirror: {host: reviews, subset: "v_2"}
mirrorPercentage: {value: 101}
headers:
  request:
    set: {x-ok: "1", ":path": /x}
    remove: [host]
corsPolicy:
  allowOrigins: [{exact: "https://a.example"}]
  allowMethods: [GET, FETCH]
  maxAge: 1500ms
`)),
    [
      { path: 'spec.http[0].headers.request.set[":path"]', message: 'invalid header ":path": pseudo-headers and Host cannot be modified' },
      { path: 'spec.http[0].headers.request.remove[0]', message: 'invalid header "host": pseudo-headers and Host cannot be removed' },
      { path: 'spec.http[0].mirror.subset', message: 'subset name "v_2" is invalid (expected a DNS-1123 label)' },
      { path: 'spec.http[0].mirrorPercentage.value', message: 'percentage must be in the range 0..100 (got 101)' },
      { path: 'spec.http[0].corsPolicy.allowMethods[1]', message: '"FETCH" is not a supported HTTP method' },
      { path: 'spec.http[0].corsPolicy.maxAge', message: 'max_age duration is accurate only to seconds precision' },
    ],
  );
});

test('tcp and tls routes: destinations, weights, SNI hosts within the virtual service hosts', () => {
  assert.deepEqual(
    problems('VirtualService', `
hosts: ["*.example.com"]
tls:
- match: [{sniHosts: [a.example.com, other.org], port: 443}]
  route: [{destination: {host: a.example.com}, weight: 60}, {destination: {host: b.example.com}, weight: 60}]
tcp:
- match: [{destinationSubnets: [10.0.0.0/33]}]
`),
    [
      { path: 'spec.tcp[0].match[0].destinationSubnets[0]', message: '"10.0.0.0/33" is not a valid CIDR block' },
      { path: 'spec.tcp[0].route', message: 'TCP route is required' },
      { path: 'spec.tls[0].match[0].sniHosts[1]', message: 'SNI host "other.org" is not a compatible subset of any of the virtual service hosts: [*.example.com]' },
      { path: 'spec.tls[0].route', message: 'weights must sum to 100 (got 120)' },
    ],
  );
});

test('every problem is returned, not just the first', () => {
  const found = problems('VirtualService', `
hosts: [reviews]
http:
- route:
  - destination: {host: reviews, subset: v1}
    weight: 50
  - destination: {host: reviews, subset: v3}
    weight: 40
  timeout: soon
  retries: {attempts: -2}
- match: [{uri: {regex: "("}}]
  route: [{destination: {host: ratings, port: {number: 0}}}]
`);
  assert.deepEqual(
    found.map((p) => p.path),
    [
      'spec.http[0].route',
      'spec.http[0].timeout',
      'spec.http[0].retries.attempts',
      'spec.http[1].match[0].uri.regex',
      'spec.http[1].route[0].destination.port.number',
    ],
  );
});
