// The one place the control plane is wired together: file config store → ServiceEntry registry → PushContext → generators → ADS, plus monitoring.
import { hostname } from 'node:os';
import { KIND_GROUPS, type Kind } from '../../api/index.js';
import { TRELLIS_VERSION } from '../../common/version.js';
import { FileConfigStore, formatConfigProblem, type ConfigProblem } from '../config/index.js';
import { ServiceEntryRegistry } from '../registry/index.js';
import type { XdsGenerator } from '../model/generator.js';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../model/mesh-config.js';
import { buildPushContext, type PushContext } from '../model/push-context.js';
import { configDump } from './config-dump.js';
import { DiscoveryServer, type ControlLogger } from './discovery-server.js';
import { startMonitoringServer, type MonitoringListener } from './monitoring-server.js';
import { proxySyncStatus } from './sync-status.js';
import { DEFAULT_MONITORING_ADDRESS, DEFAULT_SECURE_XDS_ADDRESS, DEFAULT_XDS_ADDRESS } from './ports.js';
import { startSecureXds, type SecureXdsOptions } from './secure-xds.js';
import type { CertificateAuthority } from '../../ca/authority.js';
import type { BootstrapTokens } from '../../ca/bootstrap-tokens.js';
import { createGenerators } from '../translate/generators/index.js';

export interface ControlPlaneOptions {
  /** Directory of Istio YAML, loaded recursively and watched. */
  readonly configDir: string;
  /** ADS (plaintext gRPC), default 127.0.0.1:15010; port 0 picks one. */
  readonly xdsAddress?: string;
  /** Metrics and debug API, default 127.0.0.1:15014; port 0 picks one. */
  readonly monitoringAddress?: string;
  readonly mesh?: Partial<MeshConfig>;
  /** Istio PILOT_DEBOUNCE_AFTER (100 ms). */
  readonly debounceAfterMs?: number;
  /** Istio PILOT_DEBOUNCE_MAX (10 s). */
  readonly debounceMaxMs?: number;
  /** Istio PILOT_PUSH_THROTTLE (100). */
  readonly pushThrottle?: number;
  /** Istio PILOT_ENABLE_EDS_DEBOUNCE (true). */
  readonly debounceEndpoints?: boolean;
  readonly logger?: ControlLogger;
  /** Generators by type URL; default: the sidecar and gateway generators of src/control/translate. */
  readonly generators?: ReadonlyMap<string, XdsGenerator<PushContext>>;
  /**
   * The CA and the secure xDS port (TLS, ADS + IstioCertificateService, Istio's 15012). Off when absent;
   * `address` defaults to 127.0.0.1:15012, the trust domain to the mesh config's.
   */
  readonly secureXds?: Partial<SecureXdsOptions>;
}

export interface ControlPlane {
  readonly xdsPort: number;
  readonly monitoringPort: number;
  readonly discovery: DiscoveryServer<PushContext>;
  readonly store: FileConfigStore;
  /** The secure xDS port, when `secureXds` was given. */
  readonly secureXdsPort?: number;
  /** The CA (root rotation: `ca.rotateRoot()`), when `secureXds` was given. */
  readonly ca?: CertificateAuthority;
  /** The bootstrap tokens the CA accepts (`tokens.issue(namespace, serviceAccount)`), when `secureXds` was given. */
  readonly tokens?: BootstrapTokens;
  /** Stops serving (streams end with OK so proxies reconnect elsewhere), stops watching; idempotent. */
  close(): Promise<void>;
}

export { DEFAULT_MONITORING_ADDRESS, DEFAULT_SECURE_XDS_ADDRESS, DEFAULT_XDS_ADDRESS };

