// Bookinfo's details service: the book's type, pages, publisher, language and ISBNs (Istio's details.rb, without the external book service).
import type http from 'node:http';
import { createServiceServer, isMainModule, runServiceProcess, sendJson, versionFromEnvironment, workloadName, type ServiceServerOptions } from './service-process.js';

export interface BookDetails {
  id: number;
  author: string;
  year: number;
  type: string;
  pages: number;
  publisher: string;
  language: string;
  'ISBN-10': string;
  'ISBN-13': string;
}

/** The sample's single book (every id gets the same details, as in details.rb). */
export function bookDetails(id: number): BookDetails {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

export interface DetailsOptions extends ServiceServerOptions {
  version?: string;
}

/** GET /details/<id> → the book's details; GET /health. */
export function createDetailsServer(options: DetailsOptions = {}): http.Server {
  return createServiceServer(workloadName('details', options.version ?? 'v1'), (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed` });
    if (path === '/health') return sendJson(res, 200, { status: 'Details is healthy' });
    if (path === '/details' || path.startsWith('/details/')) {
      const last = path.split('/').filter((p) => p !== '').pop() ?? '';
      if (!/^-?\d+$/.test(last)) return sendJson(res, 400, { error: 'please provide numeric product id' });
      return sendJson(res, 200, bookDetails(Number(last)));
    }
    sendJson(res, 404, { error: `no route for ${path}` });
  }, options);
}

if (isMainModule(import.meta.url)) {
  const version = versionFromEnvironment(process.env);
  void runServiceProcess(workloadName('details', version), createDetailsServer({ version }), 9080);
}
