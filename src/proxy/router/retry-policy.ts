// Envoy's route RetryPolicy with its defaults resolved (num_retries 1, back-off 25 ms base and 10× max, previous_hosts predicate), and x-envoy-retry-on parsing.
import { unpackAny } from '../../xds/codec.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, durationMs, fieldPath, rejectUnsupportedFields } from './config-problems.js';
import type { CompiledRetryPolicy } from './route-table.js';

type RetryPolicy = envoy.config.route.v3.RetryPolicy;

/** Envoy's HTTP retry_on conditions (router/retry_state_impl.cc) that Trellis implements. */
export const HTTP_RETRY_ON: ReadonlySet<string> = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'http3-post-connect-failure',
]);

/** Envoy's gRPC retry_on conditions (grpc-status of the response). */
export const GRPC_RETRY_ON: ReadonlySet<string> = new Set(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);

export const PREVIOUS_HOSTS_PREDICATE = 'envoy.retry_host_predicates.previous_hosts';
export const PREVIOUS_HOSTS_PREDICATE_TYPE_URL = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';
export const PREVIOUS_PRIORITIES_TYPE_URL = 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

export const DEFAULT_BACK_OFF_BASE_MS = 25;

/**
 * Parses an x-envoy-retry-on / x-envoy-retry-grpc-on header value the way Envoy does: comma-separated, whitespace
 * trimmed, unknown values ignored.
 */
export function parseRetryOn(value: string): Set<string> {
  const out = new Set<string>();
  for (const part of value.split(',')) {
    const token = part.trim();
    if (HTTP_RETRY_ON.has(token) || GRPC_RETRY_ON.has(token)) out.add(token);
  }
  return out;
}

const SUPPORTED = new Set([
  'retry_on',
  'num_retries',
  'per_try_timeout',
  'retry_host_predicate',
  'host_selection_retry_max_attempts',
  'retriable_status_codes',
  'retry_back_off',
  'retry_priority',
]);

/**
 * retry_priority: Envoy's previous_priorities (what Istio's retryRemoteLocalities sets) is the one built-in. Its
 * update_frequency is required and must be positive (the proto's validation rule); the message is required too, as
 * Envoy's factory refuses an absent typed_config.
 */
function compileRetryPriority(priority: NonNullable<RetryPolicy['retry_priority']>, path: string, problems: ConfigProblems): number | undefined {
  const typeUrl = priority.typed_config?.type_url;
  if (priority.name !== PREVIOUS_PRIORITIES && typeUrl !== PREVIOUS_PRIORITIES_TYPE_URL) {
    problems.add(path, `unsupported retry priority ${JSON.stringify(priority.name ?? typeUrl ?? '')} (Trellis supports ${PREVIOUS_PRIORITIES})`);
    return undefined;
  }
  if (typeUrl !== PREVIOUS_PRIORITIES_TYPE_URL) {
    problems.add(fieldPath(path, 'typed_config'), `expected ${PREVIOUS_PRIORITIES_TYPE_URL}, got ${typeUrl ?? '(none)'}`);
    return undefined;
  }
  let updateFrequency = 0;
  try {
    updateFrequency = Number(unpackAny<envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig>(priority.typed_config!).update_frequency ?? 0);
  } catch (err) {
    problems.add(fieldPath(path, 'typed_config'), (err as Error).message);
    return undefined;
  }
  if (!(updateFrequency > 0)) {
    problems.add(fieldPath(path, 'typed_config.update_frequency'), `must be greater than 0, got ${updateFrequency}`);
    return undefined;
  }
  return updateFrequency;
}

