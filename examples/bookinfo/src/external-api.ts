// A stand-in for an API outside the mesh (host api.external.test in walkthrough/external-api.yaml): echoes what it received, for the egress walkthrough.
import type http from 'node:http';
import { createServiceServer, isMainModule, runServiceProcess, sendJson, type ServiceServerOptions } from './service-process.js';

/** Every GET answers 200 with `{service, method, path, host, headers}`; GET /health answers `{status}`. */
export function createExternalApiServer(options: ServiceServerOptions = {}): http.Server {
  return createServiceServer('external-api', (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/health') return sendJson(res, 200, { status: 'External API is healthy' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed` });
    sendJson(res, 200, { service: 'api.external.test', method: req.method, path: req.url ?? '/', host: req.headers.host ?? '', headers: req.headers });
  }, options);
}

/** The loopback port walkthrough/external-api.yaml sends api.external.test to. */
export const EXTERNAL_API_DEFAULT_PORT = 19480;

if (isMainModule(import.meta.url)) {
  void runServiceProcess('external-api', createExternalApiServer(), EXTERNAL_API_DEFAULT_PORT);
}
