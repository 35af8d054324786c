// Test helpers: build one resource from a YAML spec and validate it.
import assert from 'node:assert/strict';
import { parseResources } from '../../src/api/load.js';
import type { Problem } from '../../src/api/problem.js';
import { KIND_GROUPS, type IstioResource, type Kind } from '../../src/api/resource.js';
import { validateResource } from '../../src/api/validate.js';

const VERSION: Record<string, string> = { 'networking.istio.io': 'v1', 'security.istio.io': 'v1', 'telemetry.istio.io': 'v1' };

/** Loads `kind` named `name` with the given YAML spec (indented as under `spec:`), asserting it loads. */
export function resource(kind: Kind, spec: string, name = 'test'): IstioResource {
  const group = KIND_GROUPS[kind];
  const text = `apiVersion: ${group}/${VERSION[group]}\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n${indent(spec)}`;
  const { resources, problems } = parseResources(text, { source: 'test.yaml' });
  assert.deepEqual(problems, [], 'the test resource must load');
  assert.equal(resources.length, 1);
  return resources[0]!;
}

export function problems(kind: Kind, spec: string, name?: string): Problem[] {
  return validateResource(resource(kind, spec, name));
}

function indent(spec: string): string {
  const lines = spec.replace(/^\n+/, '').replace(/\s+$/, '').split('\n');
  const margin = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => `  ${l.slice(margin)}`).join('\n') + '\n';
}
