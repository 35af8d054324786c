// Validation added with the authorization translation: path templates, serviceAccounts, nested claims, targetRef(s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { problems } from './helpers.js';

test('AuthorizationPolicy paths: Istio path templates {*} and {**} as whole segments, {**} last, pchar literals', () => {
  assert.deepEqual(problems('AuthorizationPolicy', 'rules: [{to: [{operation: {paths: ["/a/{*}/b", "/{**}/c", "/x/{**}", "/plain*"], notPaths: ["*.png"]}}]}]'), []);
  assert.deepEqual(problems('AuthorizationPolicy', 'rules: [{to: [{operation: {paths: ["/a/{**}/{*}", "/a/{x}", "/a{*}", "/a/{*}/b c"]}}]}]'), [
    { path: 'spec.rules[0].to[0].operation.paths[0]', message: 'invalid or unsupported path "/a/{**}/{*}": {**} is not the last operator' },
    { path: 'spec.rules[0].to[0].operation.paths[1]', message: 'invalid or unsupported path "/a/{x}": contains \'{\' or \'}\' beyond a supported path template' },
    { path: 'spec.rules[0].to[0].operation.paths[2]', message: 'invalid or unsupported path "/a{*}": contains \'{\' or \'}\' beyond a supported path template' },
    { path: 'spec.rules[0].to[0].operation.paths[3]', message: 'invalid or unsupported path "/a/{*}/b c": segment "b c" is not a valid string literal' },
  ]);
});

test('AuthorizationPolicy serviceAccounts: `sa` or `ns/sa`, no wildcard, at most 16', () => {
  assert.deepEqual(problems('AuthorizationPolicy', 'rules: [{from: [{source: {serviceAccounts: [my-ns/my-sa, sa-only], notServiceAccounts: [x/y]}}]}]'), []);
  const many = JSON.stringify(Array.from({ length: 17 }, (_, i) => `sa${i}`));
  assert.deepEqual(problems('AuthorizationPolicy', `rules: [{from: [{source: {serviceAccounts: ["a/b/c", "sa-*"], notServiceAccounts: ${many}}}]}]`), [
    { path: 'spec.rules[0].from[0].source.serviceAccounts[0]', message: 'expected format \'serviceAccount\' or \'namespace/serviceAccount\', found "a/b/c"' },
    { path: 'spec.rules[0].from[0].source.serviceAccounts[1]', message: 'wildcard not allowed in serviceAccounts' },
    { path: 'spec.rules[0].from[0].source.notServiceAccounts', message: 'may not have more than 16 values' },
  ]);
});

test('AuthorizationPolicy when: nested claims request.auth.claims[a][b] are accepted, malformed ones are not', () => {
  assert.deepEqual(problems('AuthorizationPolicy', 'rules: [{when: [{key: "request.auth.claims[nested1][nested2]", values: [x]}]}]'), []);
  assert.deepEqual(problems('AuthorizationPolicy', 'rules: [{when: [{key: "request.auth.claims[a]b", values: [x]}, {key: "request.auth.claims", values: [x]}]}]'), [
    { path: 'spec.rules[0].when[0].key', message: 'bad key (request.auth.claims[a]b): should have format request.auth.claims[name] or request.auth.claims[name][nested]' },
    { path: 'spec.rules[0].when[1].key', message: 'bad key (request.auth.claims): should have format request.auth.claims[name] or request.auth.claims[name][nested]' },
  ]);
});

test('targetRef/targetRefs are refused (Trellis binds policies by selector only), not silently ignored', () => {
  assert.deepEqual(problems('AuthorizationPolicy', 'targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\nrules: [{}]'), [
    { path: 'spec.targetRefs', message: 'targetRef/targetRefs are not supported by Trellis: select workloads with spec.selector' },
  ]);
  assert.deepEqual(problems('RequestAuthentication', 'targetRef: {kind: Service, group: "", name: svc}\njwtRules: [{issuer: a, jwksUri: "https://a/k"}]'), [
    { path: 'spec.targetRef', message: 'targetRef/targetRefs are not supported by Trellis: select workloads with spec.selector' },
  ]);
});
