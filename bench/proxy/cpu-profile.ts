// Reading a V8 .cpuprofile (node --cpu-prof): self time per function within a time window, the top ones first.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  readonly name: string;
  readonly where: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly windowMs: number;
  readonly sampledMs: number;
  readonly samples: number;
  readonly functions: readonly SelfTime[];
  /** Self time by source: Trellis's own files, node:internal modules, V8/runtime pseudo-frames. */
  readonly sources: readonly SelfTime[];
}

function where(url: string, line: number): string {
  if (url === '') return '';
  const path = url.replace(/^file:\/\//, '');
  const inDist = /\/dist\/(.*)$/.exec(path)?.[1];
  return `${inDist ?? (path.startsWith('node:') ? path : basename(path))}:${line + 1}`;
}

function source(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native/V8 builtins)';
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:internal/').split('/').slice(0, 3).join('/');
  const inDist = /\/dist\/src\/(.*)$/.exec(url)?.[1];
  if (inDist) return `trellis src/${inDist.split('/').slice(0, -1).join('/') || '.'}`;
  return /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? basename(url);
}

/**
 * Self time per function from the samples whose timestamps fall in [fromUs, toUs] (V8's timestamps are
 * CLOCK_MONOTONIC microseconds, like process.hrtime), so start-up and warm-up are left out.
 */
export function summarizeProfile(path: string, fromUs: number, toUs: number, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const src = new Map<string, number>();
  let t = profile.startTime;
  let sampledUs = 0;
  let samples = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample's time is the interval up to the next sample.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const key = `${name}@${url}:${lineNumber}`;
    const entry = fn.get(key) ?? { name, where: where(url, lineNumber), us: 0 };
    entry.us += dt;
    fn.set(key, entry);
    const s = source(url, name);
    src.set(s, (src.get(s) ?? 0) + dt);
    sampledUs += dt;
    samples++;
  }
  const total = sampledUs || 1;
  const functions = [...fn.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, share: e.us / total }));
  const sources = [...src.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([name, us]) => ({ name, where: '', ms: us / 1000, share: us / total }));
  return { windowMs: (toUs - fromUs) / 1000, sampledMs: sampledUs / 1000, samples, functions, sources };
}
