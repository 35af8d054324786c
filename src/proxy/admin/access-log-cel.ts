// A CEL subset over Envoy's request attributes, for the access log extension filter (`response.code >= 400`, Istio's Telemetry `filter.expression`).
//
// Parsed once per config apply into closures. Supported: literals (int, uint `1u`, double, 'string'/"string", true,
// false, null, lists), attribute paths (`request.method`, `request.headers['x-user']`), `!`, unary `-`, `&&`, `||`,
// `? :`, `== != < <= > >=`, `in`, `+ - * / %`, and the methods startsWith, endsWith, contains, matches, size().
// As in Envoy, an evaluation error (a missing attribute or header, a type mismatch) makes the filter false.
import { formatResponseFlags, type ResponseFlag } from '../http/response-flags.js';
import type { StreamInfo } from '../http/stream-info.js';
import { headerAsString } from '../router/header-matcher.js';

type Value = number | string | boolean | null | readonly Value[] | Headers;
/** A header map as CEL sees it (request.headers / response.headers): keys lower-case, values joined with ','. */
interface Headers {
  readonly kind: 'headers';
  get(name: string): string | undefined;
}
type Eval = (info: StreamInfo) => Value;

class CelError extends Error {}

export type CelCompileResult = { ok: true; predicate: (info: StreamInfo) => boolean } | { ok: false; error: string };

/**
 * Envoy's response.flags attribute is a bit vector in the order of StreamInfo::CoreResponseFlag (stream_info.h);
 * flags Envoy has no bit for (Trellis's RBAC) add none.
 */
const RESPONSE_FLAG_BITS: Readonly<Record<string, number>> = {
  LH: 0, UH: 1, UT: 2, LR: 3, UR: 4, UF: 5, UC: 6, UO: 7, NR: 8, DI: 9, FI: 10, RL: 11, UAEX: 12, RLSE: 13, DC: 14, URX: 15,
  SI: 16, IH: 17, DPE: 18, UMSDR: 19, RFCF: 20, NFCF: 21, DT: 22, UPE: 23, NC: 24, OM: 25, DF: 26, DO: 27, DR: 28,
};

export function responseFlagBits(flags: Iterable<ResponseFlag>): number {
  let bits = 0;
  for (const flag of flags) {
    const bit = RESPONSE_FLAG_BITS[flag];
    if (bit !== undefined) bits += 2 ** bit;
  }
  return bits;
}

function headersOf(map: StreamInfo['requestHeaders'] | undefined): Headers | undefined {
  if (!map) return undefined;
  return { kind: 'headers', get: (name) => headerAsString(map, name.toLowerCase()) };
}

function missing(name: string): never {
  throw new CelError(`no such attribute ${name}`);
}

function pathOnly(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

function hostOf(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const match = /^\[?([^\]]*?)\]?:\d+$/.exec(address);
  return match ? match[1] : address;
}

function portOf(address: string | undefined): number | undefined {
  const match = address ? /:(\d+)$/.exec(address) : null;
  return match ? Number(match[1]) : undefined;
}

/** Envoy's attributes (docs: arch_overview_attributes) that Trellis knows per request. */
const ATTRIBUTES: Readonly<Record<string, (info: StreamInfo) => Value | undefined>> = {
  'request.path': (i) => headerAsString(i.requestHeaders, ':path'),
  'request.url_path': (i) => pathOnly(headerAsString(i.requestHeaders, ':path')),
  'request.host': (i) => headerAsString(i.requestHeaders, ':authority'),
  'request.scheme': (i) => headerAsString(i.requestHeaders, ':scheme'),
  'request.method': (i) => headerAsString(i.requestHeaders, ':method'),
  'request.headers': (i) => headersOf(i.requestHeaders),
  'request.referer': (i) => headerAsString(i.requestHeaders, 'referer'),
  'request.useragent': (i) => headerAsString(i.requestHeaders, 'user-agent'),
  'request.id': (i) => headerAsString(i.requestHeaders, 'x-request-id') ?? i.requestId,
  'request.protocol': (i) => i.protocol,
  'request.size': (i) => i.bytesReceived,
  'request.total_size': (i) => i.bytesReceived,
  'response.code': (i) => i.responseCode,
  'response.code_details': (i) => i.responseCodeDetails,
  'response.flags': (i) => responseFlagBits(i.responseFlags),
  'response.headers': (i) => headersOf(i.responseHeaders),
  'response.size': (i) => i.bytesSent,
  'response.total_size': (i) => i.bytesSent,
  'source.address': (i) => i.downstreamRemoteAddress,
  'source.port': (i) => i.downstreamRemotePort,
  'destination.address': (i) => i.downstreamLocalAddress,
  'destination.port': (i) => i.downstreamLocalPort,
  'connection.mtls': (i) => (i.downstreamTls?.peerCertificateValidated ?? (i.downstreamTls ? i.downstreamTls.peerUriSans.length > 0 : false)),
  'connection.requested_server_name': (i) => i.downstreamTls?.sni,
  'connection.tls_version': (i) => i.downstreamTls?.tlsVersion,
  'upstream.address': (i) => hostOf(i.upstreamHost),
  'upstream.port': (i) => portOf(i.upstreamHost),
  'xds.cluster_name': (i) => i.upstreamCluster,
  'xds.route_name': (i) => i.routeName,
  'xds.listener_name': (i) => i.listenerName,
};
const ROOTS = new Set(Object.keys(ATTRIBUTES).map((k) => k.split('.')[0]!));

