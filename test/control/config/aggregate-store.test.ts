// AggregateConfigStore: precedence by store order, and child events turned into what the aggregate actually serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregateConfigStore, MemoryConfigStore, type ConfigEvent } from '../../../src/control/config/index.js';
import { resources, virtualServiceYaml } from '../support.js';

const vs = (name: string, host: string) => resources(virtualServiceYaml(name, `hosts: [${host}]\nhttp:\n- route:\n  - destination: {host: ${host}}`))[0]!;

test('the first store holding a resource serves it; events follow what the aggregate serves', () => {
  const overrides = new MemoryConfigStore({ name: 'overrides' });
  const base = new MemoryConfigStore({ name: 'base' });
  base.set(vs('shared', 'from-base'), vs('only-base', 'b'));
  const agg = new AggregateConfigStore([overrides, base]);
  const batches: string[][] = [];
  agg.onChange((events: readonly ConfigEvent[]) => batches.push(events.map((e) => `${e.type} ${e.name}`)));

  assert.equal(agg.get('VirtualService', 'default', 'shared')?.spec.hosts?.[0], 'from-base');
  overrides.set(vs('shared', 'from-overrides'));
  assert.equal(agg.get('VirtualService', 'default', 'shared')?.spec.hosts?.[0], 'from-overrides');
  assert.deepEqual(batches, [['update shared']], 'an override of an existing resource is an update');

  base.set(vs('shared', 'from-base-2'));
  assert.equal(batches.length, 1, 'a change hidden behind an override is not a change of the aggregate');

  overrides.delete('VirtualService', 'default', 'shared');
  assert.equal(agg.get('VirtualService', 'default', 'shared')?.spec.hosts?.[0], 'from-base-2');
  assert.deepEqual(batches[1], ['update shared'], 'removing the override reveals the base version');

  base.delete('VirtualService', 'default', 'shared');
  assert.deepEqual(batches[2], ['delete shared']);
  assert.deepEqual(agg.list('VirtualService').map((r) => r.metadata.name), ['only-base']);
  overrides.set(vs('new', 'n'));
  assert.deepEqual(batches[3], ['add new']);
  assert.deepEqual(agg.list('VirtualService').map((r) => r.metadata.name), ['new', 'only-base']);
  agg.close();
});
