// The control plane's own metrics, under istiod's names so existing dashboards read them.
import { MetricsRegistry, type Counter, type Gauge, type Histogram } from './metrics.js';
import { PUSH_STATUS_METRICS, type PushStatusMetric } from '../model/push-status.js';

/** Istio's convergence buckets (seconds). */
const CONVERGENCE_BUCKETS = [0.1, 0.5, 1, 3, 5, 10, 20, 30];
/** Istio's pilot_debounce_time buckets (seconds). */
const DEBOUNCE_BUCKETS = [0.01, 0.1, 1, 3, 5, 10, 20, 30];
/** Istio's pilot_pushcontext_init_seconds buckets. */
const PUSH_CONTEXT_INIT_BUCKETS = [0.01, 0.1, 0.5, 1, 3, 5];
/** Istio's pilot_xds_config_size_bytes buckets. */
const CONFIG_SIZE_BUCKETS = [1, 10_000, 1_000_000, 4_000_000, 10_000_000, 40_000_000];

export interface PilotMetrics {
  readonly registry: MetricsRegistry;
  /** `type`: cds, eds, lds, rds, sds — one per response written to a stream. */
  readonly pushes: Counter;
  /** `type`: seconds to generate and hand over one type for one proxy. */
  readonly pushTime: Histogram;
  /** Seconds from the first change of a (merged) request to the proxy's push being done. */
  readonly convergence: Histogram;
  /** Connected xDS streams. */
  readonly connected: Gauge;
  /** `type`: NACKs received. */
  readonly rejects: Counter;
  readonly pushContextErrors: Counter;
  /** `type` (kind) and `event` (add, update, delete): config store changes. */
  readonly configEvents: Counter;
  /** `type`: generator failures; the proxy keeps its last config of that type. */
  readonly generateErrors: Counter;
  /** `type`: hit or miss. */
  readonly cacheReads: Counter;
  readonly cacheSize: Gauge;
  /** Distinct encoded resources alive, each shared by every proxy holding it. */
  readonly sharedResources: Gauge;
  /** Debounced pushes (each a new PushContext), `type`: the request's reason (config, endpoint, proxy…). */
  readonly pushTriggers: Counter;
  readonly proxiesQueued: Gauge;
  readonly services: Gauge;
  readonly virtualServices: Gauge;
  readonly configProblems: Gauge;
  /** `type`: config, eds, svc, svcdelete — Istio's pilot_inbound_updates, one per change received. */
  readonly inboundUpdates: Counter;
  /** Seconds from the first change entering the debouncer to the merged push starting. */
  readonly debounceTime: Histogram;
  /** Seconds to build a PushContext. */
  readonly pushContextInit: Histogram;
  /** `type`: bytes of the resources of one type generated for one proxy. */
  readonly configSize: Histogram;
  /** Clusters (service ports) without instances in the current snapshot. */
  readonly edsNoInstances: Gauge;
  /** `type`: requests answering a nonce that is no longer the latest sent. */
  readonly expiredNonce: Counter;
  /** istiod's per-push status gauges (pilot_conflict_*, pilot_duplicate_envoy_clusters…): distinct cases in the current push. */
  readonly pushStatus: Readonly<Record<PushStatusMetric, Gauge>>;
}

export function createPilotMetrics(registry = new MetricsRegistry()): PilotMetrics {
  return {
    registry,
    pushes: registry.counter('pilot_xds_pushes', 'Pilot build and send errors for lds, rds, cds and eds: responses sent, by type.'),
    pushTime: registry.histogram('pilot_xds_push_time', 'Total time in seconds Pilot takes to push lds, rds, cds and eds.'),
    convergence: registry.histogram('pilot_proxy_convergence_time', 'Delay in seconds between config change and a proxy receiving all required configuration.', CONVERGENCE_BUCKETS),
    connected: registry.gauge('pilot_xds', 'Number of endpoints connected to this pilot using XDS.'),
    rejects: registry.counter('pilot_total_xds_rejects', 'Total number of XDS responses from pilot rejected by proxy.'),
    pushContextErrors: registry.counter('pilot_xds_push_context_errors', 'Number of errors (timeouts) initiating push context.'),
    configEvents: registry.counter('pilot_k8s_cfg_events', 'Events from the config store (the file store here), by kind and event.'),
    generateErrors: registry.counter('trellis_xds_generate_errors', 'Generator failures by type; the proxy keeps its last config of that type.'),
    cacheReads: registry.counter('pilot_xds_cache_reads', 'Total number of xds cache reads, by hit or miss.'),
    cacheSize: registry.gauge('pilot_xds_cache_size', 'Current size of xds cache.'),
    sharedResources: registry.gauge('trellis_xds_shared_resources', 'Distinct encoded xDS resources alive; proxies holding equal resources share one.'),
    pushTriggers: registry.counter('pilot_push_triggers', 'Total number of times a push was triggered, labeled by reason for the push.'),
    proxiesQueued: registry.gauge('trellis_push_queue_pending', 'Proxies waiting in the push queue.'),
    services: registry.gauge('pilot_services', 'Total services known to pilot.'),
    virtualServices: registry.gauge('pilot_virt_services', 'Total virtual services known to pilot.'),
    configProblems: registry.gauge('trellis_config_problems', 'Config files, documents or resources currently refused (see /debug/configz).'),
    inboundUpdates: registry.counter('pilot_inbound_updates', 'Total number of updates received by pilot.'),
    debounceTime: registry.histogram('pilot_debounce_time', 'Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.', DEBOUNCE_BUCKETS),
    pushContextInit: registry.histogram('pilot_pushcontext_init_seconds', 'Total time in seconds Pilot takes to init pushContext.', PUSH_CONTEXT_INIT_BUCKETS),
    configSize: registry.histogram('pilot_xds_config_size_bytes', 'Distribution of configuration sizes pushed to clients', CONFIG_SIZE_BUCKETS),
    edsNoInstances: registry.gauge('pilot_eds_no_instances', 'Number of clusters without instances.'),
    expiredNonce: registry.counter('pilot_xds_expired_nonce', 'Total number of XDS requests with an expired nonce.'),
    pushStatus: Object.fromEntries(Object.entries(PUSH_STATUS_METRICS).map(([name, help]) => [name, registry.gauge(name, help)])) as Record<PushStatusMetric, Gauge>,
  };
}