// --- lexer ------------------------------------------------------------------------------------------------------

type Token =
  | { t: 'num'; v: number; uint: boolean }
  | { t: 'str'; v: string }
  | { t: 'id'; v: string }
  | { t: 'op'; v: string }
  | { t: 'end' };

const OPS = ['&&', '||', '==', '!=', '<=', '>=', '<', '>', '!', '(', ')', '[', ']', '.', ',', '?', ':', '+', '-', '*', '/', '%'];

function lex(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([uU])?/.exec(source.slice(i));
    if (num) {
      tokens.push({ t: 'num', v: Number(num[1]), uint: num[2] !== undefined });
      i += num[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let value = '';
      let j = i + 1;
      for (; j < source.length && source[j] !== c; j++) {
        if (source[j] === '\\' && j + 1 < source.length) {
          const next = source[++j]!;
          value += next === 'n' ? '\n' : next === 't' ? '\t' : next;
        } else value += source[j];
      }
      if (j >= source.length) throw new CelError(`unterminated string at offset ${i}`);
      tokens.push({ t: 'str', v: value });
      i = j + 1;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i));
    if (id) {
      tokens.push({ t: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => source.startsWith(o, i));
    if (!op) throw new CelError(`unexpected character '${c}' at offset ${i}`);
    tokens.push({ t: 'op', v: op });
    i += op.length;
  }
  tokens.push({ t: 'end' });
  return tokens;
}

// --- parser: precedence as in CEL's grammar (?:, ||, &&, relations and in, + -, * / %, unary, member) ----------

/** An attribute path still being built (`request` then `.headers`), resolved once no more `.name` follows. */
interface Node {
  eval: Eval;
  /** Set while the node is a bare attribute path like `request.method`. */
  path?: string;
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Eval {
    const node = this.ternary();
    const tok = this.peek();
    if (tok.t !== 'end') throw new CelError(`unexpected ${describe(tok)}`);
    return this.resolve(node);
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private isOp(v: string): boolean {
    const tok = this.peek();
    return tok.t === 'op' && tok.v === v;
  }

  private expect(v: string): void {
    if (!this.isOp(v)) throw new CelError(`expected '${v}', found ${describe(this.peek())}`);
    this.pos++;
  }

  private resolve(node: Node): Eval {
    if (node.path === undefined) return node.eval;
    const get = ATTRIBUTES[node.path];
    if (!get) throw new CelError(`unknown attribute ${node.path} (known: ${Object.keys(ATTRIBUTES).join(', ')})`);
    const name = node.path;
    return (info) => {
      const value = get(info);
      return value === undefined ? missing(name) : value;
    };
  }

  private ternary(): Node {
    const cond = this.or();
    if (!this.isOp('?')) return cond;
    this.pos++;
    const c = this.resolve(cond);
    const a = this.resolve(this.ternary());
    this.expect(':');
    const b = this.resolve(this.ternary());
    return { eval: (info) => (bool(c(info)) ? a(info) : b(info)) };
  }

  private or(): Node {
    let left = this.and();
    while (this.isOp('||')) {
      this.pos++;
      const l = this.resolve(left);
      const r = this.resolve(this.and());
      // CEL's commutative ||: true wins over an error on either side.
      left = { eval: (info) => logical(l, r, info, true) };
    }
    return left;
  }

  private and(): Node {
    let left = this.relation();
    while (this.isOp('&&')) {
      this.pos++;
      const l = this.resolve(left);
      const r = this.resolve(this.relation());
      left = { eval: (info) => logical(l, r, info, false) };
    }
    return left;
  }

  private relation(): Node {
    let left = this.additive();
    for (;;) {
      const tok = this.peek();
      const op = tok.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(tok.v) ? tok.v : tok.t === 'id' && tok.v === 'in' ? 'in' : undefined;
      if (!op) return left;
      this.pos++;
      const l = this.resolve(left);
      const r = this.resolve(this.additive());
      left = { eval: (info) => compare(op, l(info), r(info)) };
    }
  }

  private additive(): Node {
    let left = this.multiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.tokens[this.pos++] as { v: string }).v;
      const l = this.resolve(left);
      const r = this.resolve(this.multiplicative());
      left = { eval: (info) => arithmetic(op, l(info), r(info)) };
    }
    return left;
  }

  private multiplicative(): Node {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = (this.tokens[this.pos++] as { v: string }).v;
      const l = this.resolve(left);
      const r = this.resolve(this.unary());
      left = { eval: (info) => arithmetic(op, l(info), r(info)) };
    }
    return left;
  }

  private unary(): Node {
    if (this.isOp('!')) {
      this.pos++;
      const operand = this.resolve(this.unary());
      return { eval: (info) => !bool(operand(info)) };
    }
    if (this.isOp('-')) {
      this.pos++;
      const operand = this.resolve(this.unary());
      return { eval: (info) => -num(operand(info)) };
    }
    return this.member();
  }

  private member(): Node {
    let node = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.pos++;
        const tok = this.peek();
        if (tok.t !== 'id') throw new CelError(`expected a field or method name after '.', found ${describe(tok)}`);
        this.pos++;
        if (this.isOp('(')) {
          node = this.method(this.resolve(node), tok.v);
          continue;
        }
        if (node.path === undefined) throw new CelError(`field selection .${tok.v} is only supported on attributes`);
        node = { eval: node.eval, path: `${node.path}.${tok.v}` };
        continue;
      }
      if (this.isOp('[')) {
        this.pos++;
        const target = this.resolve(node);
        const key = this.resolve(this.ternary());
        this.expect(']');
        node = { eval: (info) => index(target(info), key(info)) };
        continue;
      }
      return node;
    }
  }

  private args(): Eval[] {
    this.expect('(');
    const args: Eval[] = [];
    if (!this.isOp(')')) {
      do {
        if (args.length > 0) this.pos++;
        args.push(this.resolve(this.ternary()));
      } while (this.isOp(','));
    }
    this.expect(')');
    return args;
  }

  private method(target: Eval, name: string): Node {
    const args = this.args();
    const arity = (n: number) => {
      if (args.length !== n) throw new CelError(`${name}() takes ${n} argument${n === 1 ? '' : 's'}, got ${args.length}`);
    };
    switch (name) {
      case 'startsWith':
      case 'endsWith':
      case 'contains': {
        arity(1);
        const arg = args[0]!;
        return { eval: (info) => { const s = str(target(info)); const a = str(arg(info)); return name === 'startsWith' ? s.startsWith(a) : name === 'endsWith' ? s.endsWith(a) : s.includes(a); } };
      }
      case 'matches': {
        arity(1);
        const arg = args[0]!;
        return { eval: (info) => new RegExp(str(arg(info)), 'u').test(str(target(info))) };
      }
      case 'size':
        arity(0);
        return { eval: (info) => size(target(info)) };
      default:
        throw new CelError(`unknown method ${name}() (supported: startsWith, endsWith, contains, matches, size)`);
    }
  }

  private primary(): Node {
    const tok = this.peek();
    this.pos++;
    switch (tok.t) {
      case 'num':
        return { eval: () => tok.v };
      case 'str':
        return { eval: () => tok.v };
      case 'id': {
        if (tok.v === 'true' || tok.v === 'false') return { eval: () => tok.v === 'true' };
        if (tok.v === 'null') return { eval: () => null };
        if (tok.v === 'size' && this.isOp('(')) {
          const args = this.args();
          if (args.length !== 1) throw new CelError(`size() takes 1 argument, got ${args.length}`);
          const arg = args[0]!;
          return { eval: (info) => size(arg(info)) };
        }
        if (!ROOTS.has(tok.v)) throw new CelError(`unknown identifier ${tok.v} (attributes start with ${[...ROOTS].join(', ')})`);
        return { eval: () => null, path: tok.v };
      }
      case 'op':
        if (tok.v === '(') {
          const inner = this.resolve(this.ternary());
          this.expect(')');
          return { eval: inner };
        }
        if (tok.v === '[') {
          const items: Eval[] = [];
          if (!this.isOp(']')) {
            do {
              if (items.length > 0) this.pos++;
              items.push(this.resolve(this.ternary()));
            } while (this.isOp(','));
          }
          this.expect(']');
          return { eval: (info) => items.map((item) => item(info)) };
        }
        throw new CelError(`unexpected '${tok.v}'`);
      default:
        throw new CelError('unexpected end of expression');
    }
  }
}

