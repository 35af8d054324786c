// Helpers for control-plane tests: temp config directories, resources as YAML, and bounded waits.
import { mkdtemp, rm, writeFile, mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseResources, type IstioResource } from '../../src/api/index.js';

export class TempDir {
  private constructor(readonly path: string) {}

  static async create(prefix = 'trellis-config-'): Promise<TempDir> {
    return new TempDir(await mkdtemp(join(tmpdir(), prefix)));
  }

  file(name: string): string {
    return join(this.path, name);
  }

  async write(name: string, text: string): Promise<string> {
    const path = this.file(name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
    return path;
  }

  /** Writes the way many editors save: to a temporary file, then renamed over the original. */
  async writeRename(name: string, text: string): Promise<void> {
    const path = this.file(name);
    const temp = join(dirname(path), `.${Date.now()}.tmp`);
    await writeFile(temp, text);
    await rename(temp, path);
  }

  async remove(name: string): Promise<void> {
    await rm(this.file(name), { force: true, recursive: true });
  }

  async dispose(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns a value other than undefined/false; fails after `timeoutMs` (bounded: never hangs a run). */
export async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms (${i} checks) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function serviceEntryYaml(name: string, spec: string, namespace = 'default'): string {
  return doc('ServiceEntry', name, spec, namespace);
}

export function workloadEntryYaml(name: string, spec: string, namespace = 'default'): string {
  return doc('WorkloadEntry', name, spec, namespace);
}

export function virtualServiceYaml(name: string, spec: string, namespace = 'default'): string {
  return doc('VirtualService', name, spec, namespace);
}

export function doc(kind: string, name: string, spec: string, namespace = 'default'): string {
  return `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${indent(spec)}---\n`;
}

/** Parses YAML documents into resources, asserting they load. */
export function resources(text: string): IstioResource[] {
  const { resources: out, problems } = parseResources(text, { source: 'test.yaml' });
  if (problems.length > 0) throw new Error(`test resources do not load: ${JSON.stringify(problems)}`);
  return out;
}

function indent(spec: string): string {
  const lines = spec.replace(/^\n+/, '').replace(/\s+$/, '').split('\n');
  const margin = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => `  ${l.slice(margin)}`).join('\n') + '\n';
}
