// The mesh two chaos files share the shape of (each starts its own: the runner's 120 s limit holds per file): a client
// and a `backend` service with subsets v1 and v2, all traffic to v1 at start, warmed up before scenarios measure.
import { backend, client, formatReport, startChaosMesh, summarize, type ChaosMesh } from './harness.js';

export const DESTINATION_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: backend, namespace: default }
spec:
  host: backend
  subsets:
  - name: v1
    labels: { version: v1 }
  - name: v2
    labels: { version: v2 }
`;

export function virtualService(v1: number, v2: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: backend, namespace: default }
spec:
  hosts: [backend]
  http:
  - route:
    - destination: { host: backend, subset: v1 }
      weight: ${v1}
    - destination: { host: backend, subset: v2 }
      weight: ${v2}
`;
}

/** Starts the mesh and opens its connections (client → sidecar, sidecar → backend over mTLS) with a short load. */
export async function startSubsetsMesh(prefix: string): Promise<ChaosMesh> {
  const mesh = await startChaosMesh(prefix, {
    workloads: [client(), backend('backend-v1', 'backend', { version: 'v1' }), backend('backend-v2', 'backend', { version: 'v2' })],
    config: { 'backend-dr.yaml': DESTINATION_RULE, 'backend-vs.yaml': virtualService(100, 0) },
  });
  try {
    const warmUp = summarize(await mesh.startLoad({ from: 'client', authority: 'backend:8080', durationMs: 2_000, rate: 50 }).done);
    console.log(`chaos: ${prefix} warm-up: ${formatReport(warmUp)}`);
  } catch (err) {
    await mesh.stop();
    throw err;
  }
  return mesh;
}
