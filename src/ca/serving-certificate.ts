// The secure xDS port's own certificate (Istio's istiod DNS certificate): issued by the CA, re-issued at half life and after a root rotation, handed to grpc-js without a restart.
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { describeError } from '../common/errors.js';
import type { CertificateAuthority, CaLogger } from './authority.js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

export interface ServingNames {
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
}

/** Istio's istiod names (`istiod.<ns>.svc`), plus what a local control plane is reached by: localhost, 127.0.0.1, ::1 and the bound IP. */
export function defaultServingNames(namespace: string, bindAddress?: string): ServingNames {
  const ips = new Set(['127.0.0.1', '::1']);
  const host = bindAddress ? bindAddress.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') : '';
  if (isIP(host) && host !== '0.0.0.0' && host !== '::') ips.add(host);
  return { dnsNames: [`istiod.${namespace}.svc`, 'localhost'], ips: [...ips] };
}

/**
 * A grpc-js CertificateProvider serving the CA-issued certificate; give it to secureServerCredentials(). New
 * connections use the newest certificate; open ones keep theirs.
 */
export class ServingCertificateProvider implements CertificateProvider {
  private current: { certificate: Buffer; privateKey: Buffer } | undefined;
  private readonly listeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();
  private timer: NodeJS.Timeout | undefined;
  private offChange: (() => void) | undefined;
  private closed = false;

  private constructor(
    private readonly ca: CertificateAuthority,
    private readonly names: ServingNames,
    private readonly ttlMs: number,
    private readonly logger: CaLogger,
  ) {}

  static async start(ca: CertificateAuthority, names: ServingNames, ttlMs: number, logger: CaLogger): Promise<ServingCertificateProvider> {
    const provider = new ServingCertificateProvider(ca, names, ttlMs, logger);
    await provider.renew();
    provider.offChange = ca.onChange(() => void provider.renew());
    return provider;
  }

  /** The PEM chain served now (leaf first). */
  certificatePem(): string {
    return this.current?.certificate.toString('utf8') ?? '';
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.add(listener);
    // Later, not now: grpc-js registers this listener before the watcher that applies the update, so a
    // synchronous call would be lost and the port would refuse every handshake.
    queueMicrotask(() => {
      if (this.current && this.listeners.has(listener)) listener(this.current);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.delete(listener);
  }

  /**
   * What client certificates are checked against: the trust bundle and the current intermediates. A client
   * certificate is asked for but not required (bearer-token callers have none); grpc-js hands the handlers a
   * client certificate only when it verified.
   */
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener(this.caUpdate());
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  private caUpdate(): { caCertificate: Buffer } {
    return { caCertificate: Buffer.from([...this.ca.trustBundle(), ...this.ca.signingMaterial().chainPems].join('')) };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.offChange?.();
    this.listeners.clear();
    this.caListeners.clear();
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    let delay: number;
    try {
      const issued = await this.ca.issueServingCertificate(this.names, this.ttlMs);
      if (this.closed) return;
      this.current = { certificate: Buffer.from(issued.certChainPem), privateKey: Buffer.from(issued.keyPem) };
      for (const listener of [...this.listeners]) listener(this.current);
      const trust = this.caUpdate();
      for (const listener of [...this.caListeners]) listener(trust);
      delay = Math.max(1_000, (issued.notAfter.getTime() - Date.now()) / 2);
    } catch (err) {
      this.logger.warn(`CA: cannot issue the secure xDS port's certificate: ${describeError(err)}; retrying in 10 s`);
      if (!this.current) throw err;
      delay = 10_000;
    }
    this.timer = setTimeout(() => void this.renew().catch(() => undefined), Math.min(delay, 2 ** 31 - 1));
    this.timer.unref();
  }
}

/** TLS server credentials whose certificate and client trust come from `provider`; a client certificate is optional. */
export function secureServerCredentials(provider: ServingCertificateProvider): grpc.ServerCredentials {
  // grpc-js's parameter names are swapped: the first argument is the identity (certificate) provider, the second the CA one.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}
