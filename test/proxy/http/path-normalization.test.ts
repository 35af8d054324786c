// The HCM's path hardening as a function: Envoy's canonicalPath cases (from its path_utility_test), escaped-slash
// actions, merge_slashes order, and the path-confusion inputs of the security issue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalizePath,
  compilePathNormalization,
  mergeSlashes,
  normalizePath,
  normalizeRequestPath,
  unescapeSlashes,
  type PathNormalizationOptions,
} from '../../../src/proxy/http/path-normalization.js';

const NORMALIZE: PathNormalizationOptions = { normalizePath: true, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' };

test('canonicalizePath: Envoy path_utility_test cases', () => {
  const cases: [string, string][] = [
    ['/xyz', '/xyz'],
    ['/x/y/z', '/x/y/z'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['a/b/../c', '/a/c'],
    ['/a/b/../../../../c', '/c'],
    ['/a/..\\c', '/c'],
    ['/%c0%af', '/%C0%AF'],
    ['/%5c%25', '/%5C%25'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/a/b/%2E./c', '/a/c'],
    ['/a/b/%2E/c', '/a/b/c'],
    ['..', '/'],
    ['/../a/b', '/a/b'],
    ['/./a/b', '/a/b'],
    ['/A/B/C', '/A/B/C'],
    ['/a/', '/a/'],
    ['/a/b/..', '/a/'],
    ['/%7euser/%41', '/~user/A'],
    ['/a b"<>`{}', '/a%20b%22%3C%3E%60%7B%7D'],
    ['/\u00e9', '/%E9'],
    ['/\u20ac', '/%E2%82%AC'],
    ['/\u{1F600}', '/%F0%9F%98%80'],
    ['/a/b.js', '/a/b.js'],
    ['/.hidden/x', '/.hidden/x'],
    ['/a..b/c', '/a..b/c'],
    ['/a%2e%2e/b', '/a../b'],
  ];
  for (const [input, expected] of cases) assert.equal(canonicalizePath(input), expected, input);
});

test('canonicalizePath: %00, NUL and malformed escapes fail with a reason', () => {
  for (const input of ['/xyz/.%00../abc', '/xyz/%00.%00./abc', '/xyz/AAAAA%%0000/abc', '/admin%00', '/a\u0000b', '/a%zz', '/a%4']) {
    const r = canonicalizePath(input);
    assert.equal(typeof r, 'object', input);
    assert.ok((r as { reason: string }).reason.length > 0);
  }
});

test('unescapeSlashes and mergeSlashes as Envoy', () => {
  assert.equal(unescapeSlashes('%2f%2F'), '//');
  assert.equal(unescapeSlashes('/a%2Fb%2fc/'), '/a/b/c/');
  assert.equal(unescapeSlashes('/a%5cb%5C'), '/a\\b\\');
  assert.equal(unescapeSlashes('%2b'), '%2b');
  assert.equal(unescapeSlashes('%2'), '%2');
  assert.equal(mergeSlashes('//a/b/c'), '/a/b/c');
  assert.equal(mergeSlashes('/a////b/c//'), '/a/b/c/');
  assert.equal(mergeSlashes('/a'), '/a');
});

test('normalizePath: the query is untouched, a fragment is refused', () => {
  assert.deepEqual(normalizePath('/a/../b?x=/../y//z&p=%2e', NORMALIZE), { action: 'continue', path: '/b?x=/../y//z&p=%2e' });
  assert.equal(normalizePath('/a#frag', NORMALIZE).action, 'reject');
  assert.equal(normalizeRequestPath('/a/./b', true, false), '/a/b');
  assert.equal(normalizeRequestPath('/a/%zz', true, false), undefined);
  assert.equal(normalizeRequestPath('//a//b', false, true), '//a//b'.replace(/\/+/g, '/'));
});

test('path-confusion attempts from the security issue', () => {
  const both: PathNormalizationOptions = { normalizePath: true, mergeSlashes: true, escapedSlashes: 'KEEP_UNCHANGED' };
  assert.deepEqual(normalizePath('/a/%2e%2e/admin', both), { action: 'continue', path: '/admin' });
  assert.deepEqual(normalizePath('/public/..%2f..%2fadmin', both), { action: 'continue', path: '/public/..%2F..%2Fadmin' });
  assert.deepEqual(normalizePath('//admin', both), { action: 'continue', path: '/admin' });
  // Case is kept: a case-sensitive rule on /admin does not match /ADMIN, and the path reaches the backend as sent.
  assert.deepEqual(normalizePath('/ADMIN', both), { action: 'continue', path: '/ADMIN' });
  // Path parameters are kept (Envoy does not strip them): /admin;x is not /admin.
  assert.deepEqual(normalizePath('/admin;x', both), { action: 'continue', path: '/admin;x' });
  assert.equal(normalizePath('/admin%00', both).action, 'reject');
  // merge_slashes after normalization: an escape decoded into a `//` is merged too.
  assert.deepEqual(normalizePath('/a/.//b', both), { action: 'continue', path: '/a/b' });
});

test('path_with_escaped_slashes_action: reject, redirect, forward, keep', () => {
  const opts = (escapedSlashes: PathNormalizationOptions['escapedSlashes']): PathNormalizationOptions => ({ normalizePath: true, mergeSlashes: true, escapedSlashes });
  assert.equal(normalizePath('/a%2Fb', opts('REJECT_REQUEST')).action, 'reject');
  assert.deepEqual(normalizePath('/a/b', opts('REJECT_REQUEST')), { action: 'continue', path: '/a/b' });
  assert.deepEqual(normalizePath('/a%2fb%5Cc?q=%2F', opts('UNESCAPE_AND_REDIRECT')), { action: 'redirect', path: '/a/b/c?q=%2F' });
  assert.deepEqual(normalizePath('/a/b', opts('UNESCAPE_AND_REDIRECT')), { action: 'continue', path: '/a/b' });
  // Unescaped before dot-segment removal: ..%2F becomes a real parent segment.
  assert.deepEqual(normalizePath('/public/..%2Fadmin', opts('UNESCAPE_AND_FORWARD')), { action: 'continue', path: '/admin' });
  assert.deepEqual(normalizePath('/a%2Fb', opts('KEEP_UNCHANGED')), { action: 'continue', path: '/a%2Fb' });
});

test('compilePathNormalization reads the HCM fields; all off is undefined; an unknown action is a problem', () => {
  const problems: string[] = [];
  assert.equal(compilePathNormalization({}, 'hcm', problems), undefined);
  assert.deepEqual(compilePathNormalization({ normalize_path: { value: true } }, 'hcm', problems), { normalizePath: true, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' });
  assert.deepEqual(compilePathNormalization({ path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT' }, 'hcm', problems), {
    normalizePath: false,
    mergeSlashes: false,
    escapedSlashes: 'UNESCAPE_AND_REDIRECT',
  });
  assert.deepEqual(problems, []);
  compilePathNormalization({ path_with_escaped_slashes_action: 'BOGUS' as never }, 'hcm', problems);
  assert.deepEqual(problems, ['hcm.path_with_escaped_slashes_action: unknown value BOGUS']);
});
