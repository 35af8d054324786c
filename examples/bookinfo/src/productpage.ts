// Bookinfo's productpage: the HTML product page and the /api/v1/products API over details and reviews, with the sample's timeouts, retry and login cookie (Istio's productpage.py).
import type http from 'node:http';
import type { BookDetails } from './details.js';
import { MeshClient } from './mesh-client.js';
import { BOOKINFO_CSS, renderIndexPage, renderProductPage, type Product } from './productpage-view.js';
import type { ProductReviews } from './reviews.js';
import { createServiceServer, isMainModule, readBody, runServiceProcess, sendJson, sendText, versionFromEnvironment, workloadName, type ServiceServerOptions } from './service-process.js';
import { forwardHeaders } from './trace-headers.js';
import { RequestCounter } from './request-counter.js';

export const DETAILS_UNAVAILABLE = 'Sorry, product details are currently unavailable for this book.';
export const REVIEWS_UNAVAILABLE = 'Sorry, product reviews are currently unavailable for this book.';
export const RATINGS_UNAVAILABLE = 'Sorry, product ratings are currently unavailable for this book.';

/** The sample's `requests.get(…, timeout=3.0)` on every call. */
export const CALL_TIMEOUT_MS = 3_000;
/** The sample calls reviews twice before giving up (its comment: a bug kept for the fault-injection task). */
export const REVIEWS_ATTEMPTS = 2;

export const PRODUCTS: readonly Product[] = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml: '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
  },
];

export interface ProductpageOptions extends ServiceServerOptions {
  version?: string;
  /** Base URLs of the services called (defaults: their mesh names, `http://details:9080`…). */
  detailsUrl?: string;
  reviewsUrl?: string;
  ratingsUrl?: string;
  client?: MeshClient;
  /** Overrides the 3 s call timeout (tests). */
  callTimeoutMs?: number;
}

interface CallResult<T> {
  status: number;
  body: T | { error: string };
}

const USER_COOKIE = 'user';
const MAX_FORM_BYTES = 16 * 1024;
const MAX_USER_LENGTH = 128;

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

/** Where login and logout send the browser back to: the Referer's path (same site only), else the product page. */
function backTo(req: http.IncomingMessage): string {
  const referer = req.headers.referer;
  if (typeof referer === 'string' && referer !== '') {
    try {
      const url = new URL(referer, 'http://placeholder');
      return `${url.pathname}${url.search}`;
    } catch {
      // fall through
    }
  }
  return '/productpage';
}

