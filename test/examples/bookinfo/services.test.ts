// Bookinfo's services called directly (no proxy): the sample's data, the three reviews versions, the product page, login, and trace-header propagation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetailsServer } from '../../../examples/bookinfo/src/details.js';
import { createProductpageServer, REVIEWS_UNAVAILABLE } from '../../../examples/bookinfo/src/productpage.js';
import { createRatingsServer } from '../../../examples/bookinfo/src/ratings.js';
import { createReviewsServer, RATINGS_UNAVAILABLE } from '../../../examples/bookinfo/src/reviews.js';
import { PROPAGATED_HEADERS } from '../../../examples/bookinfo/src/trace-headers.js';
import { count, json, logSink, request, start, startFake, type Running } from './bookinfo-support.js';

const quiet = { log: () => {} };
const FULL_STAR = '<span class="glyphicon glyphicon-star"></span>';
const EMPTY_STAR = '<span class="glyphicon glyphicon-star-empty"></span>';

describe('details', () => {
  let details: Running;
  before(async () => { details = await start(createDetailsServer(quiet)); });
  after(() => details.close());

  test('serves the sample book for a numeric id', async () => {
    const res = await request(`${details.url}/details/7`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /application\/json/);
    assert.deepEqual(JSON.parse(res.body), {
      id: 7, author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200,
      publisher: 'PublisherA', language: 'English', 'ISBN-10': '1234567890', 'ISBN-13': '123-1234567890',
    });
  });

  test('refuses a non-numeric id with 400 and says why', async () => {
    const res = await request(`${details.url}/details/abc`);
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body), { error: 'please provide numeric product id' });
  });

  test('health and unknown paths', async () => {
    assert.deepEqual(JSON.parse((await request(`${details.url}/health`)).body), { status: 'Details is healthy' });
    assert.equal((await request(`${details.url}/nothing`)).status, 404);
  });
});

