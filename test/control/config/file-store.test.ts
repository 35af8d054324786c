// FileConfigStore over real temp directories and real fs.watch: live reload, last valid version on bad edits, broken YAML, conflicts, races, size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unlink, writeFile } from 'node:fs/promises';
import { ConfigError } from '../../../src/common/errors.js';
import { FileConfigStore, formatConfigProblem, type ConfigEvent, type FileConfigStoreOptions } from '../../../src/control/config/index.js';
import { TempDir, doc, serviceEntryYaml, virtualServiceYaml, waitFor } from '../support.js';

const vsYaml = (name: string, host: string) => virtualServiceYaml(name, `hosts: [${host}]\nhttp:\n- route:\n  - destination: {host: ${host}}`);
// Weights that do not sum to 100: a validation problem at spec.http[0].route.
const badVsYaml = (name: string) =>
  virtualServiceYaml(name, 'hosts: [x]\nhttp:\n- route:\n  - destination:\n      host: x\n    weight: 40\n  - destination:\n      host: y\n    weight: 40');

async function withStore(
  setup: (dir: TempDir) => Promise<void>,
  body: (store: FileConfigStore, dir: TempDir, batches: ConfigEvent[][]) => Promise<void>,
  options: Partial<FileConfigStoreOptions> = {},
): Promise<void> {
  const dir = await TempDir.create();
  const store = new FileConfigStore({ dir: dir.path, debounceMs: 50, ...options });
  try {
    await setup(dir);
    const batches: ConfigEvent[][] = [];
    store.onChange((events) => batches.push([...events]));
    await store.start();
    await body(store, dir, batches);
  } finally {
    await store.close();
    await dir.dispose();
  }
}

const hostOf = (store: FileConfigStore, name: string) => store.get('VirtualService', 'default', name)?.spec.hosts?.[0];

test('loads every .yaml, .yml and .json file recursively, multi-document, skipping hidden and other files', async () => {
  await withStore(async (dir) => {
    await dir.write('a.yaml', vsYaml('a', 'a') + vsYaml('b', 'b'));
    await dir.write('nested/deeper/c.yml', vsYaml('c', 'c'));
    await dir.write('d.json', JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'd' }, spec: { hosts: ['d'], http: [{ route: [{ destination: { host: 'd' } }] }] } }));
    await dir.write('.hidden.yaml', vsYaml('hidden', 'h'));
    await dir.write('.git/x.yaml', vsYaml('git', 'g'));
    await dir.write('notes.txt', vsYaml('txt', 't'));
  }, async (store, dir, batches) => {
    assert.deepEqual(store.list('VirtualService').map((r) => r.metadata.name), ['a', 'b', 'c', 'd']);
    assert.equal(store.get('VirtualService', 'default', 'd')?.metadata.namespace, 'default', 'the default namespace applies');
    assert.deepEqual(store.problems(), []);
    assert.equal(store.get('VirtualService', 'default', 'c')?.origin?.source, dir.file('nested/deeper/c.yml'));
    assert.deepEqual(batches.map((b) => b.length), [4], 'the first load is one batch');
  });
});

test('live reload: an edited, an added and a deleted file each change the store, as one batch per reload', async () => {
  await withStore(async (dir) => {
    await dir.write('a.yaml', vsYaml('a', 'a1'));
    await dir.write('sub/b.yaml', vsYaml('b', 'b'));
  }, async (store, dir, batches) => {
    assert.ok(store.watchMode, 'the directory is watched');
    const versionBefore = store.get('VirtualService', 'default', 'a')!.metadata.resourceVersion;
    batches.length = 0;
    await dir.write('a.yaml', vsYaml('a', 'a2'));
    await waitFor('the edit', () => hostOf(store, 'a') === 'a2');
    assert.notEqual(store.get('VirtualService', 'default', 'a')!.metadata.resourceVersion, versionBefore);
    assert.deepEqual(batches.flat().map((e) => `${e.type} ${e.name}`), ['update a']);

    await dir.write('sub/new/c.yaml', vsYaml('c', 'c'));
    await waitFor('the new file in a new directory', () => hostOf(store, 'c'));
    await dir.write('sub/new/c.yaml', vsYaml('c', 'c2'));
    await waitFor('an edit in the new directory', () => hostOf(store, 'c') === 'c2');

    await dir.remove('sub/b.yaml');
    await waitFor('the deletion', () => hostOf(store, 'b') === undefined);
    await dir.remove('sub');
    await waitFor('the directory removal', () => hostOf(store, 'c') === undefined);
    assert.deepEqual(batches.flat().filter((e) => e.type === 'delete').map((e) => e.name).sort(), ['b', 'c']);
    assert.deepEqual(store.list('VirtualService').map((r) => r.metadata.name), ['a']);

    // The same directory path created again is watched again (its old watcher died with it).
    await dir.write('sub/again.yaml', vsYaml('again', 'x'));
    await waitFor('a file in the re-created directory', () => hostOf(store, 'again'));
    await dir.write('sub/again-2.yaml', vsYaml('again-2', 'y'));
    await waitFor('a later file in the re-created directory', () => hostOf(store, 'again-2'));
  });
});

