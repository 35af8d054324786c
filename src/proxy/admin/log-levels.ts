// The proxy's own log (not access logs): named loggers with Envoy's levels, changed at runtime through the admin /logging page.

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The loggers Trellis's proxy writes to, by Envoy's names where Envoy has one. */
export const LOGGER_NAMES = ['admin', 'config', 'connection', 'http', 'main', 'router', 'upstream'] as const;
export type LoggerName = (typeof LOGGER_NAMES)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Writes `[time][level][logger] message` lines to stderr when the logger's level allows it. */
export class ProxyLog {
  private readonly levels = new Map<string, LogLevel>();

  constructor(level: LogLevel = 'info', private readonly write: (line: string) => void = (line) => void process.stderr.write(line)) {
    for (const name of LOGGER_NAMES) this.levels.set(name, level);
  }

  setAll(level: LogLevel): void {
    for (const name of this.levels.keys()) this.levels.set(name, level);
  }

  /** False when there is no such logger. */
  set(name: string, level: LogLevel): boolean {
    if (!this.levels.has(name)) return false;
    this.levels.set(name, level);
    return true;
  }

  levelsByName(): ReadonlyMap<string, LogLevel> {
    return this.levels;
  }

  enabled(name: LoggerName, level: LogLevel): boolean {
    const threshold = this.levels.get(name) ?? 'info';
    return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(threshold) && threshold !== 'off';
  }

  log(name: LoggerName, level: Exclude<LogLevel, 'off'>, message: string): void {
    if (!this.enabled(name, level)) return;
    this.write(`[${new Date().toISOString()}][${level}][${name}] ${message}\n`);
  }

  info(name: LoggerName, message: string): void {
    this.log(name, 'info', message);
  }
  warn(name: LoggerName, message: string): void {
    this.log(name, 'warning', message);
  }
  error(name: LoggerName, message: string): void {
    this.log(name, 'error', message);
  }
  debug(name: LoggerName, message: string): void {
    this.log(name, 'debug', message);
  }
}
