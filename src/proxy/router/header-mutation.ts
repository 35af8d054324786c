// Envoy's request/response header mutations (headers_to_add with append_action and keep_empty_value, headers_to_remove) with the common substitution formatters, compiled once.
import type { HeaderValue, HttpHeaders } from '../http/headers.js';
import type { envoy } from '../../xds/generated/types.js';
import { ConfigProblems, fieldPath, isValidHeaderName, isValidHeaderValue, rejectUnsupportedFields } from './config-problems.js';
import type { CompiledHeaderMutation, HeaderFormatterContext } from './route-table.js';
import { asciiLower } from './string-matcher.js';

type HeaderValueOption = envoy.config.core.v3.HeaderValueOption;
type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

/** Produces a header value for one request: the literal text, or substitutions evaluated against the context. */
type ValueFormatter = (headers: HttpHeaders, context: HeaderFormatterContext) => string;

interface AddEntry {
  readonly key: string;
  readonly format: ValueFormatter;
  readonly action: AppendAction;
  readonly keepEmpty: boolean;
}

/** The substitutions Trellis supports, by Envoy's command name. */
export const SUPPORTED_SUBSTITUTIONS = [
  'DOWNSTREAM_REMOTE_ADDRESS',
  'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS',
  'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'UPSTREAM_REMOTE_ADDRESS',
  'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'PROTOCOL',
  'HOSTNAME',
  'START_TIME',
  'REQ',
  'RESP',
] as const;

/** `1.2.3.4:80` → `1.2.3.4`, `[::1]:80` → `::1` (Envoy prints IPv6 without brackets when the port is dropped). */
export function addressWithoutPort(address: string): string {
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    return end > 0 ? address.slice(1, end) : address;
  }
  const colon = address.lastIndexOf(':');
  // More than one ':' and no brackets: a bare IPv6 address without port.
  if (colon < 0 || address.indexOf(':') !== colon) return address;
  return address.slice(0, colon);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** A small strftime over UTC for START_TIME(format): %Y %m %d %H %M %S %s %z %Z %%, %E<n>S and %<n>f for fractions. */
function compileTimeFormat(format: string): ((ms: number) => string) | string {
  const parts: Array<string | ((d: Date, ms: number) => string)> = [];
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') {
      parts.push(c);
      continue;
    }
    const spec = /^%(?:([YmdHMSszZ%])|E(\d)S|(\d)f|f)/.exec(format.slice(i));
    if (!spec) return `unsupported START_TIME format specifier at ${JSON.stringify(format.slice(i, i + 4))}`;
    i += spec[0].length - 1;
    const fraction = (ms: number, digits: number): string => pad(((ms % 1000) + 1000) % 1000, 3).padEnd(9, '0').slice(0, digits);
    if (spec[2] !== undefined) {
      const digits = Number(spec[2]);
      parts.push((d, ms) => (digits > 0 ? `${pad(d.getUTCSeconds())}.${fraction(ms, digits)}` : pad(d.getUTCSeconds())));
      continue;
    }
    if (spec[3] !== undefined || spec[0] === '%f') {
      const digits = spec[3] !== undefined ? Number(spec[3]) : 9;
      parts.push((_d, ms) => fraction(ms, digits));
      continue;
    }
    switch (spec[1]) {
      case 'Y': parts.push((d) => String(d.getUTCFullYear())); break;
      case 'm': parts.push((d) => pad(d.getUTCMonth() + 1)); break;
      case 'd': parts.push((d) => pad(d.getUTCDate())); break;
      case 'H': parts.push((d) => pad(d.getUTCHours())); break;
      case 'M': parts.push((d) => pad(d.getUTCMinutes())); break;
      case 'S': parts.push((d) => pad(d.getUTCSeconds())); break;
      case 's': parts.push((_d, ms) => String(Math.floor(ms / 1000))); break;
      case 'z': parts.push('+0000'); break;
      case 'Z': parts.push('UTC'); break;
      case '%': parts.push('%'); break;
    }
  }
  return (ms) => {
    const d = new Date(ms);
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(d, ms);
    return out;
  };
}

