// The native addon (native/original_dst.c) as the proxy loads it: built by npm install/build, reading a socket's fd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { loadOriginalDestinationSupport, readerFromAddon, socketFd } from '../../../src/proxy/transport/original-destination.js';

test('the addon is built and loads on Linux; a connection that was not redirected has no original destination', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
  const support = loadOriginalDestinationSupport();
  assert.ok(support.available, `addon not available: ${support.available ? '' : support.reason}`);
  const accepted = await new Promise<Socket>((resolve) => {
    const server = createServer((s) => {
      server.close();
      resolve(s);
    }).listen(0, '127.0.0.1', () => connect((server.address() as { port: number }).port, '127.0.0.1').on('error', () => undefined));
  });
  try {
    assert.equal(typeof socketFd(accepted), 'number', 'node:net exposes the accepted TCP socket fd');
    assert.equal(support.read(accepted), undefined, 'no NAT entry: ENOENT, so the local address stays');
  } finally {
    accepted.destroy();
  }
});

test('the reader unmaps IPv4-mapped addresses and treats addon errors as not redirected', () => {
  const fakeSocket = { _handle: { fd: 7 } } as unknown as Socket;
  assert.deepEqual(readerFromAddon({ getOriginalDst: (fd) => ({ address: '::ffff:10.0.0.5', port: fd + 9073, family: 'IPv6' }) })(fakeSocket), { address: '10.0.0.5', port: 9080 });
  assert.deepEqual(readerFromAddon({ getOriginalDst: () => ({ address: 'fd00::5', port: 80, family: 'IPv6' }) })(fakeSocket), { address: 'fd00::5', port: 80 });
  assert.equal(readerFromAddon({ getOriginalDst: () => { throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); } })(fakeSocket), undefined);
  assert.equal(readerFromAddon({ getOriginalDst: () => ({ address: 'x', port: 1, family: 'IPv4' }) })({ _handle: {} } as unknown as Socket), undefined, 'no fd (not a TCP handle)');
});
