// MemoryConfigStore: validated set/delete/replace, content resourceVersions, batched change events, frozen resources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigValidationError } from '../../../src/common/errors.js';
import { MemoryConfigStore, contentVersion, type ConfigEvent } from '../../../src/control/config/index.js';
import { resources, virtualServiceYaml } from '../support.js';

const vs = (name: string, host: string, namespace = 'default') =>
  resources(virtualServiceYaml(name, `hosts: [${host}]\nhttp:\n- route:\n  - destination:\n      host: ${host}`, namespace))[0]!;

test('set, get and list: sorted by namespace then name, filtered by namespace, stamped with a content resourceVersion', () => {
  const store = new MemoryConfigStore();
  store.set(vs('b', 'b'), vs('a', 'a', 'prod'), vs('a', 'a'));
  assert.deepEqual(store.list('VirtualService').map((r) => `${r.metadata.namespace}/${r.metadata.name}`), ['default/a', 'default/b', 'prod/a']);
  assert.deepEqual(store.list('VirtualService', 'prod').map((r) => r.metadata.name), ['a']);
  assert.deepEqual(store.list('DestinationRule'), []);
  const a = store.get('VirtualService', 'default', 'a');
  assert.equal(a?.spec.hosts?.[0], 'a');
  assert.match(a!.metadata.resourceVersion!, /^[0-9a-f]{16}$/);
  assert.equal(store.get('VirtualService', 'default', 'missing'), undefined);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a!.spec), 'stored resources cannot be changed under their readers');
});

test('resourceVersion depends on content only, not key order or origin', () => {
  const one = resources('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x, namespace: default}\nspec: {hosts: [x], gateways: [g]}\n')[0]!;
  const two = resources('kind: VirtualService\nspec: {gateways: [g], hosts: [x]}\nmetadata: {namespace: default, name: x}\napiVersion: networking.istio.io/v1\n')[0]!;
  two.origin = { source: 'elsewhere.yaml', document: 4 };
  assert.equal(contentVersion(one), contentVersion(two));
  const three = resources('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x, namespace: default}\nspec: {hosts: [y], gateways: [g]}\n')[0]!;
  assert.notEqual(contentVersion(one), contentVersion(three));
});

test('changes are notified in batches, and only when content changes', () => {
  const store = new MemoryConfigStore();
  const batches: ConfigEvent[][] = [];
  const off = store.onChange((events) => batches.push([...events]));
  store.set(vs('a', 'a'), vs('b', 'b'));
  assert.deepEqual(batches.map((b) => b.map((e) => `${e.type} ${e.name}`)), [['add a', 'add b']]);
  store.set(vs('a', 'a'));
  assert.equal(batches.length, 1, 'setting identical content is not a change');
  store.set(vs('a', 'a2'));
  assert.deepEqual(batches[1]!.map((e) => `${e.type} ${e.name}`), ['update a']);
  assert.equal(batches[1]![0]!.resourceVersion, store.get('VirtualService', 'default', 'a')!.metadata.resourceVersion);
  assert.equal(store.delete('VirtualService', 'default', 'b'), true);
  assert.equal(store.delete('VirtualService', 'default', 'b'), false);
  assert.deepEqual(batches[2]!.map((e) => `${e.type} ${e.name}`), ['delete b']);
  assert.equal(batches.length, 3, 'deleting what is not there notifies nothing');
  store.batch(() => {
    store.set(vs('c', 'c'));
    store.delete('VirtualService', 'default', 'a');
  });
  assert.deepEqual(batches[3]!.map((e) => `${e.type} ${e.name}`), ['add c', 'delete a']);
  store.replace([vs('c', 'c'), vs('d', 'd')]);
  assert.deepEqual(batches[4]!.map((e) => `${e.type} ${e.name}`), ['add d']);
  off();
  store.set(vs('e', 'e'));
  assert.equal(batches.length, 5, 'unsubscribed');
});

test('an invalid resource is refused with every problem and its field path, and nothing of the call is stored', () => {
  const store = new MemoryConfigStore();
  const bad = resources(virtualServiceYaml('bad', 'hosts: [bad]\nhttp:\n- route:\n  - destination:\n      host: bad\n    weight: 40\n  - destination:\n      host: other\n    weight: 40'))[0]!;
  assert.throws(() => store.set(vs('good', 'good'), bad), (err: unknown) => {
    assert.ok(err instanceof ConfigValidationError);
    assert.equal(err.code, 'TRELLIS_CONFIG_INVALID');
    assert.match(err.details[0]!, /^test\.yaml: VirtualService default\/bad: spec\.http\[0\]\.route: /);
    return true;
  });
  assert.deepEqual(store.list('VirtualService'), []);
});

test('a throwing change handler does not stop the others', () => {
  const store = new MemoryConfigStore();
  const seen: string[] = [];
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    store.onChange(() => {
      throw new Error('consumer bug');
    });
    store.onChange((events) => seen.push(...events.map((e) => e.name)));
    store.set(vs('a', 'a'));
  } finally {
    console.error = original;
  }
  assert.deepEqual(seen, ['a']);
  assert.equal(errors.length, 1);
});
