// The built-in resource types: each accepts a valid resource and lists every problem of an invalid one, with field paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import { packAny, type Any } from '../../../src/xds/codec.js';
import {
  clusterLoadAssignmentResourceType,
  clusterResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
  secretResourceType,
} from '../../../src/xds/client/index.js';
import { cluster, listener, loadAssignment } from './fixtures.js';

function problemsOf(decode: () => unknown): readonly string[] {
  try {
    decode();
  } catch (err) {
    assert.ok(err instanceof XdsValidationError, `expected an XdsValidationError, got ${String(err)}`);
    return err.details;
  }
  assert.fail('expected the resource to be refused');
}

test('valid resources of each type decode to their message, named as the client files them', () => {
  assert.equal(clusterResourceType.decode(cluster('reviews'), 'reviews').name, 'reviews');
  assert.equal(listenerResourceType.decode(listener('virtualInbound', 15006), 'virtualInbound').name, 'virtualInbound');
  assert.equal(clusterLoadAssignmentResourceType.nameOf(loadAssignment('reviews', 9080)), 'reviews');
  assert.equal(clusterLoadAssignmentResourceType.decode(loadAssignment('reviews', 9080), 'reviews').cluster_name, 'reviews');
  const route = packAny('envoy.config.route.v3.RouteConfiguration', {
    name: '9080',
    virtual_hosts: [{ name: 'reviews', domains: ['reviews', 'reviews.default.svc.cluster.local'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||reviews' } }] }],
  });
  assert.equal(routeConfigurationResourceType.decode(route, '9080').virtual_hosts?.length, 1);
  const secret = packAny('envoy.extensions.transport_sockets.tls.v3.Secret', { name: 'default', tls_certificate: { certificate_chain: { inline_string: 'PEM' }, private_key: { inline_string: 'KEY' } } });
  assert.equal(secretResourceType.decode(secret, 'default').name, 'default');
});

test('a Cluster lists every problem with its field path', () => {
  const bad = cluster('', { connect_timeout: { seconds: 0 }, type: 'EDS', load_assignment: { cluster_name: 'x' } });
  assert.deepEqual(problemsOf(() => clusterResourceType.decode(bad, '')), [
    'name: must not be empty',
    'connect_timeout: must be greater than 0s',
    'load_assignment: must be empty for an EDS cluster (endpoints come from EDS)',
  ]);
});

test('a static Cluster has its embedded endpoints checked', () => {
  const bad = cluster('static', { type: 'STATIC', eds_cluster_config: undefined, load_assignment: { cluster_name: 'static', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '', port_value: 0 } } } }] }] } });
  assert.deepEqual(problemsOf(() => clusterResourceType.decode(bad, 'static')), [
    'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: must not be empty',
    'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be between 1 and 65535',
  ]);
});

test('an Any of another type, or bytes that do not decode, are refused with the reason', () => {
  assert.deepEqual(problemsOf(() => clusterResourceType.decode(listener('l', 1), 'l')), [
    'type_url: expected type.googleapis.com/envoy.config.cluster.v3.Cluster, got type.googleapis.com/envoy.config.listener.v3.Listener',
  ]);
  const garbage: Any = { type_url: clusterResourceType.typeUrl, value: Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) };
  const [reason] = problemsOf(() => clusterResourceType.decode(garbage, 'x'));
  assert.match(reason!, /malformed envoy\.config\.cluster\.v3\.Cluster/);
  assert.equal(clusterResourceType.nameOf(garbage), undefined);
});

test('a ClusterLoadAssignment needs contiguous priorities, weights of at least 1 and real addresses', () => {
  const bad = packAny('envoy.config.endpoint.v3.ClusterLoadAssignment', {
    cluster_name: 'reviews',
    endpoints: [
      { priority: 0, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 70000 } } }, load_balancing_weight: { value: 0 } }] },
      { priority: 2, lb_endpoints: [{ endpoint_name: 'named' }] },
    ],
  });
  assert.deepEqual(problemsOf(() => clusterLoadAssignmentResourceType.decode(bad, 'reviews')), [
    'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be at most 65535, got 70000',
    'endpoints[0].lb_endpoints[0].load_balancing_weight: must be at least 1',
    'endpoints[1].lb_endpoints[0].endpoint: named endpoints are not supported',
    'endpoints: priorities must be contiguous from 0, got 0, 2',
  ]);
});

test('a Listener needs an address and a filter chain', () => {
  const bad = packAny('envoy.config.listener.v3.Listener', { name: 'l' });
  assert.deepEqual(problemsOf(() => listenerResourceType.decode(bad, 'l')), [
    'address: is required',
    'filter_chains: at least one filter chain, or a default_filter_chain, is required',
  ]);
});

test('a RouteConfiguration refuses hosts without domains, a domain served twice, routes without match or action', () => {
  const bad = packAny('envoy.config.route.v3.RouteConfiguration', {
    name: '80',
    virtual_hosts: [
      { name: 'a', domains: ['*'], routes: [{ route: { cluster: 'c' } }, { match: { prefix: '/' } }] },
      { name: 'b', domains: ['*'] },
      { name: '', domains: [] },
    ],
  });
  assert.deepEqual(problemsOf(() => routeConfigurationResourceType.decode(bad, '80')), [
    'virtual_hosts[0].routes[0].match: is required',
    'virtual_hosts[0].routes[1]: one of route, redirect, direct_response, filter_action, non_forwarding_action is required',
    'virtual_hosts[1].domains: "*" is already served by virtual host "a"',
    'virtual_hosts[2].name: must not be empty',
    'virtual_hosts[2].domains: must list at least one domain',
  ]);
});

test('a Secret must carry a kind of secret', () => {
  const bad = packAny('envoy.extensions.transport_sockets.tls.v3.Secret', { name: 's' });
  assert.deepEqual(problemsOf(() => secretResourceType.decode(bad, 's')), ['one of tls_certificate, session_ticket_keys, validation_context, generic_secret is required']);
});
