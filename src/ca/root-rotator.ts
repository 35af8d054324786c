// Istio's SelfSignedCARootCertRotator: a self-signed root near the end of its life is replaced before it expires (the old one kept for the overlap).
import { X509Certificate as NodeX509 } from 'node:crypto';
import { describeError } from '../common/errors.js';
import type { CaLogger, CertificateAuthority } from './authority.js';

export interface RootRotatorOptions {
  /** Istio's CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL (1 h). */
  readonly checkIntervalMs?: number;
  /** Rotate once less than this share of the root's lifetime is left: Istio's CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE (20). */
  readonly gracePeriodPercentile?: number;
  readonly logger: CaLogger;
  readonly now?: () => number;
}

export const DEFAULT_ROOT_CHECK_INTERVAL_MS = 3600_000;
export const DEFAULT_ROOT_GRACE_PERIOD_PERCENTILE = 20;

/** Checks the signing root every interval; plugged-in (cacerts) material is left to its operator. */
export function startRootRotator(ca: CertificateAuthority, options: RootRotatorOptions): { check(): Promise<boolean>; close(): void } {
  const now = options.now ?? Date.now;
  const percentile = options.gracePeriodPercentile ?? DEFAULT_ROOT_GRACE_PERIOD_PERCENTILE;
  let running: Promise<boolean> | undefined;
  const check = async (): Promise<boolean> => {
    const material = ca.signingMaterial();
    if (material.kind !== 'self-signed') return false;
    const root = new NodeX509(material.rootPem);
    const from = Date.parse(root.validFrom);
    const to = Date.parse(root.validTo);
    const left = to - now();
    if (left > ((to - from) * percentile) / 100) return false;
    options.logger.info(`CA: the self-signed root expires at ${root.validTo} (less than ${percentile}% of its life left): rotating it`);
    await ca.rotateRoot();
    return true;
  };
  const timer = setInterval(() => {
    running ??= check()
      .catch((err: unknown) => {
        options.logger.warn(`CA: self-signed root rotation failed, retrying at the next check: ${describeError(err)}`);
        return false;
      })
      .finally(() => (running = undefined));
  }, options.checkIntervalMs ?? DEFAULT_ROOT_CHECK_INTERVAL_MS);
  timer.unref();
  return { check, close: () => clearInterval(timer) };
}