function firstValue(value: HeaderValue | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** One %COMMAND(args):N% as a formatter, or a message saying why not. */
function compileCommand(command: string, args: string | undefined, maxLength: number | undefined, isResponse: boolean): ValueFormatter | string {
  let f: ValueFormatter;
  const noArgs = (): string | undefined => (args !== undefined ? `%${command}% takes no arguments` : undefined);
  switch (command) {
    case 'DOWNSTREAM_REMOTE_ADDRESS':
      f = (_h, c) => c.downstreamRemoteAddress;
      break;
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      f = (_h, c) => addressWithoutPort(c.downstreamRemoteAddress);
      break;
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      f = (_h, c) => c.downstreamLocalAddress;
      break;
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
      f = (_h, c) => addressWithoutPort(c.downstreamLocalAddress);
      break;
    case 'UPSTREAM_REMOTE_ADDRESS':
      f = (_h, c) => c.upstreamHost ?? '';
      break;
    case 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      f = (_h, c) => (c.upstreamHost ? addressWithoutPort(c.upstreamHost) : '');
      break;
    case 'PROTOCOL':
      f = (_h, c) => c.protocol;
      break;
    case 'HOSTNAME':
      f = (_h, c) => c.hostname;
      break;
    case 'START_TIME': {
      if (args === undefined || args === '') {
        // Envoy's default: %Y-%m-%dT%H:%M:%E3SZ, which is toISOString().
        f = (_h, c) => new Date(c.startTimeMs ?? Date.now()).toISOString();
      } else {
        const format = compileTimeFormat(args);
        if (typeof format === 'string') return format;
        f = (_h, c) => format(c.startTimeMs ?? Date.now());
      }
      break;
    }
    case 'REQ':
    case 'RESP': {
      if (args === undefined || args === '') return `%${command}(header)% needs a header name`;
      const [main, alt, ...extra] = args.split('?');
      if (extra.length > 0 || main === '' || alt === '') return `%${command}(${args})%: expected a header name and at most one ?alternative`;
      const name = asciiLower(main!);
      const altName = alt === undefined ? undefined : asciiLower(alt);
      if (command === 'RESP' && !isResponse) return '%RESP(…)% is only available in response header mutations';
      // Request mutations read the headers being mutated; response mutations read the request from the context.
      const source = command === 'REQ' && isResponse ? (_h: HttpHeaders, c: HeaderFormatterContext) => c.requestHeaders ?? {} : (h: HttpHeaders) => h;
      f = (h, c) => {
        const headers = source(h, c);
        return firstValue(headers[name]) ?? (altName !== undefined ? firstValue(headers[altName]) : undefined) ?? '';
      };
      break;
    }
    default:
      return `unsupported substitution %${command}% (Trellis supports ${SUPPORTED_SUBSTITUTIONS.map((s) => `%${s}%`).join(', ')})`;
  }
  const problem = command === 'REQ' || command === 'RESP' || command === 'START_TIME' ? undefined : noArgs();
  if (problem) return problem;
  if (maxLength === undefined) return f;
  const inner = f;
  return (h, c) => {
    const v = inner(h, c);
    return v.length > maxLength ? v.slice(0, maxLength) : v;
  };
}

/** Parses a header value with Envoy's substitution syntax (`%%` is a literal %); a message when it does not parse. */
export function compileHeaderValueFormat(value: string, isResponse: boolean): ValueFormatter | string {
  if (!value.includes('%')) return () => value;
  const parts: Array<string | ValueFormatter> = [];
  let literal = '';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    const m = /^%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%/.exec(value.slice(i));
    if (!m) return `invalid substitution at position ${i} of ${JSON.stringify(value)} (expected %COMMAND%, %COMMAND(arg)% or %% for a literal %)`;
    const f = compileCommand(m[1]!, m[2], m[3] === undefined ? undefined : Number(m[3]), isResponse);
    if (typeof f === 'string') return f;
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push(f);
    i += m[0].length;
  }
  if (literal !== '') parts.push(literal);
  if (parts.length === 1 && typeof parts[0] !== 'string') return parts[0]!;
  return (h, c) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(h, c);
    return out;
  };
}

const APPEND_ACTIONS: readonly AppendAction[] = ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'];

/** Envoy's isModifiableHeader: no pseudo-headers, no Host. */
function isModifiable(key: string): boolean {
  return !key.startsWith(':') && key !== 'host';
}

function present(headers: HttpHeaders, key: string): boolean {
  const v = headers[key];
  return v !== undefined && (typeof v === 'string' || v.length > 0);
}

class HeaderParser implements CompiledHeaderMutation {
  // Values evaluated before any is applied (Envoy runs every formatter on the original headers first); reused across
  // calls since apply() is synchronous.
  private readonly scratch: Array<string | undefined>;

  constructor(
    private readonly remove: readonly string[],
    private readonly add: readonly AddEntry[],
  ) {
    this.scratch = new Array<string | undefined>(add.length);
  }

  apply(headers: HttpHeaders, context: HeaderFormatterContext): void {
    for (let i = 0; i < this.remove.length; i++) {
      const key = this.remove[i]!;
      if (headers[key] !== undefined) headers[key] = undefined;
    }
    const add = this.add;
    if (add.length === 0) return;
    const values = this.scratch;
    for (let i = 0; i < add.length; i++) {
      const entry = add[i]!;
      const value = entry.format(headers, context);
      let keep: string | undefined;
      if (value !== '' || entry.keepEmpty) {
        switch (entry.action) {
          case 'APPEND_IF_EXISTS_OR_ADD':
          case 'OVERWRITE_IF_EXISTS_OR_ADD':
            keep = value;
            break;
          case 'ADD_IF_ABSENT':
            if (!present(headers, entry.key)) keep = value;
            break;
          case 'OVERWRITE_IF_EXISTS':
            if (present(headers, entry.key)) keep = value;
            break;
        }
      }
      values[i] = keep;
    }
    // Overwrites first, then additions, as Envoy's HeaderParser::evaluateHeaders does.
    for (let i = 0; i < add.length; i++) {
      const entry = add[i]!;
      const value = values[i];
      if (value === undefined) continue;
      if (entry.action === 'OVERWRITE_IF_EXISTS_OR_ADD' || entry.action === 'OVERWRITE_IF_EXISTS') headers[entry.key] = value;
    }
    for (let i = 0; i < add.length; i++) {
      const entry = add[i]!;
      const value = values[i];
      values[i] = undefined;
      if (value === undefined) continue;
      if (entry.action !== 'APPEND_IF_EXISTS_OR_ADD' && entry.action !== 'ADD_IF_ABSENT') continue;
      const existing = headers[entry.key];
      if (existing === undefined || (Array.isArray(existing) && existing.length === 0)) headers[entry.key] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else headers[entry.key] = [existing, value];
    }
  }
}

