// The client side of the CA: sends a CSR to IstioCertificateService.CreateCertificate over TLS with a bearer token, as istio-agent does.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { describeError } from '../common/errors.js';
import { CA_SERVICE_DEFINITION, stringStruct, type IstioCertificateRequest, type IstioCertificateResponse } from './ca-service.js';

export interface CreateCertificateOptions {
  /** PEM PKCS#10 request. */
  readonly csr: string;
  /** Requested validity; 0/absent lets the CA choose its default (24 h). */
  readonly validitySeconds?: number;
  /** Bootstrap token; sent as `authorization: Bearer <token>` (Istio's header). */
  readonly token?: string;
  /** PEM root(s) the CA's serving certificate must chain to (the root the control plane wrote out). */
  readonly rootCertPem?: string;
  /**
   * A file of PEM roots read at each call, e.g. the control plane's --ca-root-out: after a root rotation the port's
   * certificate comes from the new root, which the file holds while a PEM read once at start does not.
   */
  readonly rootCertFile?: string;
  /** TLS name to check instead of the address's host (e.g. `istiod.istio-system.svc`). */
  readonly serverName?: string;
  /**
   * The certificate the workload holds (PEM chain, leaf first) and its key: presented as the TLS client certificate,
   * it authenticates a renewal without a token, as istio-agent renews with its current certificate.
   */
  readonly clientCertChainPem?: string;
  readonly clientKeyPem?: string;
  /** Istio's request metadata (WorkloadName, WorkloadIP, ClusterID). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Deadline for the call, default 10 s. */
  readonly timeoutMs?: number;
}

const CaClient = grpc.makeGenericClientConstructor(CA_SERVICE_DEFINITION, 'IstioCertificateService');

/** Error of a failed CreateCertificate: the gRPC status code (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, …) and the CA's reason. */
export type CaCallError = grpc.ServiceError;

/**
 * Asks the CA at `address` (host:port of the secure xDS port) to sign `csr`. Resolves to the PEM chain in
 * Istio's order: leaf, intermediates, root; during a root rotation overlap the other trusted root(s) follow.
 * The self-signed certificates at the end are the trust bundle. Rejects with a grpc.ServiceError (the CA's status
 * and reason), or a plain Error when no root to trust the CA with could be had.
 */
export function createCertificate(address: string, options: CreateCertificateOptions): Promise<string[]> {
  // An IP target would make grpc-js send the IP as TLS SNI, which Node warns is not allowed (RFC 6066): name the
  // serving certificate's `localhost` DNS SAN instead (the certificate carries the loopback IPs too).
  const serverName = options.serverName ?? (isIP(address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')) ? 'localhost' : undefined);
  const channelOptions: grpc.ChannelOptions = serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {};
  const identity = options.clientCertChainPem && options.clientKeyPem ? [Buffer.from(options.clientKeyPem), Buffer.from(options.clientCertChainPem)] as const : undefined;
  let roots: string;
  try {
    roots = `${options.rootCertPem ?? ''}${options.rootCertFile ? `\n${readFileSync(options.rootCertFile, 'utf8')}` : ''}`;
  } catch (err) {
    return Promise.reject(new Error(`createCertificate: cannot read ${options.rootCertFile}: ${describeError(err)}`, { cause: err }));
  }
  if (!roots.includes('-----BEGIN CERTIFICATE-----')) return Promise.reject(new Error('createCertificate: no root certificate to trust the CA with (rootCertPem or rootCertFile)'));
  const credentials = grpc.credentials.createSsl(Buffer.from(roots), identity?.[0] ?? null, identity?.[1] ?? null);
  const client = new CaClient(address, credentials, channelOptions);
  const metadata = new grpc.Metadata();
  if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
  const request: IstioCertificateRequest = {
    csr: options.csr,
    validity_duration: options.validitySeconds ?? 0,
    ...(options.metadata ? { metadata: stringStruct(options.metadata) } : {}),
  };
  const deadline = new Date(Date.now() + (options.timeoutMs ?? 10_000));
  return new Promise<string[]>((resolve, reject) => {
    const call = client as unknown as {
      createCertificate(req: IstioCertificateRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: IstioCertificateResponse) => void): void;
    };
    call.createCertificate(request, metadata, { deadline }, (err, response) => {
      client.close();
      if (err) reject(err);
      else resolve(response?.cert_chain ?? []);
    });
  });
}
