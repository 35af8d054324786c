// Duration flags of the trellis commands: Go's duration syntax (as Istio's settings) or a plain number in the flag's own unit.
import { InvalidArgumentError } from 'commander';
import { parseDurationMs } from '../../api/duration.js';

export interface DurationFlag {
  /** What a plain number counts: 1000 for pilot-agent's *_SECONDS settings, 1 for flags in milliseconds. */
  readonly plainUnitMs: number;
  /** The shortest duration the flag takes, in ms. */
  readonly minMs: number;
  /** What the flag wants, for the error: `a duration like 5s or 500ms, or a number of seconds`. */
  readonly expected: string;
}

/** `value` (`1.5s`, `500ms`, `1m`, or a plain number of the flag's unit) in ms; refused with the flag's `expected` otherwise. */
export function parseDurationFlag(value: string, flag: DurationFlag): number {
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * flag.plainUnitMs : parseDurationMs(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < flag.minMs) throw new InvalidArgumentError(`expected ${flag.expected}, got ${JSON.stringify(value)}`);
  return ms;
}
