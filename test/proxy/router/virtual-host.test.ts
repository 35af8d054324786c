import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteConfiguration } from '../../../src/proxy/router/compile-route-table.js';
import type { RouteConfiguration } from './support.js';
import { request } from './support.js';

function vhost(name: string, domains: string[]) {
  return { name, domains, routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] };
}

const config: RouteConfiguration = {
  name: 'r',
  virtual_hosts: [
    vhost('default', ['*']),
    vhost('exact', ['api.example.com', 'api.example.com:8080']),
    vhost('suffix-short', ['*.example.com']),
    vhost('suffix-long', ['*-bar.example.com']),
    vhost('prefix-short', ['foo.*']),
    vhost('prefix-long', ['foo.bar.*']),
  ],
};

test('virtual hosts: exact, then longest *.suffix, then longest prefix.*, then *', () => {
  const table = compileRouteConfiguration(config);
  const cases: Array<[string, string]> = [
    ['api.example.com', 'exact'],
    ['API.Example.COM', 'exact'],
    ['api.example.com:8080', 'exact'],
    // No implicit port stripping: the port is part of the host unless ignore_port_in_host_matching.
    ['api.example.com:9090', 'default'],
    ['x.example.com:80', 'default'],
    ['x.example.com', 'suffix-short'],
    ['foo-bar.example.com', 'suffix-long'],
    // The wildcard stands for at least one character.
    ['-bar.example.com', 'suffix-short'],
    ['.example.com', 'default'],
    ['foo.bar.baz', 'prefix-long'],
    ['foo.baz', 'prefix-short'],
    ['foo.example.com', 'suffix-short'],
    ['other.org', 'default'],
  ];
  for (const [authority, expected] of cases) {
    assert.equal(table.match(request('/', {}, authority), 0)?.virtualHost.name, expected, authority);
  }
});

test('ignore_port_in_host_matching strips the port (IPv6 literals keep their colons)', () => {
  const table = compileRouteConfiguration({
    ...config,
    virtual_hosts: [vhost('exact', ['api.example.com']), vhost('v6', ['[::1]'])],
    ignore_port_in_host_matching: true,
  });
  assert.equal(table.match(request('/', {}, 'api.example.com:8080'), 0)?.virtualHost.name, 'exact');
  assert.equal(table.match(request('/', {}, '[::1]:80'), 0)?.virtualHost.name, 'v6');
  assert.equal(table.match(request('/', {}, '[::1]'), 0)?.virtualHost.name, 'v6');
  assert.equal(table.match(request('/', {}, 'other'), 0), undefined);
});

test('no matching virtual host, or no :authority with named hosts → undefined (404 NR); a lone * host needs no authority', () => {
  const named = compileRouteConfiguration({ name: 'r', virtual_hosts: [vhost('a', ['a.com'])] });
  assert.equal(named.match(request('/', {}, 'b.com'), 0), undefined);
  const headers = request('/');
  delete headers[':authority'];
  assert.equal(named.match(headers, 0), undefined);
  const onlyDefault = compileRouteConfiguration({ name: 'r', virtual_hosts: [vhost('d', ['*'])] });
  assert.equal(onlyDefault.match(headers, 0)?.virtualHost.name, 'd');
});

test('duplicate domains are refused like Envoy', () => {
  assert.throws(
    () => compileRouteConfiguration({ name: 'r', virtual_hosts: [vhost('a', ['x.com', '*']), vhost('b', ['X.com', '*'])] }),
    (err: Error & { details?: string[] }) => {
      assert.deepEqual(err.details, [
        'virtual_hosts[1].domains[0]: only unique values for domains are permitted; duplicate entry of domain x.com in route r',
        'virtual_hosts[1].domains[1]: only a single wildcard domain is permitted in route r',
      ]);
      return true;
    },
  );
});