test('an editor save (write a temp file, rename it over) is picked up', async () => {
  await withStore(async (dir) => {
    await dir.write('a.yaml', vsYaml('a', 'a1'));
  }, async (store, dir) => {
    for (let i = 2; i <= 4; i++) {
      await dir.writeRename('a.yaml', vsYaml('a', `a${i}`));
      await waitFor(`save ${i}`, () => hostOf(store, 'a') === `a${i}`);
    }
  });
});

test('an invalid edit is refused with file, resource and field path; the last valid version keeps serving, the rest applies', async () => {
  await withStore(async (dir) => {
    await dir.write('routes.yaml', vsYaml('a', 'x') + vsYaml('b', 'b1'));
  }, async (store, dir, batches) => {
    const good = store.get('VirtualService', 'default', 'a');
    batches.length = 0;
    await dir.write('routes.yaml', badVsYaml('a') + vsYaml('b', 'b2'));
    await waitFor('the valid half of the edit', () => hostOf(store, 'b') === 'b2');
    assert.equal(store.get('VirtualService', 'default', 'a'), good, 'the last valid version of a keeps serving');
    assert.deepEqual(batches.flat().map((e) => `${e.type} ${e.name}`), ['update b']);
    const problems = store.problems();
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, 'TRELLIS_CONFIG_INVALID');
    assert.equal(problems[0]!.source, dir.file('routes.yaml'));
    assert.equal(problems[0]!.resource, 'VirtualService default/a');
    assert.equal(problems[0]!.path, 'spec.http[0].route');
    assert.equal(problems[0]!.keptLastValid, true);
    assert.match(formatConfigProblem(problems[0]!), new RegExp(`^${escape(dir.file('routes.yaml'))}: VirtualService default/a: spec\\.http\\[0\\]\\.route: .*100.* \\(the last valid version keeps serving\\)$`));

    // An invalid resource that never was valid is simply absent.
    await dir.write('new.yaml', badVsYaml('never-valid'));
    await waitFor('the second problem', () => store.problems().length === 2);
    assert.equal(store.get('VirtualService', 'default', 'never-valid'), undefined);
    assert.equal(store.problems().find((p) => p.resource === 'VirtualService default/never-valid')?.keptLastValid, undefined);

    // Valid again: served, and its problem is gone.
    await dir.write('routes.yaml', vsYaml('a', 'x-fixed') + vsYaml('b', 'b2'));
    await waitFor('the fix', () => hostOf(store, 'a') === 'x-fixed');
    await dir.remove('new.yaml');
    await waitFor('no problems left', () => store.problems().length === 0);
  });
});

test('broken YAML: reported with line and column; the file\'s resources keep serving until it parses again', async () => {
  await withStore(async (dir) => {
    await dir.write('a.yaml', vsYaml('a', 'a1') + vsYaml('b', 'b1'));
    await dir.write('other.yaml', vsYaml('other', 'o1'));
  }, async (store, dir) => {
    await dir.write('a.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a\nspec: [\n');
    await dir.write('other.yaml', vsYaml('other', 'o2'));
    await waitFor('the other file', () => hostOf(store, 'other') === 'o2');
    await waitFor('the parse problem', () => store.problems().some((p) => p.code === 'TRELLIS_CONFIG_PARSE'));
    assert.equal(hostOf(store, 'a'), 'a1');
    assert.equal(hostOf(store, 'b'), 'b1', 'a resource that may be in the broken document is not deleted');
    const problem = store.problems().find((p) => p.code === 'TRELLIS_CONFIG_PARSE')!;
    assert.equal(problem.source, dir.file('a.yaml'));
    assert.equal(typeof problem.line, 'number');
    assert.equal(problem.keptLastValid, true);
    assert.match(formatConfigProblem(problem), new RegExp(`^${escape(dir.file('a.yaml'))}:\\d+:\\d+: document 0: invalid YAML: `));

    // Fixed, with b gone for real this time.
    await dir.write('a.yaml', vsYaml('a', 'a2'));
    await waitFor('the fixed file', () => hostOf(store, 'a') === 'a2' && hostOf(store, 'b') === undefined);
    assert.deepEqual(store.problems(), []);
  });
});