describe('ratings', () => {
  let ratings: Running;
  before(async () => { ratings = await start(createRatingsServer(quiet)); });
  after(() => ratings.close());

  test('serves Reviewer1 5 stars and Reviewer2 4 stars', async () => {
    const res = await request(`${ratings.url}/ratings/0`);
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  });

  test('a POST replaces the ratings of that product only', async () => {
    const posted = await request(`${ratings.url}/ratings/3`, { method: 'POST', body: '{"Reviewer1":1,"Reviewer2":2}' });
    assert.equal(posted.status, 200);
    assert.deepEqual(JSON.parse(posted.body), { id: 3, ratings: { Reviewer1: 1, Reviewer2: 2 } });
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/ratings/3`)).body).ratings, { Reviewer1: 1, Reviewer2: 2 });
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/ratings/0`)).body).ratings, { Reviewer1: 5, Reviewer2: 4 });
  });

  test('bad input: non-numeric id, malformed JSON, oversized body', async () => {
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/ratings/x`)).body), { error: 'please provide numeric product ID' });
    const malformed = await request(`${ratings.url}/ratings/1`, { method: 'POST', body: '{"Reviewer1":' });
    assert.equal(malformed.status, 400);
    assert.deepEqual(JSON.parse(malformed.body), { error: 'please provide valid ratings JSON' });
    assert.equal((await request(`${ratings.url}/ratings/1`, { method: 'POST', body: '"five"' })).status, 400);
    assert.equal((await request(`${ratings.url}/ratings/1`, { method: 'POST', body: 'x'.repeat(100_000) })).status, 413);
    assert.deepEqual(JSON.parse((await request(`${ratings.url}/health`)).body), { status: 'Ratings is healthy' });
  });
});

describe('reviews', () => {
  let ratings: Running;
  const reviews: Record<string, Running> = {};
  before(async () => {
    ratings = await start(createRatingsServer(quiet));
    for (const version of ['v1', 'v2', 'v3']) {
      reviews[version] = await start(createReviewsServer({ version, ratingsUrl: ratings.url, podName: `reviews-${version}-test`, ...quiet }));
    }
  });
  after(async () => {
    await Promise.all(Object.values(reviews).map((r) => r.close()));
    await ratings.close();
  });

  const get = async (version: string) => {
    const res = await request(`${reviews[version]?.url}/reviews/0`);
    assert.equal(res.status, 200);
    return JSON.parse(res.body) as { id: string; podname: string; reviews: Array<{ reviewer: string; text: string; rating?: { stars?: number; color?: string; error?: string } }> };
  };

  test('v1 has two reviews and no ratings', async () => {
    const body = await get('v1');
    assert.equal(body.id, '0');
    assert.equal(body.podname, 'reviews-v1-test');
    assert.deepEqual(body.reviews.map((r) => r.reviewer), ['Reviewer1', 'Reviewer2']);
    assert.ok(body.reviews.every((r) => r.rating === undefined));
    assert.match(body.reviews[0]?.text ?? '', /slapstick humour is refreshing/);
  });

  test('v2 rates in black, v3 in red, with the stars from ratings', async () => {
    for (const [version, color] of [['v2', 'black'], ['v3', 'red']] as const) {
      const body = await get(version);
      assert.deepEqual(body.reviews.map((r) => r.rating), [{ stars: 5, color }, { stars: 4, color }], version);
    }
  });

  test('v2 says ratings are unavailable when ratings answers 500 or is down', async () => {
    const failing = await startFake(json({ error: 'boom' }, 500));
    const sink = logSink();
    const v2 = await start(createReviewsServer({ version: 'v2', ratingsUrl: failing.url, log: sink.log }));
    try {
      const body = JSON.parse((await request(`${v2.url}/reviews/0`)).body) as { reviews: Array<{ rating?: unknown }> };
      assert.deepEqual(body.reviews.map((r) => r.rating), [{ error: RATINGS_UNAVAILABLE }, { error: RATINGS_UNAVAILABLE }]);
      assert.ok(sink.lines.some((l) => l.includes('got status of 500')), sink.lines.join('\n'));
      await failing.close();
      const down = JSON.parse((await request(`${v2.url}/reviews/0`)).body) as { reviews: Array<{ rating?: unknown }> };
      assert.deepEqual(down.reviews[0]?.rating, { error: RATINGS_UNAVAILABLE });
    } finally {
      await v2.close();
      await failing.close();
    }
  });

  test('an unknown version is refused by name', () => {
    assert.throws(() => createReviewsServer({ version: 'v9', ...quiet }), /SERVICE_VERSION: reviews has versions v1, v2, v3, got "v9"/);
  });

  test('health, bad ids', async () => {
    assert.deepEqual(JSON.parse((await request(`${reviews.v1?.url}/health`)).body), { status: 'Reviews is healthy' });
    assert.equal((await request(`${reviews.v1?.url}/reviews/zero`)).status, 404);
  });
});

describe('productpage over the real services', () => {
  let ratings: Running;
  let details: Running;
  const reviews: Record<string, Running> = {};
  const pages: Record<string, Running> = {};
  before(async () => {
    ratings = await start(createRatingsServer(quiet));
    details = await start(createDetailsServer(quiet));
    for (const version of ['v1', 'v2', 'v3']) {
      reviews[version] = await start(createReviewsServer({ version, ratingsUrl: ratings.url, podName: `reviews-${version}-abcde`, ...quiet }));
      pages[version] = await start(createProductpageServer({ detailsUrl: details.url, reviewsUrl: reviews[version]?.url, ratingsUrl: ratings.url, ...quiet }));
    }
  });
  after(async () => {
    await Promise.all([...Object.values(pages), ...Object.values(reviews)].map((r) => r.close()));
    await Promise.all([ratings.close(), details.close()]);
  });

  test('the page shows the book, its details and reviews, and who served the reviews', async () => {
    const res = await request(`${pages.v1?.url}/productpage`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /text\/html/);
    assert.ok(res.body.includes('The Comedy of Errors'));
    assert.ok(res.body.includes('<h4 class="text-center text-primary">Book Details</h4>'));
    assert.ok(res.body.includes('<dt>Publisher:</dt>PublisherA'));
    assert.ok(res.body.includes('<dt>ISBN-13:</dt>123-1234567890'));
    assert.ok(res.body.includes('<h4 class="text-center text-primary">Book Reviews</h4>'));
    assert.ok(res.body.includes('<small>Reviewer2</small>'));
    assert.match(res.body, /Reviews served by:<\/dt>\s*<u>reviews-v1-abcde<\/u>/);
  });

  test('v1 shows no stars, v2 black stars, v3 red stars (5 + 4 full, 1 empty)', async () => {
    const v1 = (await request(`${pages.v1?.url}/productpage`)).body;
    assert.equal(count(v1, 'glyphicon-star'), 0);
    assert.ok(!v1.includes('<font color='));
    for (const color of ['black', 'red'] as const) {
      const html = (await request(`${pages[color === 'black' ? 'v2' : 'v3']?.url}/productpage`)).body;
      assert.equal(count(html, `<font color="${color}">`), 2, color);
      assert.equal(count(html, FULL_STAR), 9, color);
      assert.equal(count(html, EMPTY_STAR), 1, color);
      assert.ok(!html.includes(`<font color="${color === 'black' ? 'red' : 'black'}">`));
    }
  });

  test('the API: products, details, reviews and ratings by id', async () => {
    const products = JSON.parse((await request(`${pages.v1?.url}/api/v1/products`)).body) as Array<{ id: number; title: string }>;
    assert.deepEqual(products.map((p) => [p.id, p.title]), [[0, 'The Comedy of Errors']]);
    assert.equal(JSON.parse((await request(`${pages.v1?.url}/api/v1/products/0`)).body).publisher, 'PublisherA');
    assert.equal(JSON.parse((await request(`${pages.v3?.url}/api/v1/products/0/reviews`)).body).reviews[0].rating.color, 'red');
    assert.deepEqual(JSON.parse((await request(`${pages.v1?.url}/api/v1/products/0/ratings`)).body), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    const bad = await request(`${pages.v1?.url}/api/v1/products/abc`);
    assert.equal(bad.status, 400, 'details refuses the id and productpage passes its status on');
    assert.deepEqual(JSON.parse(bad.body), { error: 'Sorry, product details are currently unavailable for this book.' });
    assert.equal((await request(`${pages.v1?.url}/api/v1/products/%E0%A4%A`)).status, 400);
  });

  test('health, index, static stylesheet, 404', async () => {
    assert.equal((await request(`${pages.v1?.url}/health`)).body, 'Product page is healthy');
    assert.match((await request(`${pages.v1?.url}/`)).body, /productpage\?u=test/);
    const css = await request(`${pages.v1?.url}/static/bookinfo.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers['content-type'] ?? '', /text\/css/);
    assert.equal((await request(`${pages.v1?.url}/static/missing.js`)).status, 404);
  });

  test('login sets the user cookie and shows the user; logout clears it', async () => {
    const login = await request(`${pages.v2?.url}/login`, {
      method: 'POST', body: 'username=jason&passwd=', headers: { 'content-type': 'application/x-www-form-urlencoded', referer: 'http://127.0.0.1:8080/productpage' },
    });
    assert.equal(login.status, 302);
    assert.equal(login.headers.location, '/productpage');
    assert.match(String(login.headers['set-cookie']), /^user=jason; Path=\//);
    const page = (await request(`${pages.v2?.url}/productpage`, { headers: { cookie: 'user=jason' } })).body;
    assert.ok(page.includes('jason ( <a href="logout">sign out</a> )'));
    const logout = await request(`${pages.v2?.url}/logout`);
    assert.equal(logout.status, 302);
    assert.match(String(logout.headers['set-cookie']), /^user=; .*Max-Age=0/);
    assert.equal((await request(`${pages.v2?.url}/login`, { method: 'POST', body: 'username=' })).status, 400);
    assert.equal((await request(`${pages.v2?.url}/login`, { method: 'POST', body: 'x'.repeat(20_000) })).status, 413);
  });

  test('each service logs one line per request', async () => {
    const sink = logSink();
    const page = await start(createProductpageServer({ detailsUrl: details.url, reviewsUrl: reviews.v1?.url, log: sink.log }));
    try {
      await request(`${page.url}/productpage`, { headers: { 'x-request-id': 'log-me' } });
      await request(`${page.url}/health`);
      assert.equal(sink.lines.length, 2, sink.lines.join('\n'));
      assert.match(sink.lines[0] ?? '', /productpage-v1 GET \/productpage 200 [\d.]+ms x-request-id=log-me$/);
      assert.match(sink.lines[1] ?? '', /productpage-v1 GET \/health 200 /);
    } finally {
      await page.close();
    }
  });
});