/** Compiles a RetryPolicy at `path`. Unlike Envoy, an unknown retry_on value is refused rather than ignored. */
export function compileRetryPolicy(policy: RetryPolicy, path: string, problems: ConfigProblems): CompiledRetryPolicy | undefined {
  const before = problems.details.length;
  rejectUnsupportedFields(policy, SUPPORTED, path, problems);
  const retryOn = new Set<string>();
  for (const part of (policy.retry_on ?? '').split(',')) {
    const token = part.trim();
    if (token === '') continue;
    if (HTTP_RETRY_ON.has(token) || GRPC_RETRY_ON.has(token)) retryOn.add(token);
    else problems.add(fieldPath(path, 'retry_on'), `unsupported retry condition ${JSON.stringify(token)} (expected one of ${[...HTTP_RETRY_ON, ...GRPC_RETRY_ON].join(', ')})`);
  }
  // num_retries is a UInt32Value: unset → 1; an explicit 0 decodes as {} → 0.
  const numRetries = policy.num_retries === undefined || policy.num_retries === null ? 1 : Number(policy.num_retries.value ?? 0);
  const perTryTimeoutMs = durationMs(policy.per_try_timeout, fieldPath(path, 'per_try_timeout'), problems) ?? 0;

  let backOffBaseMs = DEFAULT_BACK_OFF_BASE_MS;
  let backOffMaxMs = DEFAULT_BACK_OFF_BASE_MS * 10;
  if (policy.retry_back_off !== undefined && policy.retry_back_off !== null) {
    const p = fieldPath(path, 'retry_back_off');
    rejectUnsupportedFields(policy.retry_back_off, new Set(['base_interval', 'max_interval']), p, problems);
    const base = durationMs(policy.retry_back_off.base_interval, fieldPath(p, 'base_interval'), problems);
    if (base === undefined || base <= 0) {
      problems.add(fieldPath(p, 'base_interval'), 'is required and must be greater than 0');
    } else {
      backOffBaseMs = base;
      const max = durationMs(policy.retry_back_off.max_interval, fieldPath(p, 'max_interval'), problems);
      if (max !== undefined && max <= 0) problems.add(fieldPath(p, 'max_interval'), 'must be greater than 0');
      else if (max !== undefined && max < base) problems.add(fieldPath(p, 'max_interval'), 'must be greater than or equal to the base_interval');
      backOffMaxMs = max ?? base * 10;
    }
  }

  let avoidPreviousHosts = false;
  (policy.retry_host_predicate ?? []).forEach((predicate, i) => {
    const p = `${fieldPath(path, 'retry_host_predicate')}[${i}]`;
    const typeUrl = predicate.typed_config?.type_url;
    if (predicate.name === PREVIOUS_HOSTS_PREDICATE || typeUrl === PREVIOUS_HOSTS_PREDICATE_TYPE_URL) {
      if (typeUrl !== undefined && typeUrl !== PREVIOUS_HOSTS_PREDICATE_TYPE_URL) {
        problems.add(fieldPath(p, 'typed_config'), `expected ${PREVIOUS_HOSTS_PREDICATE_TYPE_URL}, got ${typeUrl}`);
      }
      avoidPreviousHosts = true;
    } else {
      problems.add(p, `unsupported retry host predicate ${JSON.stringify(predicate.name ?? typeUrl ?? '')} (Trellis supports ${PREVIOUS_HOSTS_PREDICATE})`);
    }
  });
  const priorityUpdateFrequency = policy.retry_priority ? compileRetryPriority(policy.retry_priority, fieldPath(path, 'retry_priority'), problems) : undefined;
  const retriableStatusCodes = new Set<number>();
  (policy.retriable_status_codes ?? []).forEach((code, i) => {
    if (!Number.isInteger(code) || code < 100 || code > 599) problems.add(`${fieldPath(path, 'retriable_status_codes')}[${i}]`, `not an HTTP status code: ${code}`);
    else retriableStatusCodes.add(code);
  });
  if (problems.details.length > before) return undefined;
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs,
    retriableStatusCodes,
    backOffBaseMs,
    backOffMaxMs,
    avoidPreviousHosts,
    // Envoy: host_selection_retry_max_attempts, at least 1.
    hostSelectionRetryMaxAttempts: Math.max(1, Number(policy.host_selection_retry_max_attempts ?? 1)),
    ...(priorityUpdateFrequency !== undefined ? { previousPrioritiesUpdateFrequency: priorityUpdateFrequency } : {}),
  };
}
