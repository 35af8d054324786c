// An application's own Prometheus counter (requests answered by route and status code) on /metrics, so the mesh's
// metrics merging has something of the app's to merge.
import type http from 'node:http';

/** A request counter with bounded labels: the route is one of the app's known prefixes, else `other`. */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly metric: string,
    private readonly routes: readonly string[],
  ) {}

  /** Counts `req` once its response is finished. */
  observe(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = this.routes.find((r) => path === r || (r.endsWith('/') && path.startsWith(r))) ?? 'other';
    res.once('finish', () => {
      const key = `route="${route}",code="${res.statusCode}"`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    });
  }

  /** Prometheus text format 0.0.4. */
  exposition(): string {
    const lines = [`# HELP ${this.metric} Requests the application answered, by route and status code.`, `# TYPE ${this.metric} counter`];
    for (const [labels, n] of [...this.counts].sort()) lines.push(`${this.metric}{${labels}} ${n}`);
    return `${lines.join('\n')}\n`;
  }
}
