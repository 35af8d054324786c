// The sample's timeouts, which the fault-injection walkthrough relies on: productpage gives reviews 3 s (twice), reviews v3 gives ratings 2.5 s, v2 10 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetailsServer } from '../../../examples/bookinfo/src/details.js';
import { CALL_TIMEOUT_MS, createProductpageServer, REVIEWS_ATTEMPTS, REVIEWS_UNAVAILABLE } from '../../../examples/bookinfo/src/productpage.js';
import { createReviewsServer, RATINGS_UNAVAILABLE, ratingsTimeoutMs, REVIEWS_VERSIONS } from '../../../examples/bookinfo/src/reviews.js';
import { request, start, startFake } from './bookinfo-support.js';

const quiet = { log: () => {} };
const SLOW_MS = 30_000; // far longer than any timeout under test: a page that waits for it would fail the test

test('the sample\'s values: 3 s per productpage call, reviews tried twice, ratings 10 s from v2 and 2.5 s from v3', () => {
  assert.equal(CALL_TIMEOUT_MS, 3_000);
  assert.equal(REVIEWS_ATTEMPTS, 2);
  assert.equal(ratingsTimeoutMs(REVIEWS_VERSIONS.v2!), 10_000);
  assert.equal(ratingsTimeoutMs(REVIEWS_VERSIONS.v3!), 2_500);
});

test('productpage gives up on a reviews that sleeps past 3 s and shows the unavailable message', { timeout: 20_000 }, async () => {
  const sleepy = await startFake((_req, res) => {
    const timer = setTimeout(() => res.end('{}'), SLOW_MS);
    res.on('close', () => clearTimeout(timer));
  });
  const details = await start(createDetailsServer(quiet));
  const page = await start(createProductpageServer({ detailsUrl: details.url, reviewsUrl: sleepy.url, ...quiet }));
  try {
    const startedAt = Date.now();
    const res = await request(`${page.url}/productpage`);
    const elapsed = Date.now() - startedAt;
    assert.equal(res.status, 200);
    assert.ok(res.body.includes('Error fetching product reviews!'));
    assert.ok(res.body.includes(REVIEWS_UNAVAILABLE));
    assert.ok(res.body.includes('<dt>Type:</dt>paperback'), 'details are still shown');
    assert.equal(sleepy.requests.length, 2, 'one attempt and the sample\'s retry');
    assert.ok(elapsed < SLOW_MS, `answered after ${elapsed} ms, without waiting for reviews`);
  } finally {
    await Promise.all([page.close(), details.close(), sleepy.close()]);
  }
});

test('reviews v3 gives up on a ratings that sleeps past 2.5 s and says ratings are unavailable', { timeout: 20_000 }, async () => {
  const sleepy = await startFake((_req, res) => {
    const timer = setTimeout(() => res.end('{}'), SLOW_MS);
    res.on('close', () => clearTimeout(timer));
  });
  const v3 = await start(createReviewsServer({ version: 'v3', ratingsUrl: sleepy.url, ...quiet }));
  try {
    const res = await request(`${v3.url}/reviews/0`);
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body) as { reviews: Array<{ rating?: unknown }> };
    assert.deepEqual(body.reviews.map((r) => r.rating), [{ error: RATINGS_UNAVAILABLE }, { error: RATINGS_UNAVAILABLE }]);
    assert.equal(sleepy.requests.length, 1);
  } finally {
    await Promise.all([v3.close(), sleepy.close()]);
  }
});
