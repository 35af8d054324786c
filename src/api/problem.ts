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

/** `path.key`, or `path["odd key"]` when the key is not a plain identifier (header names, label keys). */
export function fieldPath(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** `path[index]` */
export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}
