// Route matching: RouteTable.match over 200 virtual hosts × 10 routes (ns per match), against a plain Map lookup of the same keys in the same run.
import { compileRouteConfiguration } from '../src/proxy/router/compile-route-table.js';
import type { HttpHeaders } from '../src/proxy/http/headers.js';
import type { envoy } from '../src/xds/generated/types.js';
import { median, printFigure, printRatio } from './report.js';

const VHOSTS = Number(process.env['VHOSTS'] ?? 200);
const ROUTES = Number(process.env['ROUTES'] ?? 10);
const ROUNDS = Number(process.env['ROUNDS'] ?? 7);
const ITERATIONS = Number(process.env['ITERATIONS'] ?? 1_000_000);

type Route = envoy.config.route.v3.Route;

/** Istio-shaped routes: header match, exact paths, prefixes, a regex, and the catch-all last. */
function routesFor(v: number): Route[] {
  const routes: Route[] = [
    { match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, route: { cluster: `svc${v}-v2` } },
  ];
  for (let r = 1; r < ROUTES - 2; r++) routes.push({ match: { path: `/api/v${r}/items` }, route: { cluster: `svc${v}-r${r}` } });
  routes.push({ match: { safe_regex: { regex: '/reviews/[0-9]+' } }, route: { cluster: `svc${v}-regex` } });
  routes.push({ match: { prefix: '/' }, route: { cluster: `svc${v}-v1` } });
  return routes;
}

const config: envoy.config.route.v3.RouteConfiguration = {
  name: 'bench',
  virtual_hosts: Array.from({ length: VHOSTS }, (_, v) => ({
    name: `svc${v}.default.svc.cluster.local:9080`,
    domains: [`svc${v}.default.svc.cluster.local`, `svc${v}.default.svc.cluster.local:9080`, `svc${v}`, `svc${v}:9080`],
    routes: routesFor(v),
  })).concat([{ name: 'allow_any', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }] }]),
};

const compileStart = process.hrtime.bigint();
const table = compileRouteConfiguration(config);
const compileMs = Number(process.hrtime.bigint() - compileStart) / 1e6;

// A request mix: most hit the catch-all route (the Istio default), some an exact path, some the regex, some the header.
const requests: HttpHeaders[] = [];
for (let i = 0; i < 1024; i++) {
  const v = (i * 7919) % VHOSTS;
  const kind = i % 8;
  const path = kind < 4 ? `/productpage?u=${i}` : kind < 6 ? `/api/v${1 + (i % (ROUTES - 3))}/items` : kind === 6 ? `/reviews/${i}` : '/';
  const headers: HttpHeaders = { ':method': 'GET', ':scheme': 'http', ':authority': `svc${v}:9080`, ':path': path, 'user-agent': 'bench' };
  if (kind === 7) headers['end-user'] = 'jason';
  requests.push(headers);
}

// Baseline: the least a router could do — one Map lookup of the authority.
const byAuthority = new Map<string, string>();
for (let v = 0; v < VHOSTS; v++) byAuthority.set(`svc${v}:9080`, `svc${v}-v1`);

let sink = 0;
function runTable(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const entry = table.match(requests[i & 1023]!, 0.5);
    if (entry !== undefined) sink += entry.name.length;
  }
  return Number(process.hrtime.bigint() - start) / ITERATIONS;
}
function runMap(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const cluster = byAuthority.get(requests[i & 1023]![':authority'] as string);
    if (cluster !== undefined) sink += cluster.length;
  }
  return Number(process.hrtime.bigint() - start) / ITERATIONS;
}

// Sanity: every request finds a route.
for (const r of requests) if (!table.match(r, 0.5)) throw new Error(`no route for ${String(r[':authority'])}${String(r[':path'])}`);

runTable();
runMap();
const tableNs: number[] = [];
const mapNs: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  globalThis.gc?.();
  tableNs.push(runTable());
  globalThis.gc?.();
  mapNs.push(runMap());
}
printFigure(`compile ${VHOSTS} vhosts x ${ROUTES} routes`, compileMs, 'ms');
printFigure('route table match', median(tableNs), 'ns/match');
printFigure('baseline Map.get(authority)', median(mapNs), 'ns/lookup');
printRatio('route table / baseline', median(tableNs) / median(mapNs));
if (sink === 42) console.log('');
