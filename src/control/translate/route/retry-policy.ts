// VirtualService retries as Envoy's RetryPolicy, with Istio's default policy when none is given (retry.ConvertPolicy).
import type { HTTPRetry } from '../../../api/index.js';
import { packAny } from '../../../xds/codec.js';
import type { envoy } from '../../../xds/generated/types.js';
import { PREVIOUS_HOSTS_PREDICATE, PREVIOUS_HOSTS_PREDICATE_TYPE_URL } from '../common/envoy-filter-names.js';
import { durationFromIstio } from '../common/route-duration.js';

export type RetryPolicy = envoy.config.route.v3.RetryPolicy;

const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';
const PREVIOUS_PRIORITIES_MESSAGE = 'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

/** Istio's retryRemoteLocalities: previous_priorities with update_frequency 2 (retry.go buildPreviousPrioritiesConfig). */
function previousPriorities(): NonNullable<RetryPolicy['retry_priority']> {
  return { name: PREVIOUS_PRIORITIES, typed_config: packAny(PREVIOUS_PRIORITIES_MESSAGE, { update_frequency: 2 }) };
}

/** Istio's default `retryOn`. */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

/**
 * Istio's DefaultPolicy: `attempts` retries on connection failures and 503, preferring hosts not tried yet
 * (previous_hosts predicate, up to 5 host selections).
 */
export function defaultRetryPolicy(attempts = 2): RetryPolicy {
  return {
    retry_on: DEFAULT_RETRY_ON,
    num_retries: { value: attempts },
    retry_host_predicate: [
      {
        name: PREVIOUS_HOSTS_PREDICATE,
        // PreviousHostsPredicate is an empty message, so its encoding is empty bytes; Trellis's descriptor does not carry
        // the message, hence the hand-made Any.
        typed_config: { type_url: PREVIOUS_HOSTS_PREDICATE_TYPE_URL, value: new Uint8Array(0) },
      },
    ],
    host_selection_retry_max_attempts: 5,
    retriable_status_codes: [503],
  };
}

/** Istio's parseRetryOn: integers are retriable status codes, the rest Envoy retry conditions. */
function parseRetryOn(retryOn: string): { retryOn: string; codes: number[] } {
  const conditions: string[] = [];
  const codes: number[] = [];
  for (const part of retryOn.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    if (/^\d+$/.test(item)) codes.push(Number(item));
    else conditions.push(item);
  }
  return { retryOn: conditions.join(','), codes };
}

/**
 * Istio's retry.ConvertPolicy. No VirtualService policy: the mesh default (`defaultAttempts`, 0 disables it).
 * `attempts` 0 or unset in a given policy disables retries. Otherwise the default policy with the user's fields on top;
 * status codes in retryOn turn on `retriable-status-codes`. `consistentHash` drops the previous-hosts predicate, which
 * would defeat session affinity.
 */
export function translateRetryPolicy(retries: HTTPRetry | undefined, defaultAttempts: number, consistentHash = false): RetryPolicy | undefined {
  let out: RetryPolicy;
  if (retries === undefined) {
    if (defaultAttempts <= 0) return undefined;
    out = defaultRetryPolicy(defaultAttempts);
  } else {
    if ((retries.attempts ?? 0) <= 0) return undefined;
    out = defaultRetryPolicy(retries.attempts);
    if (retries.retryOn) {
      const parsed = parseRetryOn(retries.retryOn);
      out.retry_on = parsed.retryOn;
      out.retriable_status_codes = parsed.codes;
      if (parsed.codes.length > 0 && !out.retry_on.includes('retriable-status-codes')) {
        out.retry_on = out.retry_on === '' ? 'retriable-status-codes' : `${out.retry_on},retriable-status-codes`;
      }
      if (parsed.codes.length === 0) delete out.retriable_status_codes;
    }
    const perTry = durationFromIstio(retries.perTryTimeout);
    if (perTry) out.per_try_timeout = perTry;
    if (retries.retryRemoteLocalities) {
      out.retry_priority = previousPriorities();
    }
    if (retries.retryIgnorePreviousHosts === false) delete out.retry_host_predicate;
    const backoff = durationFromIstio(retries.backoff);
    if (backoff) out.retry_back_off = { base_interval: backoff };
  }
  if (consistentHash) delete out.retry_host_predicate;
  return out;
}
