// Builders for router tests: a RouteConfiguration from a few routes, and request headers.
import type { HttpHeaders } from '../../../src/proxy/http/headers.js';
import type { envoy } from '../../../src/xds/generated/types.js';

export type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
export type Route = envoy.config.route.v3.Route;

export function configWith(routes: Route[], extra: Partial<envoy.config.route.v3.VirtualHost> = {}, top: Partial<RouteConfiguration> = {}): RouteConfiguration {
  return { name: 'test', virtual_hosts: [{ name: 'vh', domains: ['*'], routes, ...extra }], ...top };
}

export function request(path: string, headers: Record<string, string | string[]> = {}, authority = 'example.com'): HttpHeaders {
  return { ':method': 'GET', ':scheme': 'http', ':authority': authority, ':path': path, ...headers };
}

export const ctx = {
  downstreamRemoteAddress: '10.0.0.1:5555',
  downstreamLocalAddress: '10.0.0.2:8080',
  upstreamHost: '10.0.0.3:9080',
  protocol: 'HTTP/1.1',
  hostname: 'pod-1',
  startTimeMs: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
};
