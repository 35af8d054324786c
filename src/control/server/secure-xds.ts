// The secure xDS port (Istio's 15012): TLS with a certificate from the control plane's own CA, serving ADS and IstioCertificateService side by side.
import { X509Certificate as NodeX509 } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { describeError } from '../../common/errors.js';
import { CertificateAuthority, type CaLogger } from '../../ca/authority.js';
import { BootstrapTokens } from '../../ca/bootstrap-tokens.js';
import { addCaService } from '../../ca/ca-server.js';
import { bootstrapTokenAuthenticator, clientCertificateAuthenticator, firstApplicable } from '../../ca/caller-authentication.js';
import type { KeyType } from '../../ca/keys.js';
import { watchCacerts } from '../../ca/cacerts-watcher.js';
import { startRootRotator } from '../../ca/root-rotator.js';
import { hasCacerts } from '../../ca/ca-material.js';
import { ServingCertificateProvider, defaultServingNames, secureServerCredentials } from '../../ca/serving-certificate.js';
import type { AdsServer } from '../../xds/server/ads-server.js';
import type { MetricsRegistry } from './metrics.js';

export interface SecureXdsOptions {
  /** Default 127.0.0.1:15012; port 0 picks one. */
  readonly address: string;
  /** Istio's cacerts directory; when it holds ca-cert.pem and ca-key.pem those sign, else a self-signed root does. */
  readonly caCertDir?: string;
  /** Where the self-signed root is kept across restarts; absent: in memory. */
  readonly selfSignedDir?: string;
  readonly keyType?: KeyType;
  readonly workloadCertTtlMs?: number;
  readonly maxWorkloadCertTtlMs?: number;
  readonly rootRotationOverlapMs?: number;
  /** Default: mesh config trustDomain. */
  readonly trustDomain?: string;
  /** `token namespace serviceaccount` per line. */
  readonly tokenFile?: string;
  /** Where the trust bundle (PEM) is written for agents to trust this port with. */
  readonly rootCertOut?: string;
  /** Reload caCertDir when its files change (Istio's AUTO_RELOAD_PLUGIN_CERTS); default true. */
  readonly reloadCaCerts?: boolean;
  /** How often a self-signed root is checked for rotation near its end (Istio: 1 h); 0 disables. */
  readonly rootCertCheckIntervalMs?: number;
}

export interface SecureXds {
  readonly port: number;
  readonly ca: CertificateAuthority;
  /** Bootstrap tokens the CA accepts; `tokens.issue(ns, sa)` makes one for a workload (used by `trellis up`). */
  readonly tokens: BootstrapTokens;
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 2_000;

export async function startSecureXds(options: SecureXdsOptions & { trustDomain: string; rootNamespace: string; ads: AdsServer; registry: MetricsRegistry; logger: CaLogger }): Promise<SecureXds> {
  const ca = await CertificateAuthority.create({
    trustDomain: options.trustDomain,
    logger: options.logger,
    ...pick(options, ['caCertDir', 'selfSignedDir', 'keyType', 'workloadCertTtlMs', 'maxWorkloadCertTtlMs', 'rootRotationOverlapMs', 'rootCertOut']),
  });
  const cleanups: Array<() => Promise<void> | void> = [() => ca.close()];
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  try {
    const tokens = new BootstrapTokens(options.tokenFile);
    if (!options.tokenFile) options.logger.info('CA: no token file: only tokens issued in-process and callers holding a mesh certificate are accepted');
    if (options.caCertDir && hasCacerts(options.caCertDir) && options.reloadCaCerts !== false) {
      const watcher = watchCacerts(ca, options.caCertDir, options.logger);
      cleanups.push(() => watcher.close());
    }
    if (options.rootCertCheckIntervalMs !== 0) {
      const rotator = startRootRotator(ca, { logger: options.logger, ...(options.rootCertCheckIntervalMs ? { checkIntervalMs: options.rootCertCheckIntervalMs } : {}) });
      cleanups.push(() => rotator.close());
    }
    const serving = await ServingCertificateProvider.start(ca, defaultServingNames(options.rootNamespace, options.address), ca.workloadCertTtlMs, options.logger);
    cleanups.push(() => serving.close());

    // Istio's CA server metrics (security/pkg/server/ca/monitoring.go).
    const r = options.registry;
    const csrs = r.counter('citadel_server_csr_count', 'The number of CSRs received by Citadel server.');
    const authFailures = r.counter('citadel_server_authentication_failure_count', 'The number of authentication failures.');
    const parseErrors = r.counter('citadel_server_csr_parsing_err_count', 'The number of errors occurred when parsing the CSR.');
    const signErrors = r.counter('citadel_server_csr_sign_err_count', 'The number of errors occurred when signing the CSR (error_type identity: a CSR for another identity).');
    const issued = r.counter('citadel_server_success_cert_issuance_count', 'The number of certificates issuances that have succeeded.');
    const rootExpiry = r.gauge('citadel_server_root_cert_expiry_timestamp', 'The unix timestamp, in seconds, when Citadel root cert will expire.');
    const updateRootExpiry = (): void => rootExpiry.set(Math.floor(new Date(new NodeX509(ca.signingMaterial().rootPem).validTo).getTime() / 1000));
    updateRootExpiry();
    cleanups.push(ca.onChange(updateRootExpiry));

    const server = new grpc.Server();
    options.ads.addTo(server);
    addCaService(server, {
      ca,
      // A bearer token when there is one, else a verified mesh certificate (a workload renewing its own).
      authenticator: firstApplicable(bootstrapTokenAuthenticator(tokens), clientCertificateAuthenticator(options.trustDomain)),
      logger: options.logger,
      observer: {
        request: () => csrs.inc(),
        issued: () => issued.inc(),
        refused: (reason) => {
          if (reason === 'authentication') authFailures.inc();
          else if (reason === 'csr') parseErrors.inc();
          else signErrors.inc({ error_type: reason });
        },
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(options.address, secureServerCredentials(serving), (err, bound) => (err ? reject(err) : resolve(bound)));
    }).catch((err: unknown) => {
      server.forceShutdown();
      throw new Error(`secure xDS address ${options.address}: ${describeError(err)}`, { cause: err });
    });
    cleanups.push(async () => {
      // The ADS streams of this server are ended by the AdsServer's own close(); here the server goes.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    });
    let closing: Promise<void> | undefined;
    return { port, ca, tokens, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
