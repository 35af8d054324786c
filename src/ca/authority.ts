// The control plane's certificate authority: signing material, workload TTL policy, the trust bundle, and root rotation with an overlap.
import { X509Certificate as NodeX509 } from 'node:crypto';
import { join } from 'node:path';
import type * as x509 from '@peculiar/x509';
import { describeError } from '../common/errors.js';
import { hasCacerts, loadCacerts, loadOrCreateSelfSigned, materialFromSelfSignedPem, createSelfSignedRoot, writeSelfSignedRoot, writeFileAtomic, type CaMaterial } from './ca-material.js';
import { DEFAULT_MAX_WORKLOAD_CERT_TTL_MS, DEFAULT_ROOT_CERT_TTL_MS, DEFAULT_ROOT_ROTATION_OVERLAP_MS, DEFAULT_WORKLOAD_CERT_TTL_MS } from './defaults.js';
import { spiffeUri, trustDomainProblem, type SpiffeIdentity } from './identity.js';
import { generateKeyPair, privateKeyToPem, type KeyType } from './keys.js';
import { checkCsr, csrIdentityProblem, issueLeaf } from './signer.js';
import { CaError } from './ca-error.js';
import { TrustBundle, fingerprint, loadRetiredRoots, saveRetiredRoots } from './trust-bundle.js';

export { DEFAULT_MAX_WORKLOAD_CERT_TTL_MS, DEFAULT_ROOT_ROTATION_OVERLAP_MS, DEFAULT_WORKLOAD_CERT_TTL_MS };

const RETIRED_ROOTS_FILE = 'retired-roots.json';

export interface CaLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface CertificateAuthorityOptions {
  /** SPIFFE trust domain of issued identities (mesh config `trustDomain`, default cluster.local). */
  readonly trustDomain: string;
  /** Istio's cacerts directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem): used when it holds a certificate and key. */
  readonly caCertDir?: string;
  /** Where the self-signed root is kept so a restart keeps it (created when missing); absent: in memory only. */
  readonly selfSignedDir?: string;
  /** Key of a generated root: ECDSA P-256 (default) or RSA 2048. */
  readonly keyType?: KeyType;
  readonly workloadCertTtlMs?: number;
  readonly maxWorkloadCertTtlMs?: number;
  readonly rootCertTtlMs?: number;
  readonly rootRotationOverlapMs?: number;
  /** A file kept holding the trust bundle (every trusted root, PEM) for agents to trust the secure port with. */
  readonly rootCertOut?: string;
  readonly logger?: CaLogger;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export interface SignedWorkloadCertificate {
  /** Leaf, intermediates, the signing root, then the other trusted roots (rotation overlap). */
  readonly certChain: string[];
  readonly leaf: x509.X509Certificate;
  readonly identity: string;
  readonly ttlMs: number;
  /** The requested TTL was above the maximum and was lowered to it. */
  readonly clamped: boolean;
}

export interface ServingCertificate {
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly workloadCertTtlMs: number;
  readonly maxWorkloadCertTtlMs: number;
  readonly rootRotationOverlapMs: number;
  private material: CaMaterial;
  private readonly bundle: TrustBundle;
  private readonly listeners = new Set<() => void>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private rotating: Promise<void> | undefined;

  private constructor(
    private readonly options: CertificateAuthorityOptions,
    material: CaMaterial,
    private readonly logger: CaLogger,
    private readonly now: () => number,
  ) {
    this.trustDomain = options.trustDomain;
    this.workloadCertTtlMs = options.workloadCertTtlMs ?? DEFAULT_WORKLOAD_CERT_TTL_MS;
    this.maxWorkloadCertTtlMs = options.maxWorkloadCertTtlMs ?? DEFAULT_MAX_WORKLOAD_CERT_TTL_MS;
    this.rootRotationOverlapMs = options.rootRotationOverlapMs ?? DEFAULT_ROOT_ROTATION_OVERLAP_MS;
    this.material = material;
    this.bundle = new TrustBundle(now);
    this.bundle.setCurrent([material.rootPem, ...material.extraRootPems], 0);
  }