/** The mutation that changes nothing. */
export const NO_HEADER_MUTATION: CompiledHeaderMutation = { apply() {} };

/** Applies several mutations in order (each a separate Envoy HeaderParser: remove, evaluate, then set). */
export function chainHeaderMutations(mutations: readonly CompiledHeaderMutation[]): CompiledHeaderMutation {
  const list = mutations.filter((m) => m !== NO_HEADER_MUTATION);
  if (list.length === 0) return NO_HEADER_MUTATION;
  if (list.length === 1) return list[0]!;
  return {
    apply(headers, context) {
      for (let i = 0; i < list.length; i++) list[i]!.apply(headers, context);
    },
  };
}

/**
 * Compiles `<prefix>headers_to_add` and `<prefix>headers_to_remove` of one level (route configuration, virtual host,
 * route or weighted cluster). `addPath`/`removePath` are the fields' paths for problems.
 */
export function compileHeaderMutation(
  toAdd: readonly HeaderValueOption[] | undefined,
  toRemove: readonly string[] | undefined,
  addPath: string,
  removePath: string,
  isResponse: boolean,
  problems: ConfigProblems,
): CompiledHeaderMutation {
  const remove: string[] = [];
  (toRemove ?? []).forEach((raw, i) => {
    const key = asciiLower(raw);
    if (!isValidHeaderName(key)) problems.add(`${removePath}[${i}]`, 'a valid header name is required');
    else if (!isModifiable(key)) problems.add(`${removePath}[${i}]`, ':-prefixed or host headers may not be removed');
    else remove.push(key);
  });
  const add: AddEntry[] = [];
  (toAdd ?? []).forEach((option, i) => {
    const path = `${addPath}[${i}]`;
    rejectUnsupportedFields(option, new Set(['header', 'append', 'append_action', 'keep_empty_value']), path, problems);
    const header = option.header;
    if (header === undefined) {
      problems.add(fieldPath(path, 'header'), 'is required');
      return;
    }
    rejectUnsupportedFields(header, new Set(['key', 'value', 'raw_value']), fieldPath(path, 'header'), problems);
    const key = asciiLower(header.key ?? '');
    if (!isValidHeaderName(key)) {
      problems.add(fieldPath(path, 'header.key'), 'a valid header name is required');
      return;
    }
    if (!isModifiable(key)) {
      problems.add(fieldPath(path, 'header.key'), ':-prefixed or host headers may not be modified');
      return;
    }
    if (header.value && header.raw_value && header.raw_value.length > 0) {
      problems.add(fieldPath(path, 'header'), 'only one of value, raw_value may be set');
      return;
    }
    const text = header.raw_value && header.raw_value.length > 0 ? Buffer.from(header.raw_value).toString('latin1') : (header.value ?? '');
    if (!isValidHeaderValue(text)) {
      problems.add(fieldPath(path, 'header.value'), 'must not contain NUL, CR or LF');
      return;
    }
    let action: AppendAction;
    const rawAction = option.append_action ?? 'APPEND_IF_EXISTS_OR_ADD';
    const named = typeof rawAction === 'number' ? APPEND_ACTIONS[rawAction] : (rawAction as AppendAction);
    if (named === undefined || !APPEND_ACTIONS.includes(named)) {
      problems.add(fieldPath(path, 'append_action'), `unknown append action ${String(rawAction)}`);
      return;
    }
    action = named;
    if (option.append !== undefined && option.append !== null) {
      if (action !== 'APPEND_IF_EXISTS_OR_ADD') {
        problems.add(path, "both append and append_action are set and it's not allowed");
        return;
      }
      // A BoolValue of false decodes as {}: only an explicit true appends.
      action = option.append.value === true ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
    }
    const format = compileHeaderValueFormat(text, isResponse);
    if (typeof format === 'string') {
      problems.add(fieldPath(path, 'header.value'), format);
      return;
    }
    add.push({ key, format, action, keepEmpty: option.keep_empty_value === true });
  });
  if (remove.length === 0 && add.length === 0) return NO_HEADER_MUTATION;
  return new HeaderParser(remove, add);
}
