// A validation problem (field path + what was expected) and the one way Trellis prints it.
import { resourceRef, type IstioResource } from './resource.js';

/** One thing wrong with a resource: where (`spec.http[0].route[1].weight`) and what was expected. */
export interface Problem {
  path: string;
  message: string;
}

/** `file: VirtualService default/reviews: spec.http[0].route: weights must sum to 100 (got 90)` */
export function formatProblem(resource: Pick<IstioResource, 'kind' | 'metadata' | 'origin'>, problem: Problem): string {
  const parts: string[] = [];
  if (resource.origin?.source) parts.push(resource.origin.source);
  parts.push(resourceRef(resource));
  if (problem.path) parts.push(problem.path);
  parts.push(problem.message);
  return parts.join(': ');
}

/** `path.field` for a field (or dotted field path) named in code, e.g. `fieldPath(p, 'port.number')`. */
export function fieldPath(path: string, field: string): string {
  return path ? `${path}.${field}` : field;
}

/** `path.key` for a map key the user wrote, or `path["odd.key"]` when it is not a plain identifier (headers, labels). */
export function keyPath(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** `path[index]` */
export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}