function describe(tok: Token): string {
  return tok.t === 'end' ? 'end of expression' : `'${String(tok.v)}'`;
}

function isHeaders(v: Value): v is Headers {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Headers).kind === 'headers';
}

function bool(v: Value): boolean {
  if (typeof v !== 'boolean') throw new CelError(`expected a bool, got ${typeName(v)}`);
  return v;
}

function num(v: Value): number {
  if (typeof v !== 'number') throw new CelError(`expected a number, got ${typeName(v)}`);
  return v;
}

function str(v: Value): string {
  if (typeof v !== 'string') throw new CelError(`expected a string, got ${typeName(v)}`);
  return v;
}

function typeName(v: Value): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (isHeaders(v as Value)) return 'map';
  return typeof v === 'number' ? 'int' : typeof v === 'string' ? 'string' : 'bool';
}

function logical(l: Eval, r: Eval, info: StreamInfo, isOr: boolean): boolean {
  let leftError: unknown;
  let left: boolean | undefined;
  try {
    left = bool(l(info));
    if (left === isOr) return isOr;
  } catch (err) {
    leftError = err;
  }
  const right = bool(r(info));
  if (right === isOr) return isOr;
  if (leftError !== undefined) throw leftError;
  return !isOr;
}

function compare(op: string, a: Value, b: Value): boolean {
  if (op === 'in') {
    if (Array.isArray(b)) return b.some((item) => equal(a, item));
    if (isHeaders(b)) return b.get(str(a)) !== undefined;
    throw new CelError(`'in' needs a list or map on the right, got ${typeName(b)}`);
  }
  if (op === '==') return equal(a, b);
  if (op === '!=') return !equal(a, b);
  if (typeof a === 'number' && typeof b === 'number') return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  if (typeof a === 'string' && typeof b === 'string') return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  throw new CelError(`no such overload: ${typeName(a)} ${op} ${typeName(b)}`);
}

