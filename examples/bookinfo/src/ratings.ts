// Bookinfo's ratings service: two reviewers' stars per product, kept in memory (Istio's ratings.js without a database).
import type http from 'node:http';
import { createServiceServer, isMainModule, readBody, runServiceProcess, sendJson, versionFromEnvironment, workloadName, type ServiceServerOptions } from './service-process.js';

export interface ProductRatings {
  id: number;
  ratings: Record<string, number>;
}

export interface RatingsOptions extends ServiceServerOptions {
  version?: string;
}

const MAX_BODY = 16 * 1024;

/**
 * GET /ratings/<id> → `{id, ratings: {Reviewer1: 5, Reviewer2: 4}}` (or what a POST stored for that id);
 * POST /ratings/<id> with a JSON object stores it; GET /health.
 */
export function createRatingsServer(options: RatingsOptions = {}): http.Server {
  const userAdded = new Map<number, ProductRatings>();
  const ratingsOf = (id: number): ProductRatings => userAdded.get(id) ?? { id, ratings: { Reviewer1: 5, Reviewer2: 4 } };

  return createServiceServer(workloadName('ratings', options.version ?? 'v1'), async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'Ratings is healthy' });
    if (!/^\/ratings\/[0-9]*/.test(path)) return sendJson(res, 404, { error: `no route for ${req.method ?? ''} ${path}` });
    const id = Number.parseInt(path.split('/').pop() ?? '', 10);
    if (req.method === 'GET') {
      if (Number.isNaN(id)) return sendJson(res, 400, { error: 'please provide numeric product ID' });
      return sendJson(res, 200, ratingsOf(id));
    }
    if (req.method === 'POST') {
      const body = await readBody(req, MAX_BODY);
      if (body === undefined) return sendJson(res, 413, { error: `ratings JSON larger than ${MAX_BODY} bytes` });
      if (Number.isNaN(id)) return sendJson(res, 400, { error: 'please provide numeric product ID' });
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'number')) {
        return sendJson(res, 400, { error: 'please provide valid ratings JSON' });
      }
      userAdded.set(id, { id, ratings: parsed as Record<string, number> });
      return sendJson(res, 200, ratingsOf(id));
    }
    sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed` });
  }, options);
}

if (isMainModule(import.meta.url)) {
  const version = versionFromEnvironment(process.env);
  void runServiceProcess(workloadName('ratings', version), createRatingsServer({ version }), 9080);
}
