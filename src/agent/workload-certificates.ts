// istio-agent's certificate job: get the workload certificate from the CA, keep it (`default` and the `ROOTCA` trust bundle), rotate it at half its life, retry a CA that is down with backoff while the old certificate keeps serving.
import { EventEmitter } from 'node:events';
import { ExponentialBackoff, type BackoffOptions } from '../common/backoff.js';
import { describeError } from '../common/errors.js';
import { AgentError } from './agent-error.js';
import { readIssuedChain } from './certificate-chain.js';
import { createWorkloadCsr, spiffeId, type WorkloadIdentity, type WorkloadKeyType } from './workload-csr.js';

/** Asks the CA to sign `csrPem`; resolves to IstioCertificateResponse.cert_chain (leaf first). */
export type CertificateSigner = (csrPem: string, validitySeconds: number) => Promise<readonly string[]>;

/** One issued certificate with its key, as the SDS server serves it. */
export interface WorkloadCertificate {
  /** The SPIFFE id the certificate was requested for. */
  readonly identity: string;
  /** Leaf, intermediates and their root, PEM. */
  readonly certificateChainPem: string;
  readonly privateKeyPem: string;
  /** Every root to trust (more than one during a root rotation overlap), PEM. */
  readonly rootCertPem: string;
  /** The leaf's serial number, hex. */
  readonly serialNumber: string;
  /** When the agent received it (Istio's CreatedTime: the rotation clock starts here). */
  readonly createdAt: Date;
  readonly notAfter: Date;
}

export interface AgentLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface WorkloadCertificatesOptions {
  readonly identity: WorkloadIdentity;
  readonly sign: CertificateSigner;
  readonly keyType?: WorkloadKeyType;
  /** Requested validity (Istio's SECRET_TTL), default 24 h; the CA may shorten it. */
  readonly ttlSeconds?: number;
  /** Istio's SECRET_GRACE_PERIOD_RATIO: rotate when this fraction of the lifetime is left. Default 0.5. */
  readonly gracePeriodRatio?: number;
  /** Istio's SECRET_GRACE_PERIOD_RATIO_JITTER: the ratio moves by up to ± this, so a fleet does not rotate at once. Default 0.01. */
  readonly gracePeriodRatioJitter?: number;
  /** Retries of a failing CA call; default 1 s base, 30 s max, full jitter. */
  readonly backoff?: BackoffOptions;
  readonly random?: () => number;
  readonly log?: AgentLogger;
}

export interface WorkloadCertificatesEvents {
  /** A new certificate is current (the first one too). */
  certificate: [WorkloadCertificate];
  /** A CA call failed; the agent retries in `retryInMs` and keeps the current certificate. */
  error: [{ readonly error: Error; readonly retryInMs: number }];
}

export const DEFAULT_CERT_TTL_SECONDS = 24 * 3600;
export const DEFAULT_GRACE_PERIOD_RATIO = 0.5;
export const DEFAULT_GRACE_PERIOD_RATIO_JITTER = 0.01;

export class WorkloadCertificates extends EventEmitter<WorkloadCertificatesEvents> {
  readonly identity: string;
  private readonly options: WorkloadCertificatesOptions;
  private readonly backoff: ExponentialBackoff;
  private readonly random: () => number;
  private readonly log: AgentLogger;
  private cert: WorkloadCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private first: Promise<WorkloadCertificate> | undefined;
  private closed = false;
  private expiredWarned = false;
  private fetches = 0;

  constructor(options: WorkloadCertificatesOptions) {
    super();
    this.options = options;
    this.identity = spiffeId(options.identity);
    this.backoff = new ExponentialBackoff({ baseMs: 1_000, maxMs: 30_000, ...options.backoff, ...(options.random ? { random: options.random } : {}) });
    this.random = options.random ?? Math.random;
    this.log = options.log ?? { info: () => undefined, warn: (m) => process.stderr.write(`${m}\n`) };
    const ratio = options.gracePeriodRatio ?? DEFAULT_GRACE_PERIOD_RATIO;
    if (!(ratio > 0 && ratio < 1)) throw new RangeError(`grace period ratio must be in (0, 1), got ${ratio}`);
  }

  /** The current certificate; undefined until the first one arrived. */
  current(): WorkloadCertificate | undefined {
    return this.cert;
  }

  /** Certificates received so far (the first one and every rotation). */
  get issued(): number {
    return this.fetches;
  }

