// Reads Istio resources from multi-document YAML (or JSON): every document that can be read loads, every one that cannot is a problem.
import { readFile } from 'node:fs/promises';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { ErrorCode } from '../common/errors.js';
import { keyPath } from './problem.js';
import { KIND_GROUPS, KIND_VERSIONS, isKind, type IstioResource, type Kind, type ObjectMeta } from './resource.js';
import { describeValue, isObject, isSet } from './validation/checker.js';

export interface LoadOptions {
  /** Names the file in origins and problems (default `<input>`). */
  source?: string;
  /** Namespace for resources that do not name one (default `default`). */
  defaultNamespace?: string;
}

/** Why one document of a file did not load. */
export interface LoadProblem {
  code: ErrorCode;
  source: string;
  /** Index of the YAML document in the file, from 0 (as in ResourceOrigin). */
  document?: number;
  /** 1-based position of the problem (YAML errors) or of the document's start. */
  line?: number;
  column?: number;
  /** `Kind namespace/name`, as far as it is known. */
  resource?: string;
  path?: string;
  message: string;
}

export interface LoadResult {
  resources: IstioResource[];
  problems: LoadProblem[];
}

// Guards against "billion laughs" documents: aliases may expand, but not explode.
const MAX_ALIAS_COUNT = 1000;

/** Parses every document of `text` into resources, collecting a problem for each document that cannot be one. */
export function parseResources(text: string, options: LoadOptions = {}): LoadResult {
  const source = options.source ?? '<input>';
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const lineCounter = new LineCounter();
  const resources: IstioResource[] = [];
  const problems: LoadProblem[] = [];
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [];

  list.forEach((doc, document) => {
    const start = lineCounter.linePos(doc.contents?.range[0] ?? doc.range[0]);
    const at = { source, document, line: start.line, column: start.col };
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const pos = err.linePos?.[0] ?? lineCounter.linePos(err.pos[0]);
        problems.push({ code: 'TRELLIS_CONFIG_PARSE', source, document, line: pos.line, column: pos.col, message: `invalid YAML: ${yamlMessage(err.message)}` });
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      problems.push({ ...at, code: 'TRELLIS_CONFIG_PARSE', message: `invalid YAML: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    if (value === null || value === undefined) return; // empty document, e.g. after a trailing `---`
    const result = toResource(value, defaultNamespace);
    if ('problem' in result) problems.push({ ...at, ...result.problem });
    else resources.push({ ...result.resource, origin: { source, document } });
  });
  return { resources, problems };
}

/** Reads and parses one file; a file that cannot be read (deleted meanwhile, a directory, unreadable) is one problem. */
export async function loadFile(file: string, options: Omit<LoadOptions, 'source'> & { source?: string } = {}): Promise<LoadResult> {
  const source = options.source ?? file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found (deleted while being read?)' : err instanceof Error ? err.message : String(err);
    return { resources: [], problems: [{ code: 'TRELLIS_CONFIG_PARSE', source, message: `cannot read file: ${reason}` }] };
  }
  return parseResources(text, { ...options, source });
}

/** `file:3:7: document 1: invalid YAML: …` or `file: document 2: VirtualService default/x: metadata.name: name is required`. */
export function formatLoadProblem(p: LoadProblem): string {
  const parts = [p.line !== undefined ? `${p.source}:${p.line}:${p.column ?? 1}` : p.source];
  if (p.document !== undefined) parts.push(`document ${p.document}`);
  if (p.resource) parts.push(p.resource);
  if (p.path) parts.push(p.path);
  parts.push(p.message);
  return parts.join(': ');
}

function yamlMessage(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

type Conversion = { resource: IstioResource } | { problem: Omit<LoadProblem, 'source'> };

const KNOWN_KINDS = Object.keys(KIND_GROUPS).join(', ');

function toResource(value: unknown, defaultNamespace: string): Conversion {
  const invalid = (path: string, message: string, code: ErrorCode = 'TRELLIS_CONFIG_INVALID', resource?: string): Conversion => ({
    problem: { code, path, message, ...(resource ? { resource } : {}) },
  });
  if (!isObject(value)) return invalid('', `expected a resource (apiVersion, kind, metadata, spec), got ${describeValue(value)}`);
  const { apiVersion, kind, metadata } = value;
  if (!isSet(kind) || kind === '') return invalid('kind', 'kind is required');
  if (typeof kind !== 'string') return invalid('kind', `expected a string, got ${describeValue(kind)}`);
  if (!isSet(apiVersion) || apiVersion === '') return invalid('apiVersion', 'apiVersion is required', 'TRELLIS_CONFIG_INVALID', kind);
  if (typeof apiVersion !== 'string') return invalid('apiVersion', `expected a string, got ${describeValue(apiVersion)}`, 'TRELLIS_CONFIG_INVALID', kind);
  if (!isKind(kind)) {
    return invalid('kind', `unsupported kind ${JSON.stringify(kind)} (apiVersion ${apiVersion}); Trellis reads ${KNOWN_KINDS}`, 'TRELLIS_CONFIG_UNSUPPORTED');
  }
  const served = KIND_VERSIONS[kind].map((v) => `${KIND_GROUPS[kind]}/${v}`);
  if (!served.includes(apiVersion)) {
    return invalid('apiVersion', `unsupported apiVersion ${JSON.stringify(apiVersion)} for ${kind}, expected one of ${served.join(', ')}`, 'TRELLIS_CONFIG_UNSUPPORTED', kind);
  }
  if (!isSet(metadata)) return invalid('metadata.name', 'name is required', 'TRELLIS_CONFIG_INVALID', kind);
  if (!isObject(metadata)) return invalid('metadata', `expected an object, got ${describeValue(metadata)}`, 'TRELLIS_CONFIG_INVALID', kind);
  const { name, namespace, labels, annotations, resourceVersion } = metadata;
  if (!isSet(name) || name === '') return invalid('metadata.name', 'name is required', 'TRELLIS_CONFIG_INVALID', kind);
  if (typeof name !== 'string') return invalid('metadata.name', `expected a string, got ${describeValue(name)}`, 'TRELLIS_CONFIG_INVALID', kind);
  if (isSet(namespace) && typeof namespace !== 'string') {
    return invalid('metadata.namespace', `expected a string, got ${describeValue(namespace)}`, 'TRELLIS_CONFIG_INVALID', `${kind} ${name}`);
  }
  const ns = typeof namespace === 'string' && namespace !== '' ? namespace : defaultNamespace;
  const ref = `${kind} ${ns}/${name}`;
  const meta: ObjectMeta = { name, namespace: ns };
  for (const [field, map] of [['labels', labels], ['annotations', annotations]] as const) {
    if (!isSet(map)) continue;
    const problem = stringMapProblem(map);
    if (problem) return invalid(problem.key ? keyPath(`metadata.${field}`, problem.key) : `metadata.${field}`, problem.message, 'TRELLIS_CONFIG_INVALID', ref);
    meta[field] = map as Record<string, string>;
  }
  if (typeof resourceVersion === 'string') meta.resourceVersion = resourceVersion;
  const spec = isSet(value.spec) ? value.spec : {};
  return { resource: { apiVersion, kind: kind as Kind, metadata: meta, spec } };
}

function stringMapProblem(map: unknown): { key?: string; message: string } | undefined {
  if (!isObject(map)) return { message: `expected a map of strings, got ${describeValue(map)}` };
  for (const [key, v] of Object.entries(map)) {
    if (typeof v !== 'string') return { key, message: `expected a string, got ${describeValue(v)} (quote it)` };
  }
  return undefined;
}