const consoleLogger: ControlLogger = { info: (m) => console.log(m), warn: (m) => console.warn(m) };

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const logger = options.logger ?? consoleLogger;
  const mesh: MeshConfig = { ...DEFAULT_MESH_CONFIG, ...options.mesh };
  const store = new FileConfigStore({ dir: options.configDir, onWarning: (m) => logger.warn(`config: ${m}`) });
  const cleanups: Array<() => Promise<void> | void> = [() => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.warn(`control plane: error while stopping: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  try {
    const first = await store.start();
    let reported = new Set<string>();
    const report = (problems: readonly ConfigProblem[]): void => {
      const now = new Set(problems.map(formatConfigProblem));
      for (const line of now) if (!reported.has(line)) logger.warn(line);
      reported = now;
    };
    report(first.problems);
    logger.info(`config: ${store.name}: ${first.files} file(s), ${countResources(store)} resource(s), ${first.problems.length} problem(s)`);
    const offReload = store.onReload((result) => report(result.problems));
    cleanups.push(offReload);

    const registry = new ServiceEntryRegistry(store, { domainSuffix: mesh.domainSuffix });
    cleanups.push(() => registry.close());
    const discovery = new DiscoveryServer<PushContext>({
      store,
      registry,
      buildPushContext: () => buildPushContext({ store, registry, mesh }),
      generators: options.generators ?? createGenerators(),
      debounce: {
        ...(options.debounceAfterMs !== undefined ? { afterMs: options.debounceAfterMs } : {}),
        ...(options.debounceMaxMs !== undefined ? { maxMs: options.debounceMaxMs } : {}),
        ...(options.debounceEndpoints !== undefined ? { debounceEndpoints: options.debounceEndpoints } : {}),
      },
      ...(options.pushThrottle !== undefined ? { pushThrottle: options.pushThrottle } : {}),
      logger,
    });
    discovery.start();
    cleanups.push(() => discovery.close());

    const xds = await discovery.ads.listen(options.xdsAddress ?? DEFAULT_XDS_ADDRESS);
    cleanups.push(() => xds.close());
    const secure = options.secureXds
      ? await startSecureXds({
          ...options.secureXds,
          address: options.secureXds.address ?? DEFAULT_SECURE_XDS_ADDRESS,
          trustDomain: options.secureXds.trustDomain ?? mesh.trustDomain,
          rootNamespace: mesh.rootNamespace,
          ads: discovery.ads,
          registry: discovery.metrics.registry,
          logger,
        })
      : undefined;
    // First in the list, so it runs last: by then discovery.close() has ended the ADS streams on its server too.
    if (secure) cleanups.unshift(() => secure.close());
    let serving = true;
    const controlPlaneName = `trellis-control.${hostname()}`;
    const monitoring: MonitoringListener = await startMonitoringServer(options.monitoringAddress ?? DEFAULT_MONITORING_ADDRESS, {
      metrics: () => discovery.metrics.registry.expose(),
      ready: () => serving && discovery.pushContext !== undefined,
      syncz: () => discovery.ads.streams().map((s) => proxySyncStatus(s, TRELLIS_VERSION, controlPlaneName)).sort((a, b) => (a.proxy < b.proxy ? -1 : a.proxy > b.proxy ? 1 : 0)),
      configDump: (proxyId) => (discovery.proxy(proxyId) ? configDump(discovery.cache, proxyId) ?? { configs: [] } : undefined),
      configz: () => configz(store, discovery),
      // istiod's PushContext JSON shows ProxyStatus; which listener or host conflicts is what the gauges do not say.
      pushStatus: () => ({ version: discovery.pushContext?.version, status: discovery.pushContext?.status.toJSON() ?? {} }),
    });
    cleanups.push(() => {
      serving = false;
      return monitoring.close();
    });
    logger.info(`control plane ${TRELLIS_VERSION}: xDS on port ${xds.port}${secure ? `, secure xDS and CA on port ${secure.port}` : ''}, monitoring on port ${monitoring.port}`);
    let closing: Promise<void> | undefined;
    return {
      xdsPort: xds.port,
      monitoringPort: monitoring.port,
      discovery,
      store,
      ...(secure ? { secureXdsPort: secure.port, ca: secure.ca, tokens: secure.tokens } : {}),
      close: () => (closing ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function countResources(store: FileConfigStore): number {
  let n = 0;
  for (const kind of Object.keys(KIND_GROUPS) as Kind[]) n += store.list(kind).length;
  return n;
}

/** The store's content and what it refused, as /debug/configz shows it. */
function configz(store: FileConfigStore, discovery: DiscoveryServer<PushContext>): unknown {
  const resources: unknown[] = [];
  for (const kind of Object.keys(KIND_GROUPS) as Kind[]) for (const r of store.list(kind)) resources.push(r);
  return {
    store: store.name,
    pushVersion: discovery.pushContext?.version ?? '',
    resources,
    problems: store.problems().map((p) => ({ ...p, text: formatConfigProblem(p) })),
  };
}