function equal(a: Value, b: Value): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => equal(item, b[i]!));
  if (typeof a !== typeof b && a !== null && b !== null) throw new CelError(`no such overload: ${typeName(a)} == ${typeName(b)}`);
  return a === b;
}

function arithmetic(op: string, a: Value, b: Value): Value {
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  const x = num(a);
  const y = num(b);
  switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/':
      if (y === 0) throw new CelError('division by zero');
      return Number.isInteger(x) && Number.isInteger(y) ? Math.trunc(x / y) : x / y;
    default:
      if (y === 0) throw new CelError('modulus by zero');
      return x % y;
  }
}

function index(target: Value, key: Value): Value {
  if (isHeaders(target)) {
    const value = target.get(str(key));
    if (value === undefined) throw new CelError(`no such key: ${String(key)}`);
    return value;
  }
  if (Array.isArray(target)) {
    const i = num(key);
    if (i < 0 || i >= target.length) throw new CelError(`index out of range: ${i}`);
    return target[i]!;
  }
  throw new CelError(`cannot index ${typeName(target)}`);
}

function size(v: Value): number {
  if (typeof v === 'string') return [...v].length;
  if (Array.isArray(v)) return v.length;
  throw new CelError(`size() of ${typeName(v)}`);
}

/** Compiles an expression; the predicate is true only when it evaluates to true without error. */
export function compileCelExpression(expression: string): CelCompileResult {
  if (expression.trim() === '') return { ok: false, error: 'the expression is empty' };
  let evaluate: Eval;
  try {
    evaluate = new Parser(lex(expression)).parse();
  } catch (err) {
    if (err instanceof CelError) return { ok: false, error: `invalid expression ${JSON.stringify(expression)}: ${err.message}` };
    throw err;
  }
  return {
    ok: true,
    predicate: (info) => {
      try {
        return evaluate(info) === true;
      } catch (err) {
        if (err instanceof CelError || err instanceof SyntaxError) return false;
        throw err;
      }
    },
  };
}

/** For tests and debugging: the %RESPONSE_FLAGS% text of a bit vector's flags. */
export function describeResponseFlagBits(bits: number): string {
  const flags = Object.entries(RESPONSE_FLAG_BITS).filter(([, bit]) => Math.floor(bits / 2 ** bit) % 2 === 1).map(([flag]) => flag as ResponseFlag);
  return formatResponseFlags(flags);
}