describe('header propagation', () => {
  const incoming: Record<string, string> = {
    'x-request-id': 'req-123',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'congo=t61rcWkgMzE',
    b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
    'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
    'x-b3-spanid': 'e457b5a2e4d86bd1',
    'x-b3-parentspanid': '05e3ac9a4f6e3b90',
    'x-b3-sampled': '1',
    'x-b3-flags': '0',
    'x-ot-span-context': 'ot',
    'x-datadog-trace-id': '1',
    'x-datadog-parent-id': '2',
    'x-datadog-sampling-priority': '1',
    'user-agent': 'bookinfo-test',
  };

  test('productpage passes the trace headers and end-user on to details and reviews', async () => {
    const downstream = await startFake((req, res) => json(req.url?.startsWith('/details') ? { id: 0, type: 'paperback' } : { id: '0', podname: 'fake', clustername: 'null', reviews: [] })(req, res));
    const page = await start(createProductpageServer({ detailsUrl: downstream.url, reviewsUrl: downstream.url, ...quiet }));
    try {
      await request(`${page.url}/productpage`, { headers: { ...incoming, 'end-user': 'alice', 'x-not-propagated': 'no' } });
      assert.deepEqual(downstream.requests.map((r) => r.url).sort(), ['/details/0', '/reviews/0']);
      for (const r of downstream.requests) {
        for (const [name, value] of Object.entries(incoming)) assert.equal(r.headers[name], value, `${r.url} ${name}`);
        assert.equal(r.headers['end-user'], 'alice');
        assert.equal(r.headers['x-not-propagated'], undefined);
      }
    } finally {
      await page.close();
      await downstream.close();
    }
  });

  test('a signed-in user (cookie) becomes end-user downstream, and the cookie travels too', async () => {
    const downstream = await startFake();
    const page = await start(createProductpageServer({ detailsUrl: downstream.url, reviewsUrl: downstream.url, ...quiet }));
    try {
      await request(`${page.url}/api/v1/products/0/reviews`, { headers: { cookie: 'theme=dark; user=jason', 'end-user': 'mallory', 'x-request-id': 'r1' } });
      const seen = downstream.requests[0];
      assert.equal(seen?.headers['end-user'], 'jason', 'the session user wins over an end-user header');
      assert.equal(seen?.headers.cookie, 'theme=dark; user=jason');
      assert.equal(seen?.headers['x-request-id'], 'r1');
    } finally {
      await page.close();
      await downstream.close();
    }
  });

  test('reviews v2 passes the trace headers and end-user on to ratings', async () => {
    const fakeRatings = await startFake(json({ id: 0, ratings: { Reviewer1: 1, Reviewer2: 2 } }));
    const v2 = await start(createReviewsServer({ version: 'v2', ratingsUrl: fakeRatings.url, ...quiet }));
    try {
      const body = JSON.parse((await request(`${v2.url}/reviews/0`, { headers: { ...incoming, 'end-user': 'jason' } })).body) as { reviews: Array<{ rating: unknown }> };
      assert.deepEqual(body.reviews.map((r) => r.rating), [{ stars: 1, color: 'black' }, { stars: 2, color: 'black' }]);
      const seen = fakeRatings.requests[0];
      assert.equal(seen?.url, '/ratings/0');
      for (const [name, value] of Object.entries(incoming)) assert.equal(seen?.headers[name], value, name);
      assert.equal(seen?.headers['end-user'], 'jason');
    } finally {
      await v2.close();
      await fakeRatings.close();
    }
  });

  test('the propagation list covers Istio\'s documented headers', () => {
    for (const name of ['x-request-id', 'traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'x-ot-span-context', 'x-datadog-trace-id', 'end-user', 'user-agent', 'cookie']) {
      assert.ok(PROPAGATED_HEADERS.includes(name), name);
    }
  });
});

test('productpage shows the reviews error when reviews answers 503, after one retry', async () => {
  const down = await startFake(json({ error: 'no healthy upstream' }, 503));
  const details = await start(createDetailsServer(quiet));
  const page = await start(createProductpageServer({ detailsUrl: details.url, reviewsUrl: down.url, ...quiet }));
  try {
    const html = (await request(`${page.url}/productpage`)).body;
    assert.ok(html.includes('Error fetching product reviews!'));
    assert.ok(html.includes(REVIEWS_UNAVAILABLE));
    assert.ok(html.includes('<dt>Publisher:</dt>PublisherA'), 'details still shown');
    assert.equal(down.requests.length, 2, 'the sample tries reviews twice');
    const api = await request(`${page.url}/api/v1/products/0/reviews`);
    assert.equal(api.status, 503);
    assert.deepEqual(JSON.parse(api.body), { error: REVIEWS_UNAVAILABLE });
  } finally {
    await Promise.all([page.close(), details.close(), down.close()]);
  }
});
