// Istio's duration strings ("1.5s", "100ms", "1m", "1h30m"): Go's time.ParseDuration syntax, which Istio's CRDs accept.

const UNIT_NANOS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const PART = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** Parses a duration into nanoseconds, or returns undefined when the text is not a duration. */
export function parseDurationNanos(text: string): number | undefined {
  let s = text.trim();
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const start = PART.lastIndex;
    const match = PART.exec(s);
    if (!match || match.index !== start) return undefined;
    const digits = match[1]!;
    if (digits === '' || digits === '.') return undefined;
    // Rounded to whole nanoseconds so "1.1s" is exactly 1100ms, not 1100.0000002.
    total += Math.round(Number(digits) * UNIT_NANOS[match[2]!]!);
  }
  return sign * total;
}

/** Parses a duration into milliseconds (fractions kept), or undefined when it does not parse. */
export function parseDurationMs(text: string): number | undefined {
  const nanos = parseDurationNanos(text);
  return nanos === undefined ? undefined : nanos / 1e6;
}

/** Formats milliseconds the way Envoy's JSON does (`"1.5s"`), for messages and generated config. */
export function formatDurationMs(ms: number): string {
  return `${Number((ms / 1000).toFixed(9))}s`;
}
