// Istio's rules for names: DNS labels, hosts (FQDN, short, wildcard), IPs and CIDRs, label keys and values.
import { isIP } from 'node:net';
import { keyPath } from '../problem.js';
import { asObject, asString, isSet, type Checker } from './checker.js';

// Istio's labels.IsDNS1123Label accepts upper case too (hosts are case-insensitive); Kubernetes names do not.
const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(?:\*|\*-?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?|[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const K8S_DNS1123_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const K8S_DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Kubernetes object names (`metadata.name`): lower-case DNS-1123 subdomain, at most 253 characters. */
export function isKubeName(s: string): boolean {
  return s.length <= 253 && K8S_DNS1123_SUBDOMAIN.test(s);
}

/** Kubernetes namespaces: lower-case DNS-1123 label. */
export function isKubeLabelName(s: string): boolean {
  return s.length <= 63 && K8S_DNS1123_LABEL.test(s);
}

export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

function dnsLabelsProblem(domain: string, full: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1]!;
  if (/^[0-9]+$/.test(tld)) return `domain name ${JSON.stringify(full)} invalid (top level domain ${JSON.stringify(tld)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    if (i === parts.length - 1 && label === '' && i > 0) return undefined; // `istio.io.` is an unambiguous FQDN
    if (!isDns1123Label(label)) return `domain name ${JSON.stringify(full)} invalid (label ${JSON.stringify(label)} invalid)`;
  }
  return undefined;
}

function lengthProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty domain name not allowed';
  if (name.length > 255) return `domain name ${JSON.stringify(name)} too long (max 255)`;
  return undefined;
}

/** An FQDN or short name; returns what is wrong, or undefined. (Istio: ValidateFQDN.) */
export function fqdnProblem(name: string): string | undefined {
  return lengthProblem(name) ?? dnsLabelsProblem(name, name);
}

/** A host that may start with a wildcard label (`*`, `*.example.com`, `*-foo.example.com`). (Istio: ValidateWildcardDomain.) */
export function wildcardDomainProblem(name: string): string | undefined {
  const length = lengthProblem(name);
  if (length) return length;
  const dot = name.indexOf('.');
  const first = dot < 0 ? name : name.slice(0, dot);
  if (!WILDCARD_LABEL.test(first) || first.length > 63) return `domain name ${JSON.stringify(name)} invalid (label ${JSON.stringify(first)} invalid)`;
  if (dot < 0) return undefined;
  return dnsLabelsProblem(name.slice(dot + 1), name);
}

/** `10.0.0.1` or `10.0.0.0/16` (IPv4 or IPv6). */
export function cidrProblem(value: string): string | undefined {
  const slash = value.indexOf('/');
  if (slash < 0) return isIpAddress(value) ? undefined : `${JSON.stringify(value)} is not a valid IP address or CIDR block`;
  const ip = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = isIP(ip);
  const max = family === 4 ? 32 : 128;
  if (family === 0 || !/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) return `${JSON.stringify(value)} is not a valid CIDR block`;
  return undefined;
}

/**
 * Label maps (selectors, subset labels, sourceLabels): keys are Kubernetes qualified names with an optional
 * DNS prefix, values at most 63 characters. (Istio: labels.Instance.Validate.)
 */
export function checkLabels(c: Checker, path: string, value: unknown, isSelector = false): Record<string, string> | undefined {
  const obj = asObject(c, path, value);
  if (!obj) return undefined;
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(obj)) {
    const at = keyPath(path, key);
    const v = asString(c, at, isSet(raw) ? raw : '');
    if (v === undefined) continue;
    out[key] = v;
    if (isSelector && (key.includes('*') || v.includes('*'))) {
      c.report(at, `wildcard is not supported in selector: ${JSON.stringify(`${key}=${v}`)}`);
      continue;
    }
    if (!labelKeyValid(key)) c.report(at, `invalid label key ${JSON.stringify(key)} (expected name or prefix/name, alphanumerics with - _ .)`);
    if (v.length > 63 || !LABEL_VALUE.test(v)) c.report(at, `invalid label value ${JSON.stringify(v)} (at most 63 alphanumerics with - _ .)`);
  }
  return out;
}

function labelKeyValid(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) return false;
  if (slash < 0) return true;
  const prefix = key.slice(0, slash);
  return prefix.length > 0 && prefix.length <= 253 && K8S_DNS1123_SUBDOMAIN.test(prefix);
}