export function createProductpageServer(options: ProductpageOptions = {}): http.Server {
  const base = (url: string | undefined, fallback: string): string => (url ?? fallback).replace(/\/+$/, '');
  const services = {
    details: `${base(options.detailsUrl, 'http://details:9080')}/details`,
    reviews: `${base(options.reviewsUrl, 'http://reviews:9080')}/reviews`,
    ratings: `${base(options.ratingsUrl, 'http://ratings:9080')}/ratings`,
  };
  const client = options.client ?? new MeshClient();
  const timeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS;

  /** The propagated headers plus `end-user` for a logged-in user, as the sample's getForwardHeaders. */
  function outboundHeaders(req: http.IncomingMessage): Record<string, string> {
    const headers = forwardHeaders(req.headers);
    const user = cookieValue(req.headers.cookie, USER_COOKIE);
    if (user !== undefined && user !== '') headers['end-user'] = user;
    return headers;
  }

  async function call<T>(url: string, headers: Record<string, string>, attempts: number, unavailable: string): Promise<CallResult<T>> {
    let status = 500;
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        const res = await client.get(url, { headers, timeoutMs });
        if (res.status === 200) return { status: 200, body: JSON.parse(res.body) as T };
        status = res.status || 500;
      } catch {
        status = 500; // timeout, connection failure or a body that is not JSON
      }
    }
    return { status, body: { error: unavailable } };
  }

  const getDetails = (id: string, headers: Record<string, string>) => call<BookDetails>(`${services.details}/${id}`, headers, 1, DETAILS_UNAVAILABLE);
  const getReviews = (id: string, headers: Record<string, string>) => call<ProductReviews>(`${services.reviews}/${id}`, headers, REVIEWS_ATTEMPTS, REVIEWS_UNAVAILABLE);
  const getRatings = (id: string, headers: Record<string, string>) => call<unknown>(`${services.ratings}/${id}`, headers, 1, RATINGS_UNAVAILABLE);

  // productpage's own metric, scraped by its sidecar's agent (mesh.yaml's prometheus.io annotations) and merged there.
  const requests = new RequestCounter('productpage_requests_total', ['/productpage', '/login', '/logout', '/api/v1/products', '/api/v1/products/', '/static/', '/health']);
  return createServiceServer(workloadName('productpage', options.version ?? 'v1'), async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://productpage');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/metrics' && method === 'GET') return sendText(res, 200, requests.exposition(), 'text/plain; version=0.0.4; charset=utf-8');
    requests.observe(req, res);

    if (method === 'POST' && path === '/login') {
      const form = await readBody(req, MAX_FORM_BYTES);
      if (form === undefined) return sendText(res, 413, `login form larger than ${MAX_FORM_BYTES} bytes\n`);
      const user = (new URLSearchParams(form).get('username') ?? url.searchParams.get('username') ?? '').trim();
      if (user === '' || user.length > MAX_USER_LENGTH) return sendText(res, 400, `username is required (at most ${MAX_USER_LENGTH} characters)\n`);
      res.writeHead(302, { location: backTo(req), 'set-cookie': `${USER_COOKIE}=${encodeURIComponent(user)}; Path=/; HttpOnly; SameSite=Lax`, 'content-length': 0 });
      return void res.end();
    }
    if (method !== 'GET' && method !== 'HEAD') return sendText(res, 405, `method ${method} not allowed on ${path}\n`);

    if (path === '/' || path === '/index.html') {
      return sendText(res, 200, renderIndexPage({ productpage: 'this page', details: services.details, reviews: services.reviews, ratings: services.ratings }), 'text/html; charset=utf-8');
    }
    if (path === '/health') return sendText(res, 200, 'Product page is healthy');
    if (path === '/logout') {
      res.writeHead(302, { location: backTo(req), 'set-cookie': `${USER_COOKIE}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`, 'content-length': 0 });
      return void res.end();
    }
    if (path === '/productpage') {
      const productId = 0;
      const headers = outboundHeaders(req);
      const [details, reviews] = await Promise.all([getDetails(String(productId), headers), getReviews(String(productId), headers)]);
      const html = renderProductPage({
        product: PRODUCTS[productId] as Product,
        user: cookieValue(req.headers.cookie, USER_COOKIE) ?? '',
        detailsStatus: details.status,
        details: details.body,
        reviewsStatus: reviews.status,
        reviews: reviews.body,
      });
      return sendText(res, 200, html, 'text/html; charset=utf-8');
    }
    if (path === '/api/v1/products') return sendJson(res, 200, PRODUCTS);
    const api = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
    if (api) {
      let id: string;
      try {
        id = encodeURIComponent(decodeURIComponent(api[1] ?? ''));
      } catch {
        return sendJson(res, 400, { error: `malformed product id in ${path}` });
      }
      const headers = outboundHeaders(req);
      const result = api[2] === 'reviews' ? await getReviews(id, headers) : api[2] === 'ratings' ? await getRatings(id, headers) : await getDetails(id, headers);
      return sendJson(res, result.status, result.body);
    }
    if (path === '/static/bookinfo.css' || path === '/static/bootstrap/css/bootstrap.min.css') return sendText(res, 200, BOOKINFO_CSS, 'text/css; charset=utf-8');
    sendText(res, 404, `not found: ${path}\n`);
  }, options);
}

if (isMainModule(import.meta.url)) {
  const version = versionFromEnvironment(process.env);
  const client = new MeshClient();
  const server = createProductpageServer({
    version,
    client,
    ...(process.env.DETAILS_URL ? { detailsUrl: process.env.DETAILS_URL } : {}),
    ...(process.env.REVIEWS_URL ? { reviewsUrl: process.env.REVIEWS_URL } : {}),
    ...(process.env.RATINGS_URL ? { ratingsUrl: process.env.RATINGS_URL } : {}),
  });
  void runServiceProcess(workloadName('productpage', version), server, 9080, () => client.close());
}
