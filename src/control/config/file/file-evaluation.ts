// Turns one config file's text into what it contributes: its valid resources, the last valid versions it keeps serving, and its problems.
import { parseResources, resourceKey, resourceRef, validateResource } from '../../../api/index.js';
import { sealResource, type StoredResource } from '../resource-table.js';
import type { ConfigProblem } from '../store.js';

/** What one file contributes to the store. */
export interface FileContribution {
  /** The text it was computed from; an unchanged file is not parsed again. */
  text: string | undefined;
  /** Resources this file defines validly, by `Kind/namespace/name`, in document order. */
  defined: Map<string, StoredResource>;
  /**
   * Keys of resources this file defines invalidly (or may define, in a document that does not parse): whatever version
   * of them served before keeps serving, unless another file defines them validly.
   */
  kept: Set<string>;
  problems: ConfigProblem[];
}

export interface EvaluateOptions {
  source: string;
  defaultNamespace: string;
  /** What the store served before this change, by key: the last valid versions. */
  served: ReadonlyMap<string, StoredResource>;
  /** This file's previous contribution, if it had one. */
  previous: FileContribution | undefined;
}

export function evaluateFile(text: string, options: EvaluateOptions): FileContribution {
  const { source, served, previous } = options;
  const { resources, problems: loadProblems } = parseResources(text, { source, defaultNamespace: options.defaultNamespace });
  const defined = new Map<string, StoredResource>();
  const kept = new Set<string>();
  const problems: ConfigProblem[] = [];
  const invalid = new Set<string>();
  const documentOf = new Map<string, number | undefined>();

  for (const p of loadProblems) problems.push({ ...p });

  for (const resource of resources) {
    const key = resourceKey(resource);
    const ref = resourceRef(resource);
    const document = resource.origin?.document;
    if (documentOf.has(key)) {
      const first = documentOf.get(key);
      problems.push({
        code: 'TRELLIS_CONFIG_CONFLICT', source, resource: ref, ...(document !== undefined ? { document } : {}),
        message: `defined again in document ${document ?? '?'} of the same file; the first definition (document ${first ?? '?'}) wins`,
      });
      continue;
    }
    documentOf.set(key, document);
    const found = validateResource(resource);
    if (found.length === 0) {
      defined.set(key, sealResource(resource, false));
      continue;
    }
    invalid.add(key);
    const last = served.get(key);
    kept.add(key);
    for (const p of found) {
      problems.push({
        code: 'TRELLIS_CONFIG_INVALID', source, resource: ref, ...(document !== undefined ? { document } : {}),
        ...(p.path ? { path: p.path } : {}), message: p.message, ...(last ? { keptLastValid: true } : {}),
      });
    }
  }

  // A document that does not parse may hold any of the resources this file used to define: keep those serving
  // until the file reads cleanly again, rather than deleting them because of a typo.
  if (loadProblems.length > 0 && previous) {
    let count = 0;
    for (const key of [...previous.defined.keys(), ...previous.kept]) {
      if (defined.has(key) || invalid.has(key) || kept.has(key) || !served.has(key)) continue;
      kept.add(key);
      count++;
    }
    if (count > 0) for (const p of problems) if (p.code !== 'TRELLIS_CONFIG_INVALID' && p.code !== 'TRELLIS_CONFIG_CONFLICT') p.keptLastValid = true;
  }
  return { text, defined, kept, problems };
}

/** A file that exists but cannot be read: everything it served keeps serving. */
export function unreadableFile(source: string, reason: string, previous: FileContribution | undefined, served: ReadonlyMap<string, StoredResource>): FileContribution {
  const kept = new Set<string>();
  for (const key of [...(previous?.defined.keys() ?? []), ...(previous?.kept ?? [])]) if (served.has(key)) kept.add(key);
  return {
    text: undefined,
    defined: new Map(),
    kept,
    problems: [{ code: 'TRELLIS_CONFIG_PARSE', source, message: `cannot read file: ${reason}`, ...(kept.size > 0 ? { keptLastValid: true } : {}) }],
  };
}
