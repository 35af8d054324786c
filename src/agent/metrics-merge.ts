// Istio's metrics merging: the agent's, the proxy's and the application's Prometheus text joined into one exposition,
// each metric family once.

/** One scraped exposition, named for messages (`agent`, `envoy`, `application`). */
export interface ExpositionSource {
  readonly name: string;
  readonly text: string;
}

export interface MergedExposition {
  readonly text: string;
  /** Families left out because an earlier source already exposed that name: `application: http_requests_total`. */
  readonly dropped: readonly string[];
}

/** Sample-name suffixes that belong to the family named without them (histograms, summaries, OpenMetrics counters). */
const FAMILY_SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info', '_gcount', '_gsum'];

interface Block {
  readonly family: string;
  readonly lines: string[];
}

/** The metric name a sample line starts with (up to `{` or whitespace). */
function sampleName(line: string): string {
  const end = line.search(/[{\s]/);
  return end < 0 ? line : line.slice(0, end);
}

/** `# HELP name …` / `# TYPE name …` → name; other comments → undefined. */
function metadataName(line: string): string | undefined {
  const m = /^#\s+(?:HELP|TYPE)\s+(\S+)/.exec(line);
  return m?.[1];
}

function belongsTo(name: string, family: string): boolean {
  if (name === family) return true;
  return name.startsWith(family) && FAMILY_SUFFIXES.includes(name.slice(family.length));
}

/** Splits one exposition into its families, in order; other comments and blank lines, and OpenMetrics' `# EOF`, go. */
function blocks(text: string): Block[] {
  const out: Block[] = [];
  let current: Block | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const name = metadataName(line);
      if (name === undefined) continue;
      // HELP then TYPE of one family (or repeated metadata) stay one block until a sample of another name.
      if (!current || current.family !== name || current.lines.some((l) => !l.startsWith('#'))) {
        current = { family: name, lines: [] };
        out.push(current);
      }
      current.lines.push(line);
      continue;
    }
    const name = sampleName(line);
    if (!current || !belongsTo(name, current.family)) {
      current = { family: name, lines: [] };
      out.push(current);
    }
    current.lines.push(line);
  }
  return out;
}

/** A family already exposed, or a series name of one (`x_count` of histogram `x`). */
function collides(family: string, taken: ReadonlySet<string>): boolean {
  if (taken.has(family)) return true;
  return FAMILY_SUFFIXES.some((suffix) => family.endsWith(suffix) && taken.has(family.slice(0, -suffix.length)));
}

/**
 * Joins the sources in order. Istio concatenates the three texts, which gives Prometheus an exposition with a family
 * twice when the application exposes a name the proxy or agent already does; here a later source's family of a name
 * an earlier source exposed is left out (and reported), so the result stays a valid exposition.
 */
export function mergeExpositions(sources: readonly ExpositionSource[]): MergedExposition {
  const taken = new Set<string>();
  const dropped: string[] = [];
  const parts: string[] = [];
  for (const source of sources) {
    const own = blocks(source.text);
    for (const block of own) {
      if (collides(block.family, taken)) {
        dropped.push(`${source.name}: ${block.family}`);
        continue;
      }
      parts.push(block.lines.join('\n'));
    }
    for (const block of own) taken.add(block.family);
  }
  return { text: parts.length > 0 ? `${parts.join('\n')}\n` : '', dropped };
}