test('unknown kinds, wrong types and unsupported versions are reported per document; the other documents load', async () => {
  await withStore(async (dir) => {
    await dir.write('mixed.yaml', [
      vsYaml('ok', 'ok'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\n',
      'apiVersion: networking.istio.io/v9\nkind: VirtualService\nmetadata: {name: future}\nspec: {}\n---\n',
      virtualServiceYaml('typed', 'hosts: 7'),
      '- just\n- a list\n',
    ].join(''));
  }, async (store) => {
    assert.deepEqual(store.list('VirtualService').map((r) => r.metadata.name), ['ok']);
    const problems = store.problems();
    const byDocument = (d: number) => problems.filter((p) => p.document === d).map((p) => `${p.code} ${p.path ?? ''}`.trim());
    assert.deepEqual(byDocument(1), ['TRELLIS_CONFIG_UNSUPPORTED kind']);
    assert.deepEqual(byDocument(2), ['TRELLIS_CONFIG_UNSUPPORTED apiVersion']);
    assert.ok(byDocument(3).includes('TRELLIS_CONFIG_INVALID spec.hosts'));
    assert.deepEqual(byDocument(4).map((p) => p.split(' ')[0]), ['TRELLIS_CONFIG_INVALID']);
    assert.deepEqual(byDocument(0), []);
  });
});

test('two files defining one resource: the first by path wins, the other is reported; deleting the winner hands over', async () => {
  await withStore(async (dir) => {
    await dir.write('b.yaml', vsYaml('dup', 'from-b'));
    await dir.write('a/first.yaml', vsYaml('dup', 'from-a'));
    await dir.write('c.yaml', vsYaml('c', 'c') + vsYaml('c', 'c-again'));
  }, async (store, dir) => {
    assert.equal(hostOf(store, 'dup'), 'from-a');
    assert.equal(hostOf(store, 'c'), 'c');
    const conflicts = store.problems().filter((p) => p.code === 'TRELLIS_CONFIG_CONFLICT');
    assert.equal(conflicts.length, 2);
    const dup = conflicts.find((p) => p.resource === 'VirtualService default/dup')!;
    assert.equal(dup.source, dir.file('b.yaml'));
    assert.match(dup.message, /also defined in .*first\.yaml, which wins/);
    assert.match(conflicts.find((p) => p.resource === 'VirtualService default/c')!.message, /defined again in document 1 of the same file/);

    await dir.remove('a');
    await waitFor('the hand-over', () => hostOf(store, 'dup') === 'from-b');
    assert.equal(store.problems().filter((p) => p.resource === 'VirtualService default/dup').length, 0);
  });
});

test('a file deleted while being read: its resources go, nothing else is disturbed, no problem remains', async () => {
  let sabotage: string | undefined;
  const readFile = async (path: string): Promise<string> => {
    if (path === sabotage) {
      sabotage = undefined;
      await unlink(path); // the file goes between the directory scan and the read
    }
    const { readFile: read } = await import('node:fs/promises');
    return read(path, 'utf8');
  };
  await withStore(async (dir) => {
    await dir.write('keep.yaml', vsYaml('keep', 'k'));
    await dir.write('victim.yaml', vsYaml('victim', 'v'));
  }, async (store, dir) => {
    assert.equal(hostOf(store, 'victim'), 'v');
    sabotage = dir.file('victim.yaml');
    const result = await store.reload();
    assert.equal(sabotage, undefined, 'the hook ran');
    assert.deepEqual(result.events.map((e) => `${e.type} ${e.name}`), ['delete victim']);
    assert.equal(hostOf(store, 'keep'), 'k');
    assert.deepEqual(store.problems(), []);
  }, { readFile, watch: false });
});

test('files written and deleted in a tight loop while the store reloads: no crash, and it settles on what is on disk', async () => {
  await withStore(async (dir) => {
    await dir.write('stable.yaml', vsYaml('stable', 's'));
  }, async (store, dir) => {
    const reloads: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const name = `churn-${i % 5}.yaml`;
      if (i % 3 === 2) await dir.remove(name);
      else await writeFile(dir.file(name), vsYaml(`churn-${i % 5}`, `h${i}`));
      if (i % 4 === 0) reloads.push(store.reload());
    }
    await Promise.all(reloads);
    // What should be there now, straight from the loop's last actions per file.
    const expected = new Map<string, string | undefined>();
    for (let i = 0; i < 60; i++) expected.set(`churn-${i % 5}`, i % 3 === 2 ? undefined : `h${i}`);
    await waitFor('the store to match the disk', () => [...expected].every(([name, host]) => hostOf(store, name) === host));
    assert.equal(hostOf(store, 'stable'), 's');
    assert.deepEqual(store.problems(), []);
  });
});

