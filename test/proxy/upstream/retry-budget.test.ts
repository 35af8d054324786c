// retry_budget in circuit-breaker thresholds: Envoy's limit (share of active requests, at least min_retry_concurrency),
// its defaults, the empty message that leaves max_retries in charge, and bad values refused with their path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XdsValidationError } from '../../../src/common/errors.js';
import { compileCluster } from '../../../src/proxy/upstream/cluster.js';
import { compileRetryBudget } from '../../../src/proxy/upstream/retry-budget.js';

test('retry budget: budget_percent of active requests, never below min_retry_concurrency', () => {
  const usage = { requests: 0 };
  const problems: string[] = [];
  const budget = compileRetryBudget({ budget_percent: { value: 25 }, min_retry_concurrency: { value: 2 } }, usage, 'b', problems)!;
  assert.deepEqual(problems, []);
  assert.equal(budget.limit(), 2);
  usage.requests = 7; // 1.75 rounds down: the minimum holds
  assert.equal(budget.limit(), 2);
  usage.requests = 40;
  assert.equal(budget.limit(), 10);
  usage.requests = 41;
  assert.equal(budget.limit(), 10);
});

test('retry budget: one field set switches it on with Envoy defaults for the other (20%, 3); none set leaves max_retries', () => {
  const usage = { requests: 100 };
  const onlyMin = compileRetryBudget({ min_retry_concurrency: { value: 1 } }, usage, 'b', [])!;
  assert.equal(onlyMin.budgetPercent, 20);
  assert.equal(onlyMin.limit(), 20);
  const onlyPercent = compileRetryBudget({ budget_percent: { value: 1 } }, usage, 'b', [])!;
  assert.equal(onlyPercent.minRetryConcurrency, 3);
  assert.equal(onlyPercent.limit(), 3);
  // budget_percent 0 (decoded as an empty Percent) is set: retries limited to the minimum.
  const zero = compileRetryBudget({ budget_percent: {} }, usage, 'b', [])!;
  assert.equal(zero.limit(), 3);
  assert.equal(compileRetryBudget({}, usage, 'b', []), undefined);
  assert.equal(compileRetryBudget(undefined, usage, 'b', []), undefined);

  const withBudget = compileCluster({ name: 'c', circuit_breakers: { thresholds: [{ max_retries: { value: 1 }, retry_budget: { budget_percent: { value: 50 } } }] } });
  assert.equal(withBudget.circuitBreakers.maxRetries, 1);
  assert.equal(withBudget.circuitBreakers.retryBudget?.budgetPercent, 50);
  assert.equal(withBudget.circuitBreakers.retryBudget?.limit(), 3);
  const emptyBudget = compileCluster({ name: 'c', circuit_breakers: { thresholds: [{ max_retries: { value: 1 }, retry_budget: {} }] } });
  assert.equal(emptyBudget.circuitBreakers.retryBudget, undefined);
  withBudget.destroy();
  emptyBudget.destroy();
});

test('retry budget: a percent outside 0-100 is refused with the field path', () => {
  const problems: string[] = [];
  compileRetryBudget({ budget_percent: { value: 150 } }, { requests: 0 }, 'p', problems);
  compileRetryBudget({ budget_percent: { value: -1 } }, { requests: 0 }, 'p', problems);
  assert.deepEqual(problems, ['p.budget_percent.value: must be between 0 and 100, got 150', 'p.budget_percent.value: must be between 0 and 100, got -1']);
  assert.throws(
    () => compileCluster({ name: 'c', circuit_breakers: { thresholds: [{ retry_budget: { budget_percent: { value: 101 } } }] } }),
    (err: unknown) => err instanceof XdsValidationError && err.details.includes('Cluster c.circuit_breakers.thresholds[0].retry_budget.budget_percent.value: must be between 0 and 100, got 101'),
  );
});