  /**
   * Gets the first certificate, retrying with backoff until the CA answers (pilot-agent holds the proxy's
   * first SDS answer the same way), then keeps rotating it. Rejects only when closed first.
   */
  start(): Promise<WorkloadCertificate> {
    this.first ??= new Promise<WorkloadCertificate>((resolve, reject) => {
      const onCertificate = (): void => {
        this.off('certificate', onCertificate);
        resolve(this.cert!);
      };
      this.on('certificate', onCertificate);
      this.closeFirst = () => {
        this.off('certificate', onCertificate);
        reject(new AgentError('TRELLIS_AGENT_CERTIFICATE', `stopped before a certificate for ${this.identity} was issued`));
      };
      void this.fetch();
    });
    return this.first;
  }

  /** Rotates now (as if half the lifetime had passed); for operators and tests. */
  rotateNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.fetch();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.closeFirst?.();
  }

  private closeFirst: (() => void) | undefined;

  /** One CA call at a time (a rotateNow() during a call joins it); schedules the next rotation or a retry. */
  private fetch(): Promise<void> {
    this.inFlight ??= this.callCa().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private inFlight: Promise<void> | undefined;

  private async callCa(): Promise<void> {
    if (this.closed) return;
    const ttl = this.options.ttlSeconds ?? DEFAULT_CERT_TTL_SECONDS;
    try {
      const { privateKeyPem, csrPem } = await createWorkloadCsr(this.options.identity, this.options.keyType ?? 'ECDSA');
      const answer = await this.options.sign(csrPem, ttl);
      const chain = await readIssuedChain(answer);
      const createdAt = new Date();
      const notAfter = chain.leaf.notAfter;
      if (notAfter.getTime() <= createdAt.getTime()) throw new AgentError('TRELLIS_AGENT_CERTIFICATE', `the CA issued a certificate that expired at ${notAfter.toISOString()}`);
      if (this.closed) return;
      this.cert = {
        identity: this.identity,
        certificateChainPem: chain.certificateChainPem,
        privateKeyPem,
        rootCertPem: chain.rootCertPem,
        serialNumber: chain.leaf.serialNumber,
        createdAt,
        notAfter,
      };
      this.fetches += 1;
      this.backoff.reset();
      this.expiredWarned = false;
      const delay = this.rotateDelay(this.cert);
      this.log.info(`workload certificate for ${this.identity}: serial ${this.cert.serialNumber}, expires ${notAfter.toISOString()}, rotation in ${Math.round(delay / 1000)} s`);
      this.schedule(delay);
      this.emit('certificate', this.cert);
    } catch (err) {
      if (this.closed) return;
      const error = err instanceof AgentError ? err : new AgentError('TRELLIS_AGENT_CERTIFICATE', `CA request for ${this.identity} failed: ${describeError(err)}`, { cause: err });
      const retryInMs = this.backoff.next();
      const held = this.cert;
      const keeping = held ? `; keeping certificate ${held.serialNumber} (expires ${held.notAfter.toISOString()})` : '';
      this.log.warn(`${error.code}: ${error.message}; retrying in ${retryInMs} ms${keeping}`);
      if (held && held.notAfter.getTime() <= Date.now() && !this.expiredWarned) {
        this.expiredWarned = true;
        this.log.warn(`TRELLIS_AGENT_CERTIFICATE: certificate ${held.serialNumber} for ${this.identity} expired at ${held.notAfter.toISOString()} and the CA is still failing; peers will refuse it`);
      }
      this.schedule(retryInMs);
      if (this.listenerCount('error') > 0) this.emit('error', { error, retryInMs });
    }
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.fetch();
    }, delayMs);
    // Not unref'd: while the first certificate is awaited this timer is all that keeps the agent alive. close() clears it.
  }

  /**
   * Istio's rotateTime: rotate when `ratio` of the lifetime (expiry − receipt) is left, the ratio jittered by
   * ± `jitter` so the sidecars of a fleet spread their CA calls.
   */
  rotateDelay(cert: Pick<WorkloadCertificate, 'createdAt' | 'notAfter'>): number {
    const lifetime = cert.notAfter.getTime() - cert.createdAt.getTime();
    const jitter = this.options.gracePeriodRatioJitter ?? DEFAULT_GRACE_PERIOD_RATIO_JITTER;
    const ratio = (this.options.gracePeriodRatio ?? DEFAULT_GRACE_PERIOD_RATIO) + (this.random() * 2 - 1) * jitter;
    const rotateAt = cert.notAfter.getTime() - ratio * lifetime;
    return Math.max(0, Math.round(rotateAt - Date.now()));
  }
}
