// What `trellis proxy` runs beside the proxy when security is on (pilot-agent's role): the first workload certificate before the proxy starts, then rotation, served to the proxy over SDS.
import { readFileSync } from 'node:fs';
import { createCertificate } from '../ca/ca-client.js';
import { AgentError } from './agent-error.js';
import { SdsServer } from './sds-server.js';
import { WorkloadCertificates, type AgentLogger, type WorkloadCertificate } from './workload-certificates.js';
import type { WorkloadIdentity, WorkloadKeyType } from './workload-csr.js';

export interface SecurityAgentOptions {
  readonly identity: WorkloadIdentity;
  /** The CA, `host:port` of the control plane's secure port (15012-like). */
  readonly caAddress: string;
  /** PEM root(s) the CA's serving certificate chains to. */
  readonly caRootCertPem: string;
  /**
   * The file caRootCertPem came from: read again before each CA call, so a trust bundle the control plane rewrites
   * (`--ca-root-out`, during a root rotation) is followed without a restart. An unreadable file keeps the last roots.
   */
  readonly caRootCertFile?: string;
  /** Bootstrap token for `authorization: Bearer`. */
  readonly token?: string;
  /** Requested certificate lifetime; default 24 h. */
  readonly ttlSeconds?: number;
  readonly keyType?: WorkloadKeyType;
  /** Where the SDS server listens: `127.0.0.1:<port>` (the bootstrap's sds-grpc endpoint). */
  readonly sdsAddress: string;
  /** Istio's CSR request metadata (WorkloadName, WorkloadIP, ClusterID). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly log?: AgentLogger;
}

export interface SecurityAgent {
  readonly certificates: WorkloadCertificates;
  readonly sds: SdsServer;
  readonly sdsPort: number;
  readonly first: WorkloadCertificate;
  close(): Promise<void>;
}

/**
 * Gets the first certificate (retrying a CA that is not up yet with backoff, as pilot-agent holds Envoy's first SDS
 * answer), then starts the SDS server with it. Rejects when `abort` fires before the first certificate arrives.
 */
export async function startSecurityAgent(options: SecurityAgentOptions, abort?: AbortSignal): Promise<SecurityAgent> {
  if (!/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/.test(options.sdsAddress)) {
    // The Secret named default carries the workload's private key: never serve it beyond the loopback.
    throw new AgentError('TRELLIS_AGENT_CERTIFICATE', `the SDS server must listen on a loopback address, got ${options.sdsAddress}`);
  }
  const certificates = new WorkloadCertificates({
    identity: options.identity,
    ...(options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {}),
    ...(options.keyType ? { keyType: options.keyType } : {}),
    ...(options.log ? { log: options.log } : {}),
    sign: (csr, validitySeconds) =>
      createCertificate(options.caAddress, {
        csr,
        validitySeconds,
        rootCertPem: caTrust(),
        ...(options.token !== undefined ? { token: options.token } : {}),
        ...(options.metadata ? { metadata: options.metadata } : {}),
      }),
  });
  let fileRoots = options.caRootCertPem;
  // The CA port is trusted by the configured roots and by the mesh roots of the last answer (ROOTCA): after a root
  // rotation the CA serves with a certificate of the new root, which the overlap answers already carried.
  const caTrust = (): string => {
    if (options.caRootCertFile) {
      try {
        fileRoots = readFileSync(options.caRootCertFile, 'utf8');
      } catch {
        // Keep the roots read last; the CA call reports the failure if they no longer fit.
      }
    }
    const bundle = certificates.current()?.rootCertPem;
    return bundle ? `${fileRoots.trimEnd()}\n${bundle}` : fileRoots;
  };
  const stop = (): void => certificates.close();
  abort?.addEventListener('abort', stop, { once: true });
  let first: WorkloadCertificate;
  try {
    first = await certificates.start();
  } finally {
    abort?.removeEventListener('abort', stop);
  }
  const sds = new SdsServer({ logger: { warn: (m) => options.log?.warn(m) } });
  sds.update(first);
  certificates.on('certificate', (cert) => sds.update(cert));
  let sdsPort: number;
  try {
    ({ port: sdsPort } = await sds.listen(options.sdsAddress));
  } catch (err) {
    certificates.close();
    await sds.close();
    throw new AgentError('TRELLIS_AGENT_CERTIFICATE', `cannot listen for SDS on ${options.sdsAddress}: ${(err as Error).message}`, { cause: err });
  }
  return {
    certificates,
    sds,
    sdsPort,
    first,
    close: async () => {
      certificates.close();
      await sds.close();
    },
  };
}
