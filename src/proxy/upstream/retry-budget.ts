// Envoy's circuit-breaker retry_budget: concurrent retries limited to a share of the cluster's active and pending
// requests (never below min_retry_concurrency), replacing max_retries when configured.
import type { envoy } from '../../xds/generated/types.js';
import type { RetryBudget } from './types.js';

type RetryBudgetConfig = envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget;

/** Envoy's defaults when the budget is in use but a field is unset (resource_manager_impl.h). */
export const DEFAULT_BUDGET_PERCENT = 20;
export const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

/**
 * The live request count the budget is a share of (the cluster's DEFAULT-priority resources). Envoy adds its active and
 * pending requests; Trellis's `requests` already counts a request from admission, pending or not (pool/connection-pool.ts),
 * so it is that same sum.
 */
export interface RequestUsage {
  readonly requests: number;
}

/**
 * Compiles `retry_budget` at `path`; undefined when the budget is not in use. As in Envoy (cluster_info_impl.cc), a
 * budget message with neither field set leaves max_retries in charge: only a set field switches the budget on, and the
 * other then takes its default.
 */
export function compileRetryBudget(config: RetryBudgetConfig | undefined, usage: RequestUsage, path: string, problems: string[]): RetryBudget | undefined {
  if (!config) return undefined;
  const hasPercent = config.budget_percent !== undefined && config.budget_percent !== null;
  const hasMin = config.min_retry_concurrency !== undefined && config.min_retry_concurrency !== null;
  if (!hasPercent && !hasMin) return undefined;
  const budgetPercent = hasPercent ? Number(config.budget_percent!.value ?? 0) : DEFAULT_BUDGET_PERCENT;
  if (!(budgetPercent >= 0 && budgetPercent <= 100)) problems.push(`${path}.budget_percent.value: must be between 0 and 100, got ${budgetPercent}`);
  const minRetryConcurrency = hasMin ? Number(config.min_retry_concurrency!.value ?? 0) : DEFAULT_MIN_RETRY_CONCURRENCY;
  return {
    budgetPercent,
    minRetryConcurrency,
    // Envoy's RetryBudgetImpl::max(): the share of active + pending requests, rounded down, at least the minimum.
    limit: () => Math.max(Math.floor((budgetPercent / 100) * usage.requests), minRetryConcurrency),
  };
}
