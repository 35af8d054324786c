// Helpers for the transport tests: Envoy TLS contexts over SDS secrets, a mutable secret provider, TLS client exchanges.
import { spawn } from 'node:child_process';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { envoy } from '../../../src/xds/generated/types.js';
import type { SecretProvider, TlsSecret } from '../../../src/proxy/transport/secret-provider.js';
import type { Pem } from './pki.js';

/** The `default` (workload certificate) secret Istio's agent serves. */
export function certSecret(name: string, pem: Pem): TlsSecret {
  return { name, tls_certificate: { certificate_chain: { inline_string: pem.cert }, private_key: { inline_string: pem.key } } };
}

/** The `ROOTCA` secret. */
export function caSecret(name: string, caPem: string): TlsSecret {
  return { name, validation_context: { trusted_ca: { inline_string: caPem } } };
}

/** SDS as the agent does it: set() replaces the Secret object, which is what rotation is keyed on. */
export class MutableSecrets implements SecretProvider {
  private readonly byName = new Map<string, TlsSecret>();
  constructor(secrets: readonly TlsSecret[] = []) {
    for (const s of secrets) this.set(s);
  }
  set(secret: TlsSecret): void {
    this.byName.set(secret.name ?? '', secret);
  }
  get(name: string): TlsSecret | undefined {
    return this.byName.get(name);
  }
}

type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;

/** The inbound DownstreamTlsContext Istio generates for ISTIO_MUTUAL / STRICT (optionally with SAN matchers). */
export function istioDownstreamContext(extra: { sanPrefix?: string; requireClient?: boolean; alpn?: string[] } = {}): DownstreamTlsContext {
  return {
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' as never } }],
      combined_validation_context: {
        default_validation_context: extra.sanPrefix
          ? { match_typed_subject_alt_names: [{ san_type: 'URI' as never, matcher: { prefix: extra.sanPrefix } }] }
          : {},
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' as never } },
      },
      alpn_protocols: extra.alpn ?? ['h2', 'http/1.1'],
    },
    require_client_certificate: { value: extra.requireClient ?? true },
  };
}

export interface Exchange {
  /** What the server sent before closing. */
  readonly data: string;
  readonly error?: NodeJS.ErrnoException;
  readonly serverCert?: PeerCertificate;
  /** The handshake completed on the client side (in TLS 1.3 the server verifies the client after this). */
  readonly secure: boolean;
}

/** Connects, sends `send` once secure, collects everything until the connection closes (bounded by 5 s). */
export function tlsExchange(options: ConnectionOptions, send = 'ping\n'): Promise<Exchange> {
  return new Promise((resolve) => {
    let data = '';
    let error: NodeJS.ErrnoException | undefined;
    let serverCert: PeerCertificate | undefined;
    let secure = false;
    const s = tlsConnect({ host: '127.0.0.1', rejectUnauthorized: false, ...options }, () => {
      secure = true;
      serverCert = s.getPeerCertificate();
      s.end(send);
    });
    const timer = setTimeout(() => s.destroy(new Error('test exchange timed out')), 5000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, secure, ...(error ? { error } : {}), ...(serverCert ? { serverCert } : {}) });
    });
  });
}

/**
 * Runs `openssl s_client` (asynchronously: the server under test lives in this process), sends a line, and returns
 * its stdout once `until` matches or it exits (bounded by 10 s).
 */
export function sClient(args: readonly string[], until: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const done = (): void => {
      clearTimeout(timer);
      child.kill();
      resolve(out);
    };
    const timer = setTimeout(done, 10_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (until.test(out)) done();
    });
    child.on('exit', done);
    child.stdin.write('hello\n');
  });
}
