// Helpers for the proxy end-to-end tests: run `trellis proxy` as a child process, real upstreams, admin calls, bounded waits.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export interface ProxyProcess {
  readonly child: ChildProcess;
  /** `127.0.0.1:port` of the admin listener. */
  readonly admin: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  kill(): Promise<void>;
}

export function writeTemp(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-proxy-e2e-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs `trellis proxy` and resolves when it has printed its admin address. */
export async function startProxyProcess(bootstrapPath: string, extraArgs: readonly string[] = []): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [CLI, 'proxy', '-c', bootstrapPath, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const admin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start in 60 s; stderr:\n${err}`)), 60_000);
    const check = (): void => {
      const match = /^admin address (\S+)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited with ${code} before starting; stderr:\n${err}`));
    });
  });
  return {
    child,
    admin,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs `trellis proxy` expecting it to refuse to start. */
export async function runProxyExpectingFailure(bootstrapPath: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'proxy', '-c', bootstrapPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  child.stdout!.resume();
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stderr: err };
}

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  requests: number;
  close(): Promise<void>;
}

/** An HTTP server answering `200 <name> <path>`. */
export async function startUpstream(name: string): Promise<Upstream> {
  const upstream = { requests: 0 } as { requests: number; server: Server; port: number; close(): Promise<void> };
  const server = createServer((req, res) => {
    upstream.requests++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(`${name} ${req.url}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  upstream.server = server;
  upstream.port = (server.address() as AddressInfo).port;
  upstream.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return upstream;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTP/1.1 request; `agent` gives keep-alive. */
export function httpGet(address: string, path: string, options: { agent?: Agent; method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const [host, port] = splitHostPort(address);
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: options.method ?? 'GET', agent: options.agent ?? false, headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`request to ${address}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function splitHostPort(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))];
}

/** The bound address of a listener, from the admin /listeners page. */
export async function listenerAddress(admin: string, name: string): Promise<string> {
  const page = await httpGet(admin, '/listeners?format=json');
  const status = (JSON.parse(page.body) as { listener_statuses: { name: string; local_address?: { socket_address: { address: string; port_value: number } } }[] }).listener_statuses.find((l) => l.name === name);
  assert.ok(status?.local_address, `listener ${name} is not bound: ${page.body}`);
  return `${status.local_address.socket_address.address}:${status.local_address.socket_address.port_value}`;
}

/** Polls until `condition` holds (at most `tries` × 50 ms). */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, tries = 600): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The value of an Envoy stat from /stats text, or undefined. */
export function statValue(statsText: string, name: string): number | undefined {
  for (const line of statsText.split('\n')) {
    const colon = line.lastIndexOf(': ');
    if (colon > 0 && line.slice(0, colon) === name) return Number(line.slice(colon + 2));
  }
  return undefined;
}
