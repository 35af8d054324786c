// Losing the control plane: the proxy keeps its config, reconnects with growing backoff, and resumes where it was.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { WILDCARD, XdsClient, type DisconnectedEvent } from '../../../src/xds/client/index.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT } from '../../../src/xds/type-urls.js';
import { FakeControlPlane, RawResponse, eventually } from '../../support/fake-control-plane.js';
import { NODE, clientOf, cluster, loadAssignment } from './fixtures.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: Parameters<typeof clientOf>[1] = {}): Promise<{ fake: FakeControlPlane; client: XdsClient }> {
  const fake = await FakeControlPlane.start();
  cleanups.push(() => fake.close());
  const client = clientOf(fake, options);
  cleanups.push(() => client.close());
  return { fake, client };
}

test('SotW: after the stream drops, the client resends node, last accepted versions and names with an empty nonce', async () => {
  const { fake, client } = await setup();
  const seenWhileDown: number[] = [];
  client.on('disconnected', () => seenWhileDown.push(client.resources(CLUSTER).size));
  client.subscribe(CLUSTER, WILDCARD);
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews']);
  await fake.nextSotwRequest();
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'c1', nonce: 'n1', resources: [cluster('reviews')] });
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER_LOAD_ASSIGNMENT, version_info: 'e1', nonce: 'n2', resources: [loadAssignment('reviews', 9080)] });
  await fake.nextSotwRequest();

  fake.dropStreams();
  const cds = await fake.nextSotwRequest();
  const eds = await fake.nextSotwRequest();
  assert.equal(fake.streamsOpened, 2);
  assert.equal(cds.type_url, CLUSTER, 'CDS is asked for before EDS');
  assert.equal(cds.version_info, 'c1');
  assert.equal(cds.response_nonce ?? '', '');
  assert.deepEqual(cds.resource_names ?? [], []);
  assert.equal(cds.node?.id, NODE.id, 'the new stream carries the node again');
  assert.equal(eds.type_url, CLUSTER_LOAD_ASSIGNMENT);
  assert.equal(eds.version_info, 'e1');
  assert.deepEqual(eds.resource_names, ['reviews']);
  assert.equal(eds.node, undefined);
  assert.deepEqual(seenWhileDown, [1], 'resources were kept while disconnected');
  assert.equal(client.resources(CLUSTER_LOAD_ASSIGNMENT).size, 1);
});

test('Delta: after the stream drops, the client sends initial_resource_versions of everything it holds', async () => {
  const { fake, client } = await setup({ mode: 'delta' });
  client.subscribe(CLUSTER, WILDCARD);
  client.subscribe(CLUSTER_LOAD_ASSIGNMENT, ['reviews', 'ratings']);
  await fake.nextDeltaRequest();
  await fake.nextDeltaRequest();
  fake.respond({ type_url: CLUSTER, nonce: 'd1', resources: [{ name: 'reviews', version: 'c7', resource: cluster('reviews') }, { name: 'ratings', version: 'c3', resource: cluster('ratings') }] });
  await fake.nextDeltaRequest();
  fake.respond({ type_url: CLUSTER_LOAD_ASSIGNMENT, nonce: 'd2', resources: [{ name: 'reviews', version: 'e2', resource: loadAssignment('reviews', 9080) }] });
  await fake.nextDeltaRequest();

  fake.dropStreams();
  const cds = await fake.nextDeltaRequest();
  const eds = await fake.nextDeltaRequest();
  assert.equal(cds.node?.id, NODE.id);
  assert.deepEqual(cds.resource_names_subscribe, ['*']);
  assert.deepEqual(cds.initial_resource_versions, { reviews: 'c7', ratings: 'c3' });
  assert.deepEqual(eds.resource_names_subscribe, ['ratings', 'reviews']);
  assert.deepEqual(eds.initial_resource_versions, { reviews: 'e2' });
  assert.equal(client.resources(CLUSTER).size, 2);
});

test('reconnect delays grow while the control plane is down, and start over after a response', async () => {
  // random just under 1 draws the top of each window: delays of 3, 7, 15, 31, 31 ms with base 4 ms, max 32 ms.
  const { fake, client } = await setup({ backoff: { baseMs: 4, maxMs: 32, random: () => 0.999 } });
  const delays: number[] = [];
  client.on('disconnected', (event: DisconnectedEvent) => delays.push(event.retryInMs));
  client.subscribe(CLUSTER, WILDCARD);
  for (let stream = 1; stream <= 5; stream++) {
    await fake.nextSotwRequest();
    fake.dropStreams();
  }
  await eventually(() => delays.length === 5, 'five disconnects');
  assert.deepEqual(delays, [3, 7, 15, 31, 31]);
  assert.equal(client.status().reconnectAttempts, 5);

  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews')] });
  await fake.nextSotwRequest();
  fake.dropStreams();
  await eventually(() => delays.length === 6, 'a sixth disconnect');
  assert.equal(delays[5], 3, 'a response reset the backoff');
});

test('the client retries a control plane that is not there, and connects when it comes up', async () => {
  const probe = await FakeControlPlane.start();
  const address = probe.address;
  await probe.close();
  const client = new XdsClient({ server: address, node: NODE, backoff: { baseMs: 1, maxMs: 2 } });
  cleanups.push(() => client.close());
  const disconnects: DisconnectedEvent[] = [];
  client.on('disconnected', (event) => disconnects.push(event));
  client.subscribe(CLUSTER, WILDCARD);
  await eventually(() => disconnects.length >= 2, 'two failed attempts');
  assert.equal(disconnects[0]!.code, grpc.status.UNAVAILABLE);
  assert.equal(client.connected, false);
});

test('malformed bytes from the control plane end the stream, not the client; it reconnects and keeps its config', async () => {
  const { fake, client } = await setup();
  const disconnects: DisconnectedEvent[] = [];
  client.on('disconnected', (event) => disconnects.push(event));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  fake.respond({ type_url: CLUSTER, version_info: 'v1', nonce: 'n1', resources: [cluster('reviews')] });
  await fake.nextSotwRequest();

  fake.respond(new RawResponse(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
  const resent = await fake.nextSotwRequest();
  assert.equal(resent.version_info, 'v1');
  assert.equal(disconnects.length, 1);
  assert.equal(disconnects[0]!.code, grpc.status.INTERNAL);
  assert.equal(client.resources(CLUSTER).size, 1);
  assert.equal(client.status().lastDisconnect?.code, grpc.status.INTERNAL);
});

test('connected and disconnected are reported, and status says so', async () => {
  const { fake, client } = await setup();
  const events: string[] = [];
  client.on('connected', () => events.push('connected'));
  client.on('disconnected', () => events.push('disconnected'));
  client.subscribe(CLUSTER, WILDCARD);
  await fake.nextSotwRequest();
  await eventually(() => client.connected, 'the stream is established');
  assert.equal(client.status().connected, true);
  fake.dropStreams();
  await fake.nextSotwRequest();
  await eventually(() => events.length === 3, 'connected, disconnected, connected');
  assert.deepEqual(events, ['connected', 'disconnected', 'connected']);
});