test('10,000 resources in one file load; changing one of them is one update event', async () => {
  const N = 10_000;
  const body = (changed: number) => {
    const parts: string[] = [];
    for (let i = 0; i < N; i++) parts.push(serviceEntryYaml(`svc-${i}`, `hosts: [svc-${i}.example.com]\nports:\n- {number: 80, name: http, protocol: HTTP}\nresolution: ${i === changed ? 'NONE' : 'DNS'}`));
    return parts.join('');
  };
  await withStore(async (dir) => {
    await dir.write('big.yaml', body(-1));
  }, async (store, dir, batches) => {
    assert.equal(store.list('ServiceEntry').length, N);
    assert.deepEqual(store.problems(), []);
    assert.equal(batches[0]!.length, N);
    await dir.write('big.yaml', body(1234));
    await waitFor('the one change', () => store.get('ServiceEntry', 'default', 'svc-1234')?.spec.resolution === 'NONE', 60_000);
    assert.deepEqual(batches.slice(1).flat().map((e) => `${e.type} ${e.name}`), ['update svc-1234']);
  });
});

test('a missing directory fails start loudly; a directory that disappears later keeps serving, says so, and is read again when it comes back', async () => {
  const dir = await TempDir.create();
  const missing = new FileConfigStore({ dir: dir.file('nope'), watch: false });
  await assert.rejects(missing.start(), (err: unknown) => err instanceof ConfigError && err.code === 'TRELLIS_CONFIG_PARSE' && /cannot read config directory/.test(err.message));
  await missing.close();

  await dir.write('conf/a.yaml', vsYaml('a', 'a'));
  const store = new FileConfigStore({ dir: dir.file('conf'), debounceMs: 50 });
  try {
    await store.start();
    await dir.remove('conf');
    await waitFor('the problem', () => store.problems().some((p) => /cannot read config directory/.test(p.message)));
    assert.equal(store.get('VirtualService', 'default', 'a')?.spec.hosts?.[0], 'a');
    // Back again (a swap completed): read and watched as before.
    await dir.write('conf/a.yaml', vsYaml('a', 'a-again'));
    await waitFor('the directory to come back', () => store.get('VirtualService', 'default', 'a')?.spec.hosts?.[0] === 'a-again');
    assert.deepEqual(store.problems(), []);
    await dir.write('conf/b.yaml', vsYaml('b', 'b'));
    await waitFor('a new file in it', () => store.get('VirtualService', 'default', 'b'));
  } finally {
    await store.close();
    await dir.dispose();
  }
});

test('namespaced resources, and resources naming none take the configured default namespace', async () => {
  await withStore(async (dir) => {
    await dir.write('a.yaml', doc('DestinationRule', 'r', 'host: reviews', 'prod') + 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bare}\nspec: {hosts: [x], http: [{route: [{destination: {host: x}}]}]}\n');
  }, async (store) => {
    assert.equal(store.get('DestinationRule', 'prod', 'r')?.spec.host, 'reviews');
    assert.equal(store.get('VirtualService', 'mesh', 'bare')?.metadata.namespace, 'mesh');
  }, { defaultNamespace: 'mesh', watch: false });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