  /** Loads the cacerts plug-in when `caCertDir` holds one, else loads or creates the self-signed root. */
  static async create(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const logger = options.logger ?? { info: (m) => console.log(m), warn: (m) => console.warn(m) };
    const now = options.now ?? Date.now;
    const domainProblem = trustDomainProblem(options.trustDomain);
    if (domainProblem) throw new CaError('TRELLIS_CA_MATERIAL_INVALID', domainProblem);
    const workloadTtl = options.workloadCertTtlMs ?? DEFAULT_WORKLOAD_CERT_TTL_MS;
    const maxTtl = options.maxWorkloadCertTtlMs ?? DEFAULT_MAX_WORKLOAD_CERT_TTL_MS;
    if (!(workloadTtl > 0) || !(maxTtl >= workloadTtl)) {
      throw new CaError('TRELLIS_CA_MATERIAL_INVALID', `workload certificate TTL ${workloadTtl} ms must be positive and at most the maximum ${maxTtl} ms`);
    }
    let material: CaMaterial;
    if (options.caCertDir && hasCacerts(options.caCertDir)) {
      material = await loadCacerts(options.caCertDir, 'cacerts', new Date(now()));
      logger.info(`CA: using plugged-in certificates from ${options.caCertDir} (signing ${subjectOf(material.issuer.cert)}, root ${subjectOf(material.rootPem)})`);
    } else {
      if (options.caCertDir) logger.info(`CA: ${options.caCertDir} has no ca-cert.pem and ca-key.pem; using a self-signed root`);
      const result = await loadOrCreateSelfSigned(options.selfSignedDir, { trustDomain: options.trustDomain, keyType: options.keyType ?? 'ecdsa', ttlMs: options.rootCertTtlMs ?? DEFAULT_ROOT_CERT_TTL_MS, now: new Date(now()) });
      material = result.material;
      logger.info(`CA: ${result.created ? 'generated' : 'loaded'} self-signed root ${subjectOf(material.rootPem)}${options.selfSignedDir ? ` in ${options.selfSignedDir}` : ' (in memory only)'}`);
    }
    const ca = new CertificateAuthority(options, material, logger, now);
    if (options.selfSignedDir && material.kind === 'self-signed') ca.bundle.restoreRetired(loadRetiredRoots(join(options.selfSignedDir, RETIRED_ROOTS_FILE), logger.warn));
    ca.afterChange();
    return ca;
  }

  /** Every trusted root, PEM, the signing root first. */
  trustBundle(): string[] {
    return this.bundle.pems();
  }

  /** The trust bundle as one PEM text (what `rootCertOut` holds). */
  rootCertPem(): string {
    return this.trustBundle().join('');
  }

  /** The material signing now (for tests and debug output). */
  signingMaterial(): CaMaterial {
    return this.material;
  }

  /** Called after every change of the trust bundle or signing material (rotation, end of an overlap). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The TTL a request gets: the default for 0 or less, the maximum above it (Trellis clamps; see docs/security.md). */
  workloadTtl(requestedSeconds: number | undefined): { ttlMs: number; clamped: boolean } {
    const requested = Number.isFinite(requestedSeconds) ? (requestedSeconds as number) * 1000 : 0;
    if (requested <= 0) return { ttlMs: this.workloadCertTtlMs, clamped: false };
    if (requested > this.maxWorkloadCertTtlMs) return { ttlMs: this.maxWorkloadCertTtlMs, clamped: true };
    return { ttlMs: requested, clamped: false };
  }

  /**
   * Signs a workload CSR for `identity` (the authenticated caller's). Throws CaError TRELLIS_CA_CSR_INVALID for a
   * CSR that cannot be used and TRELLIS_CA_IDENTITY_MISMATCH for one asking for another name.
   */
  async signWorkload(csrPem: string, identity: Omit<SpiffeIdentity, 'trustDomain'>, requestedTtlSeconds?: number): Promise<SignedWorkloadCertificate> {
    const csr = await checkCsr(csrPem);
    const uri = spiffeUri({ trustDomain: this.trustDomain, ...identity });
    const problem = csrIdentityProblem(csr, uri);
    if (problem) throw new CaError('TRELLIS_CA_IDENTITY_MISMATCH', problem);
    const { ttlMs, clamped } = this.workloadTtl(requestedTtlSeconds);
    const material = this.material;
    const leaf = await issueLeaf(material.issuer, { publicKey: csr.publicKey, uris: [uri], ttlMs, now: new Date(this.now()) });
    return { certChain: this.chainFor(`${leaf.toString('pem')}\n`, material), leaf, identity: uri, ttlMs, clamped };
  }

  /**
   * A key and certificate for the control plane's own TLS port (Istio's istiod DNS certificate): DNS and IP SANs,
   * issued by the current signing material. The chain holds the leaf and intermediates.
   */
  async issueServingCertificate(names: { dnsNames: readonly string[]; ips: readonly string[]; uris?: readonly string[] }, ttlMs: number): Promise<ServingCertificate> {
    const material = this.material;
    const keys = await generateKeyPair(material.issuer.signingAlgorithm.name === 'ECDSA' ? 'ecdsa' : 'rsa');
    const leaf = await issueLeaf(material.issuer, { publicKey: keys.publicKey, dnsNames: names.dnsNames, ips: names.ips, uris: names.uris ?? [], ttlMs, now: new Date(this.now()) });
    return { certChainPem: [`${leaf.toString('pem')}\n`, ...material.chainPems].join(''), keyPem: `${await privateKeyToPem(keys.privateKey)}\n`, notAfter: leaf.notAfter };
  }

