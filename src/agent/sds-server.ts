// The agent's SDS server: Envoy's SecretDiscoveryService (and ADS) on a loopback port, serving the workload's `default` and `ROOTCA` Secrets as Istio's agent does, pushed again on every rotation.
//
// The streams are the xDS server's (src/xds/server): the SDS methods carry the same DiscoveryRequest/Response
// messages as ADS, so they are registered as aliases of the ADS handlers and every stream gets the server's
// versioning, nonces, ACK/NACK handling and status. One agent serves one proxy, so every node sees the same secrets.
import * as grpc from '@grpc/grpc-js';
import { AdsServer, SnapshotCache, type AdsLogger } from '../xds/server/index.js';
import type { envoy } from '../xds/generated/types.js';
import { SECRET } from '../xds/type-urls.js';
import type { WorkloadCertificate } from './workload-certificates.js';

export type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;

/** Istio's resource names (security.WorkloadKeyCertResourceName, security.RootCertReqResourceName). */
export const WORKLOAD_SECRET_NAME = 'default';
export const ROOT_CA_SECRET_NAME = 'ROOTCA';

export const SDS_SERVICE_NAME = 'envoy.service.secret.v3.SecretDiscoveryService';
const ADS_METHOD_ALIASES: Readonly<Record<string, string>> = {
  StreamAggregatedResources: `/${SDS_SERVICE_NAME}/StreamSecrets`,
  DeltaAggregatedResources: `/${SDS_SERVICE_NAME}/DeltaSecrets`,
};

const NODE_KEY = 'workload';

/** The two Secrets of a certificate, shaped as Istio's toEnvoySecret builds them (inline_bytes). */
export function workloadSecrets(cert: Pick<WorkloadCertificate, 'certificateChainPem' | 'privateKeyPem' | 'rootCertPem'>): Secret[] {
  return [
    {
      name: WORKLOAD_SECRET_NAME,
      tls_certificate: {
        certificate_chain: { inline_bytes: Buffer.from(cert.certificateChainPem) },
        private_key: { inline_bytes: Buffer.from(cert.privateKeyPem) },
      },
    },
    { name: ROOT_CA_SECRET_NAME, validation_context: { trusted_ca: { inline_bytes: Buffer.from(cert.rootCertPem) } } },
  ];
}

/** A grpc.Server on which ADS registration also registers the SDS methods, served by the same handlers. */
class SecretDiscoveryGrpcServer extends grpc.Server {
  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    super.addService(service, implementation);
    const aliases: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [method, definition] of Object.entries(service)) {
      const path = ADS_METHOD_ALIASES[method];
      if (!path || !implementation[method]) continue;
      aliases[method] = { ...definition, path, originalName: undefined };
      handlers[method] = implementation[method]!;
    }
    if (Object.keys(aliases).length > 0) super.addService(aliases, handlers);
  }
}

export interface SdsServerOptions {
  readonly logger?: AdsLogger;
}

export class SdsServer {
  readonly ads: AdsServer;
  private readonly cache = new SnapshotCache({ nodeKey: () => NODE_KEY });
  private grpcServer: SecretDiscoveryGrpcServer | undefined;

  constructor(options: SdsServerOptions = {}) {
    // Only Secrets: a proxy asking this server for anything else is left unanswered (recorded), as istio-agent does.
    this.ads = new AdsServer({ source: this.cache, typeUrls: [SECRET], ...(options.logger ? { logger: options.logger } : {}) });
  }

  /** Serves `cert` from now on; subscribed proxies get it pushed (an identical certificate pushes nothing). */
  update(cert: Pick<WorkloadCertificate, 'certificateChainPem' | 'privateKeyPem' | 'rootCertPem'>): void {
    this.cache.setResources(NODE_KEY, SECRET, workloadSecrets(cert).map((s) => ({ name: s.name!, resource: s })));
  }

  /** Binds `address` (`127.0.0.1:15012`-like; port 0 picks one); plaintext, loopback only: the secrets include the private key. */
  async listen(address: string): Promise<{ port: number }> {
    const server = new SecretDiscoveryGrpcServer();
    this.ads.addTo(server);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.grpcServer = server;
    return { port };
  }

  async close(): Promise<void> {
    await this.ads.close();
    const server = this.grpcServer;
    this.grpcServer = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2_000);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
