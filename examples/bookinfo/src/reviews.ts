// Bookinfo's reviews service, all three versions in one program: v1 without ratings, v2 black stars, v3 red stars (Istio's LibertyRestEndpoint.java).
import type http from 'node:http';
import { randomBytes } from 'node:crypto';
import { MeshCallError, MeshClient } from './mesh-client.js';
import { createServiceServer, isMainModule, runServiceProcess, sendJson, versionFromEnvironment, workloadName, type ServiceServerOptions } from './service-process.js';
import { forwardHeaders } from './trace-headers.js';

/** What each version does, as the sample's deployments set ENABLE_RATINGS and STAR_COLOR. */
export interface ReviewsFlavour {
  ratingsEnabled: boolean;
  starColor: 'black' | 'red';
}

export const REVIEWS_VERSIONS: Readonly<Record<string, ReviewsFlavour>> = {
  v1: { ratingsEnabled: false, starColor: 'black' },
  v2: { ratingsEnabled: true, starColor: 'black' },
  v3: { ratingsEnabled: true, starColor: 'red' },
};

/**
 * The ratings call's timeout. The sample gives black stars (v2) 10 s and red stars (v3) 2.5 s: v2's 10 s is
 * longer than productpage's 3 s reviews timeout, the bug the fault-injection walkthrough exposes.
 */
export function ratingsTimeoutMs(flavour: ReviewsFlavour): number {
  return flavour.starColor === 'black' ? 10_000 : 2_500;
}

export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

export interface ReviewRating {
  stars?: number;
  color?: string;
  error?: string;
}

export interface Review {
  reviewer: string;
  text: string;
  rating?: ReviewRating;
}

export interface ProductReviews {
  id: string;
  podname: string;
  clustername: string;
  reviews: Review[];
}

export interface ReviewsOptions extends ServiceServerOptions {
  /** v1, v2 or v3. */
  version: string;
  /** Base URL of ratings (default `http://ratings:9080`). */
  ratingsUrl?: string;
  /** Shown on the product page as "Reviews served by" (default `reviews-<version>-<random>`, like a pod name). */
  podName?: string;
  clusterName?: string;
  client?: MeshClient;
  /** Overrides the version's ratings timeout (tests). */
  ratingsTimeoutMs?: number;
}

const REVIEW_TEXTS: ReadonlyArray<readonly [string, string]> = [
  ['Reviewer1', 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!'],
  ['Reviewer2', 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.'],
];

/** The name the sample's pods would have: `reviews-v2-` and a random suffix. */
export function defaultPodName(version: string): string {
  return `reviews-${version}-${randomBytes(4).toString('hex').slice(0, 5)}`;
}

/** GET /reviews/<id> → two reviews, with ratings from the ratings service for v2/v3; GET /health. */
export function createReviewsServer(options: ReviewsOptions): http.Server {
  const flavour = REVIEWS_VERSIONS[options.version];
  if (flavour === undefined) throw new Error(`SERVICE_VERSION: reviews has versions ${Object.keys(REVIEWS_VERSIONS).join(', ')}, got ${JSON.stringify(options.version)}`);
  const workload = workloadName('reviews', options.version);
  const ratingsService = `${(options.ratingsUrl ?? 'http://ratings:9080').replace(/\/+$/, '')}/ratings`;
  const podname = options.podName ?? defaultPodName(options.version);
  const clustername = options.clusterName ?? 'null';
  const client = options.client ?? new MeshClient();
  const timeoutMs = options.ratingsTimeoutMs ?? ratingsTimeoutMs(flavour);
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));

  async function fetchRatings(productId: string, incoming: http.IncomingHttpHeaders): Promise<Record<string, unknown> | undefined> {
    const url = `${ratingsService}/${productId}`;
    try {
      const res = await client.get(url, { headers: { ...forwardHeaders(incoming), accept: 'application/json' }, timeoutMs });
      if (res.status !== 200) {
        log(`${new Date().toISOString()} ${workload} Error: unable to contact ${url} got status of ${res.status}`);
        return undefined;
      }
      const parsed: unknown = JSON.parse(res.body);
      return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
    } catch (error) {
      const reason = error instanceof MeshCallError || error instanceof SyntaxError ? error.message : String(error);
      log(`${new Date().toISOString()} ${workload} Error: unable to contact ${url} got exception ${reason}`);
      return undefined;
    }
  }

  return createServiceServer(workload, async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed` });
    if (path === '/health') return sendJson(res, 200, { status: 'Reviews is healthy' });
    const match = /^\/reviews\/(-?\d+)$/.exec(path);
    if (!match) return sendJson(res, 404, { error: `no route for ${path}` });
    const productId = String(Number.parseInt(match[1] ?? '', 10));

    const stars = new Map<string, number>();
    if (flavour.ratingsEnabled) {
      const response = await fetchRatings(productId, req.headers);
      const ratings = response?.ratings;
      if (typeof ratings === 'object' && ratings !== null) {
        for (const [reviewer] of REVIEW_TEXTS) {
          const value = (ratings as Record<string, unknown>)[reviewer];
          if (typeof value === 'number' && Number.isInteger(value)) stars.set(reviewer, value);
        }
      }
    }
    const body: ProductReviews = {
      id: productId,
      podname,
      clustername,
      reviews: REVIEW_TEXTS.map(([reviewer, text]) => {
        const review: Review = { reviewer, text };
        if (flavour.ratingsEnabled) {
          const n = stars.get(reviewer);
          review.rating = n !== undefined ? { stars: n, color: flavour.starColor } : { error: RATINGS_UNAVAILABLE };
        }
        return review;
      }),
    };
    sendJson(res, 200, body);
  }, options);
}

if (isMainModule(import.meta.url)) {
  const version = versionFromEnvironment(process.env);
  const client = new MeshClient();
  let server: http.Server;
  try {
    server = createReviewsServer({
      version,
      client,
      ...(process.env.RATINGS_URL ? { ratingsUrl: process.env.RATINGS_URL } : {}),
      ...(process.env.POD_NAME ? { podName: process.env.POD_NAME } : {}),
      ...(process.env.CLUSTER_NAME ? { clusterName: process.env.CLUSTER_NAME } : {}),
    });
  } catch (error) {
    process.stderr.write(`reviews: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  void runServiceProcess(workloadName('reviews', version), server, 9080, () => client.close());
}
