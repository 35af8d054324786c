// Self-signed gateway certificates for a local mesh, made once with openssl (skipped, with a note, where openssl is missing).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CertificateSpec } from './manifest.js';

export type CertificateResult = { readonly ok: true; readonly created: boolean } | { readonly ok: false; readonly reason: string };

/** Makes `spec`'s certificate and key unless both exist: RSA 2048, 365 days, the hosts as DNS/IP SANs. */
export function ensureCertificate(spec: CertificateSpec): CertificateResult {
  if (existsSync(spec.cert) && existsSync(spec.key)) return { ok: true, created: false };
  const version = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) return { ok: false, reason: 'openssl is not installed (apt-get install openssl)' };
  mkdirSync(dirname(spec.cert), { recursive: true });
  mkdirSync(dirname(spec.key), { recursive: true });
  const hosts = spec.hosts.length > 0 ? spec.hosts : ['localhost'];
  const san = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? `IP:${h}` : `DNS:${h}`)).join(',');
  const result = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '365', '-subj', `/CN=${hosts[0]}/O=Trellis local mesh`, '-addext', `subjectAltName=${san}`, '-keyout', spec.key, '-out', spec.cert],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) return { ok: false, reason: `openssl req failed: ${(result.stderr || result.error?.message || '').trim().split('\n').pop()}` };
  return { ok: true, created: true };
}
