// The security agent as `trellis proxy` starts it: the CA's trust file followed without a restart, the SDS server on loopback only.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSecurityAgent } from '../../src/agent/security-agent.js';
import { TestCa } from './test-ca.js';

const identity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'ratings' };

test('a CA trust file that does not fit yet is read again before each retry: the agent gets its certificate once the right root is written, without a restart', async (t) => {
  const ca = await TestCa.create();
  const server = await ca.serve('tok');
  t.after(() => server.close());
  const stranger = await TestCa.otherRoot();
  const file = join(mkdtempSync(join(tmpdir(), 'trellis-agent-')), 'root-cert.pem');
  writeFileSync(file, stranger.toString('pem'));
  const warnings: string[] = [];
  const starting = startSecurityAgent({
    identity,
    caAddress: server.address,
    caRootCertPem: stranger.toString('pem'),
    caRootCertFile: file,
    token: 'tok',
    sdsAddress: '127.0.0.1:0',
    log: { info: () => undefined, warn: (m) => warnings.push(m) },
  });
  const deadline = Date.now() + 10_000;
  while (warnings.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(warnings[0] ?? '', /TRELLIS_AGENT_CERTIFICATE: CA request for spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings failed/);
  assert.equal(ca.issued, 0, 'the CA port was not trusted, so no CSR reached it');

  writeFileSync(file, ca.rootPem);
  const agent = await Promise.race([starting, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no certificate 15 s after the right root was written; warnings:\n${warnings.join('\n')}`)), 15_000).unref())]);
  t.after(() => agent.close());
  assert.ok(agent.sdsPort > 0);
  assert.equal(ca.issued, 1);
  assert.match(agent.first.certificateChainPem, /BEGIN CERTIFICATE/);
});

test('the SDS server refuses a non-loopback address: the Secret named default carries the private key', async () => {
  await assert.rejects(
    startSecurityAgent({ identity, caAddress: '127.0.0.1:1', caRootCertPem: '', sdsAddress: '0.0.0.0:15012' }),
    { code: 'TRELLIS_AGENT_CERTIFICATE', message: /must listen on a loopback address, got 0\.0\.0\.0:15012/ },
  );
});
