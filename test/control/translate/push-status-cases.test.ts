// What counts and what does not count toward istiod's push status gauges, builder by builder (the end-to-end gauges
// are in test/control/server/pilot-conflict-metrics.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PushStatus, type PushStatusMetric } from '../../../src/control/model/push-status.js';
import { DestinationRuleIndex } from '../../../src/control/model/destination-rule-index.js';
import type { DestinationRule } from '../../../src/api/index.js';
import { buildOutboundListeners, buildVirtualInboundListener } from '../../../src/control/translate/listener/index.js';
import { VirtualHostSet } from '../../../src/control/translate/route/route-configuration.js';
import { MESH, http9080, instance, proxy, service } from './bookinfo-translate-fixture.js';

function recorder(): { status: PushStatus; report: (m: PushStatusMetric, k: string, msg: string) => void } {
  const status = new PushStatus();
  return { status, report: status.reporter('p1') };
}

test('PushStatus: a key counts once however often it is added; onChange fires only for new keys', () => {
  const status = new PushStatus();
  let changes = 0;
  const off = status.onChange(() => changes++);
  status.add('pilot_vservice_dup_domain', 'a:80', 'p1', 'first');
  status.add('pilot_vservice_dup_domain', 'a:80', 'p2', 'again');
  status.add('pilot_vservice_dup_domain', 'b:80', 'p1', 'other');
  assert.equal(status.count('pilot_vservice_dup_domain'), 2);
  assert.equal(status.count('pilot_destrule_subsets'), 0);
  assert.equal(changes, 2);
  assert.deepEqual(status.toJSON()['pilot_vservice_dup_domain']!['a:80'], { proxy: 'p2', message: 'again' });
  off();
  status.add('pilot_vservice_dup_domain', 'c:80', 'p1', 'unheard');
  assert.equal(changes, 2);
});

test('inbound: one workload port selected with different protocols by different hosts counts; same protocol or same host does not', () => {
  const http = service('web', [http9080]);
  const tcpPort = { name: 'tcp', number: 9080, protocol: 'TCP' };
  const tcp = service('db', [tcpPort]);
  const sameProtocol = service('web-alias', [http9080]);
  const cases: [string, ReturnType<typeof instance>[], number][] = [
    ['HTTP and TCP hosts', [instance(http, http9080), instance(tcp, tcpPort)], 1],
    ['two HTTP hosts', [instance(http, http9080), instance(sameProtocol, http9080)], 0],
    ['one host twice', [instance(http, http9080), { ...instance(http, http9080), address: '10.0.0.2' }], 0],
    ['different workload ports', [instance(http, http9080), instance(tcp, tcpPort, 9090)], 0],
  ];
  for (const [name, instances, expected] of cases) {
    const { status, report } = recorder();
    buildVirtualInboundListener(instances, { mesh: MESH, proxy: proxy(), report });
    assert.equal(status.count('pilot_conflict_inbound_listener'), expected, name);
  }
});

test('outbound: TCP over HTTP and TCP over TCP on a wildcard port count by listener; VIPs and different ports do not', () => {
  const tcpPort = { name: 'tcp', number: 9080, protocol: 'TCP' };
  const cases: [string, ReturnType<typeof service>[], Partial<Record<PushStatusMetric, number>>][] = [
    ['address-less TCP on an HTTP port', [service('web', [http9080]), service('db', [tcpPort])], { pilot_conflict_outbound_listener_tcp_over_current_http: 1 }],
    ['two address-less TCP services', [service('db', [tcpPort]), service('db2', [tcpPort])], { pilot_conflict_outbound_listener_tcp_over_current_tcp: 1 }],
    ['two TCP services on one VIP', [service('db', [tcpPort], { addresses: ['10.1.0.1'] }), service('db2', [tcpPort], { addresses: ['10.1.0.1'] })], { pilot_conflict_outbound_listener_tcp_over_current_tcp: 1 }],
    ['TCP services on their own VIPs', [service('web', [http9080]), service('db', [tcpPort], { addresses: ['10.1.0.1'] }), service('db2', [tcpPort], { addresses: ['10.1.0.2'] })], {}],
    ['two HTTP services on a port (one RDS route)', [service('web', [http9080]), service('web2', [http9080])], {}],
  ];
  for (const [name, services, expected] of cases) {
    const { status, report } = recorder();
    buildOutboundListeners(services, { mesh: MESH, report });
    const counts = Object.fromEntries(Object.entries(status.toJSON()).map(([m, keys]) => [m, Object.keys(keys).length]));
    assert.deepEqual(counts, expected, name);
  }
});

test('virtual hosts: a duplicate name or trimmed domains count by virtual host name; distinct hosts do not', () => {
  const { status, report } = recorder();
  const hosts = new VirtualHostSet(report);
  hosts.add({ name: 'a:80', domains: ['a', 'a:80', '10.0.0.1'] });
  hosts.add({ name: 'b:80', domains: ['b', 'b:80'] });
  assert.equal(status.count('pilot_vservice_dup_domain'), 0);
  hosts.add({ name: 'a:80', domains: ['x'] });
  hosts.add({ name: 'c:80', domains: ['c', '10.0.0.1'] });
  hosts.add({ name: 'd:80', domains: ['B'] });
  assert.deepEqual(Object.keys(status.toJSON()['pilot_vservice_dup_domain']!).sort(), ['a:80', 'c:80', 'd:80']);
  assert.deepEqual(hosts.hosts.map((h) => [h.name, h.domains]), [['a:80', ['a', 'a:80', '10.0.0.1']], ['b:80', ['b', 'b:80']], ['c:80', ['c']]]);
});

function dr(name: string, namespace: string, host: string, subsets: string[], selector?: Record<string, string>): DestinationRule {
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace },
    spec: { host, subsets: subsets.map((s) => ({ name: s, labels: { version: s } })), ...(selector ? { workloadSelector: { matchLabels: selector } } : {}) },
  } as DestinationRule;
}

test('DestinationRules: a subset name twice among one namespace\'s rules for one host counts by host; other namespaces, hosts or selected rules do not', () => {
  const cases: [string, DestinationRule[], number][] = [
    ['same namespace and host', [dr('a', 'default', 'web', ['v1']), dr('b', 'default', 'web', ['v1', 'v2'])], 1],
    ['distinct subsets', [dr('a', 'default', 'web', ['v1']), dr('b', 'default', 'web', ['v2'])], 0],
    ['other namespace', [dr('a', 'default', 'web.default.svc.cluster.local', ['v1']), dr('b', 'other', 'web.default.svc.cluster.local', ['v1'])], 0],
    ['other host', [dr('a', 'default', 'web', ['v1']), dr('b', 'default', 'api', ['v1'])], 0],
    ['workloadSelector rule (never merged)', [dr('a', 'default', 'web', ['v1']), dr('b', 'default', 'web', ['v1'], { app: 'x' })], 0],
  ];
  for (const [name, rules, expected] of cases) {
    const { status, report } = recorder();
    new DestinationRuleIndex(rules, 'istio-system', 'cluster.local', report);
    assert.equal(status.count('pilot_destrule_subsets'), expected, name);
  }
});