  /**
   * Replaces the root: with `caCertDir`, loads that cacerts directory; otherwise generates a new self-signed root
   * (written to the self-signed directory when there is one). New certificates are signed by the new material at
   * once; the previous root(s) stay in the trust bundle for `overlapMs` (default rootRotationOverlapMs), then go.
   */
  async rotateRoot(options: { caCertDir?: string; overlapMs?: number; keyType?: KeyType } = {}): Promise<void> {
    // One rotation at a time: two overlapping ones would both read the same "previous" root.
    while (this.rotating) await this.rotating.catch(() => undefined);
    const run = this.doRotate(options);
    this.rotating = run;
    try {
      await run;
    } finally {
      this.rotating = undefined;
    }
  }

  private async doRotate(options: { caCertDir?: string; overlapMs?: number; keyType?: KeyType }): Promise<void> {
    const overlapMs = options.overlapMs ?? this.rootRotationOverlapMs;
    const before = this.material;
    let next: CaMaterial;
    if (options.caCertDir) {
      next = await loadCacerts(options.caCertDir, 'cacerts', new Date(this.now()));
    } else {
      const root = await createSelfSignedRoot({ trustDomain: this.trustDomain, keyType: options.keyType ?? this.options.keyType ?? 'ecdsa', ttlMs: this.options.rootCertTtlMs ?? DEFAULT_ROOT_CERT_TTL_MS, now: new Date(this.now()) });
      const dir = this.options.selfSignedDir;
      if (dir) {
        writeSelfSignedRoot(dir, root);
        next = await loadCacerts(dir, 'self-signed', new Date(this.now()));
      } else {
        next = await materialFromSelfSignedPem(root);
      }
    }
    this.material = next;
    this.bundle.setCurrent([next.rootPem, ...next.extraRootPems], overlapMs);
    if (sameCert(before.rootPem, next.rootPem)) {
      this.logger.info(`CA: signing certificate replaced by ${subjectOf(next.issuer.cert)}; the root is unchanged`);
    } else {
      this.logger.info(`CA: root rotated from ${subjectOf(before.rootPem)} to ${subjectOf(next.rootPem)}; the previous root stays trusted for ${Math.round(overlapMs / 1000)} s`);
    }
    this.afterChange();
  }

  /** Stops the overlap timer. */
  close(): void {
    this.closed = true;
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
    this.listeners.clear();
  }

  private chainFor(leafPem: string, material: CaMaterial): string[] {
    const roots = this.bundle.pems();
    const others = roots.filter((pem) => !sameCert(pem, material.rootPem));
    return [leafPem, ...material.chainPems, material.rootPem, ...others];
  }

  // Persists what must survive a restart, rewrites the root file, tells listeners, and schedules the end of the overlap.
  private afterChange(): void {
    if (this.closed) return;
    const dir = this.options.selfSignedDir;
    if (dir && this.material.kind === 'self-signed') {
      try {
        saveRetiredRoots(join(dir, RETIRED_ROOTS_FILE), this.bundle.retiredRoots());
      } catch (err) {
        this.logger.warn(`CA: cannot save retired roots in ${dir}: ${describeError(err)}`);
      }
    }
    if (this.options.rootCertOut) {
      try {
        writeFileAtomic(this.options.rootCertOut, this.rootCertPem());
      } catch (err) {
        this.logger.warn(`CA: cannot write the trust bundle to ${this.options.rootCertOut}: ${describeError(err)}`);
      }
    }
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.logger.warn(`CA: a change listener threw: ${describeError(err)}`);
      }
    }
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
    const next = this.bundle.nextExpiry();
    if (next !== undefined) {
      // setTimeout takes at most 2^31-1 ms; a longer overlap is re-armed when this one fires.
      const delay = Math.min(Math.max(0, next - this.now()) + 5, 2 ** 31 - 1);
      this.pruneTimer = setTimeout(() => {
        this.pruneTimer = undefined;
        if (this.bundle.prune()) this.logger.info('CA: root rotation overlap ended; the previous root is no longer trusted');
        this.afterChange();
      }, delay);
      this.pruneTimer.unref();
    }
  }
}

function sameCert(a: string, b: string): boolean {
  return a === b || fingerprint(a) === fingerprint(b);
}

function subjectOf(cert: string | x509.X509Certificate): string {
  if (typeof cert !== 'string') return cert.subject;
  try {
    return new NodeX509(cert).subject.replace(/\n/g, ', ');
  } catch {
    return '(unparsable certificate)';
  }
}
