// close() ends everything: the stream, the retry timer, the channel; nothing runs or connects afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WILDCARD } from '../../../src/xds/client/index.js';
import { CLUSTER } from '../../../src/xds/type-urls.js';
import { FakeControlPlane, eventually } from '../../support/fake-control-plane.js';
import { clientOf, cluster } from './fixtures.js';

function activeHandles(): string[] {
  return process.getActiveResourcesInfo().filter((kind) => kind !== 'TTYWrap' && kind !== 'PipeWrap' && kind !== 'FSReqCallback');
}

test('close() during a live stream leaves no timers or sockets behind', async () => {
  const before = activeHandles();
  const fake = await FakeControlPlane.start();
  const client = clientOf(fake);
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews')] });
  await fake.nextSotwRequest();

  client.close();
  await fake.close();
  await eventually(() => activeHandles().length <= before.length, `handles released (now ${activeHandles().join(', ')})`);
  assert.equal(client.status().closed, true);
  assert.equal(client.resources(CLUSTER).size, 1, 'what was accepted stays readable');
  assert.throws(() => client.subscribe(CLUSTER, ['more']), /closed/);
});

test('close() while waiting to reconnect cancels the retry', async () => {
  const fake = await FakeControlPlane.start();
  const client = clientOf(fake, { backoff: { baseMs: 60_000, maxMs: 60_000, random: () => 0.5 } });
  let disconnected = false;
  client.on('disconnected', () => (disconnected = true));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.dropStreams();
  await eventually(() => disconnected, 'the client saw the drop');
  // A 30 s retry timer is now pending; if close() left it, this test file would not exit.
  client.close();
  await fake.close();
  assert.equal(fake.streamsOpened, 1);
  assert.equal(activeHandles().filter((kind) => kind === 'Timeout').length, 0);
});
