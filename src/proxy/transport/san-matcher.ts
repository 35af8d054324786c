// Subject alternative name matchers of a CertificateValidationContext (match_typed_subject_alt_names, match_subject_alt_names), compiled once.
import type { envoy } from '../../xds/generated/types.js';

type CertificateValidationContext = envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
type StringMatcher = envoy.type.matcher.v3.StringMatcher;

/** SAN kinds as node:tls spells them in `subjectaltname` ("URI:spiffe://…, DNS:a.example"). */
export type SanType = 'DNS' | 'URI' | 'IP Address' | 'email';

export interface San {
  readonly type: string;
  readonly value: string;
}

export interface SanMatcher {
  readonly types: readonly SanType[];
  /** For logs: `URI prefix spiffe://cluster.local/`. */
  readonly text: string;
  readonly match: (value: string) => boolean;
}

const SAN_TYPE_NAMES: Record<string, SanType> = { DNS: 'DNS', URI: 'URI', IP_ADDRESS: 'IP Address', EMAIL: 'email' };
const STRING_MATCHER_FIELDS = new Set(['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);

function compileStringMatcher(m: StringMatcher, path: string, problems: string[]): { text: string; match: (s: string) => boolean } {
  for (const [k, v] of Object.entries(m)) if (v !== undefined && !STRING_MATCHER_FIELDS.has(k)) problems.push(`${path}.${k}: not supported`);
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const v = norm(m.exact);
    return { text: `exact ${m.exact}`, match: (s) => norm(s) === v };
  }
  if (m.prefix !== undefined) {
    const v = norm(m.prefix);
    return { text: `prefix ${m.prefix}`, match: (s) => norm(s).startsWith(v) };
  }
  if (m.suffix !== undefined) {
    const v = norm(m.suffix);
    return { text: `suffix ${m.suffix}`, match: (s) => norm(s).endsWith(v) };
  }
  if (m.contains !== undefined) {
    const v = norm(m.contains);
    return { text: `contains ${m.contains}`, match: (s) => norm(s).includes(v) };
  }
  if (m.safe_regex?.regex !== undefined) {
    try {
      // RE2 full match, as Envoy's safe_regex.
      const re = new RegExp(`^(?:${m.safe_regex.regex})$`, ic ? 'i' : '');
      return { text: `regex ${m.safe_regex.regex}`, match: (s) => re.test(s) };
    } catch (err) {
      problems.push(`${path}.safe_regex.regex: ${(err as Error).message}`);
    }
  } else problems.push(`${path}: expected exact, prefix, suffix, contains or safe_regex`);
  return { text: 'invalid', match: () => false };
}

/** Compiles both SAN matcher lists of a validation context; problems carry their field paths. */
export function compileSanMatchers(v: CertificateValidationContext | undefined, path: string, problems: string[]): SanMatcher[] {
  if (!v) return [];
  const out: SanMatcher[] = [];
  (v.match_typed_subject_alt_names ?? []).forEach((m, i) => {
    const p = `${path}.match_typed_subject_alt_names[${i}]`;
    const type = SAN_TYPE_NAMES[String(m.san_type)];
    if (!type) problems.push(`${p}.san_type: expected DNS, URI, IP_ADDRESS or EMAIL, got ${String(m.san_type ?? 'SAN_TYPE_UNSPECIFIED')}`);
    if (m.oid) problems.push(`${p}.oid: OTHER_NAME SANs are not supported`);
    const s = compileStringMatcher(m.matcher ?? {}, `${p}.matcher`, problems);
    out.push({ types: type ? [type] : [], text: `${type ?? '?'} ${s.text}`, match: s.match });
  });
  // The deprecated untyped list matches any SAN kind (Envoy checks DNS, URI, email and IP).
  (v.match_subject_alt_names ?? []).forEach((m, i) => {
    const s = compileStringMatcher(m, `${path}.match_subject_alt_names[${i}]`, problems);
    out.push({ types: ['DNS', 'URI', 'IP Address', 'email'], text: `any SAN ${s.text}`, match: s.match });
  });
  return out;
}

/** Splits node:tls's `subjectaltname` string ("URI:a, DNS:b") into typed entries. */
export function parseSubjectAltName(subjectaltname: string | undefined): San[] {
  const out: San[] = [];
  if (!subjectaltname) return out;
  for (const part of subjectaltname.split(', ')) {
    const i = part.indexOf(':');
    if (i > 0) out.push({ type: part.slice(0, i), value: part.slice(i + 1).replace(/^"(.*)"$/, '$1') });
  }
  return out;
}

/** Envoy: with no matchers every certificate passes; otherwise one SAN matching one matcher is enough. */
export function sansMatch(matchers: readonly SanMatcher[], sans: readonly San[]): boolean {
  if (matchers.length === 0) return true;
  for (const m of matchers) for (const san of sans) if (m.types.includes(san.type as SanType) && m.match(san.value)) return true;
  return false;
}
