// Port checks before start: a port something else listens on is found and named with its owner and role.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { describeTakenPort, findTakenPorts, portProblem, type PortPlan } from '../../src/local/port-blocks.js';

test('a taken port is reported with the workload and role; free ones are not', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const taken = (server.address() as AddressInfo).port;
  assert.equal(await portProblem(taken), 'already in use by another process');
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const freePort = (free.address() as AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  const plan: PortPlan = {
    base: freePort,
    control: { xds: freePort, monitoring: freePort, secureXds: freePort, dashboard: freePort },
    workloads: new Map([['reviews-v2', { app: freePort, inbound: taken }]]),
    gateways: new Map(),
  };
  const found = await findTakenPorts(plan);
  assert.deepEqual(found.map(describeTakenPort), [`reviews-v2: inbound port ${taken} is already in use by another process`]);
});
