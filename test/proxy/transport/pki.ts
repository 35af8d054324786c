// Test PKI made with the openssl CLI: a CA per trust domain and SPIFFE leaf certificates, including the bad ones
// (expired, not yet valid, self-signed, other trust domain) the proxy must refuse.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
}

export interface LeafOptions {
  /** SPIFFE or other URI SANs. */
  readonly uris?: readonly string[];
  readonly dns?: readonly string[];
  readonly cn?: string;
  /** No subject at all, like Istio's workload certificates (identity only in the SPIFFE URI SAN). */
  readonly emptySubject?: boolean;
  /** openssl ca -startdate/-enddate (YYYYMMDDHHMMSSZ); default: valid from an hour ago for a day. */
  readonly startDate?: string;
  readonly endDate?: string;
}

/** Whether the openssl CLI can run (tests skip with a message where it cannot). */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** openssl's YYYYMMDDHHMMSSZ for `date`. */
export function opensslDate(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

function run(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ecKey(path: string, cwd: string): void {
  run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], cwd);
}

/** A CA for one trust domain; `issue` signs leaves with `openssl ca` so validity dates can be set exactly. */
export class TestCa {
  private readonly dir: string;
  private serial = 0x1000;
  readonly root: Pem;

  constructor(readonly trustDomain: string, dir?: string) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), `trellis-pki-${trustDomain.replace(/[^a-z0-9]/gi, '')}-`));
    const keyPath = join(this.dir, 'ca-key.pem');
    const certPath = join(this.dir, 'ca-cert.pem');
    ecKey(keyPath, this.dir);
    run(['req', '-x509', '-new', '-key', keyPath, '-out', certPath, '-days', '30', '-subj', `/O=${trustDomain}/CN=Root CA`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', `subjectAltName=URI:spiffe://${trustDomain}`], this.dir);
    this.root = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'ca.cnf'), [
      '[ca]', 'default_ca = test_ca', '[test_ca]', `dir = ${this.dir}`, 'database = $dir/index.txt', 'serial = $dir/serial', 'new_certs_dir = $dir',
      'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none', 'email_in_dn = no',
      '[any]', 'organizationName = optional', 'commonName = optional', '',
    ].join('\n'));
  }

  /** Signs a new leaf (fresh EC key) for the SPIFFE identity `ns/<ns>/sa/<sa>` or the given SANs. */
  issue(name: string, options: LeafOptions = {}): Pem & { readonly serial: string } {
    const keyPath = join(this.dir, `${name}-key.pem`);
    const csrPath = join(this.dir, `${name}.csr`);
    const certPath = join(this.dir, `${name}-cert.pem`);
    const extPath = join(this.dir, `${name}.ext`);
    ecKey(keyPath, this.dir);
    run(['req', '-new', '-key', keyPath, '-out', csrPath, '-subj', options.emptySubject ? '/' : `/O=${this.trustDomain}/CN=${options.cn ?? name}`], this.dir);
    const sans = [...(options.uris ?? []).map((u) => `URI:${u}`), ...(options.dns ?? []).map((d) => `DNS:${d}`)];
    writeFileSync(extPath, [
      'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth,clientAuth',
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []), '',
    ].join('\n'));
    const serial = (this.serial++).toString(16).toUpperCase();
    const now = Date.now();
    writeFileSync(join(this.dir, 'serial'), `${serial.length % 2 ? '0' : ''}${serial}\n`);
    run(['ca', '-batch', '-config', join(this.dir, 'ca.cnf'), '-cert', this.root.certPath, '-keyfile', this.root.keyPath,
      '-in', csrPath, '-out', certPath, '-notext', '-extfile', extPath,
      '-startdate', options.startDate ?? opensslDate(new Date(now - 3600_000)), '-enddate', options.endDate ?? opensslDate(new Date(now + 86400_000))], this.dir);
    return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath, serial };
  }

  /** A self-signed leaf (no CA) with the same kind of SANs: must be refused by a proxy that trusts this CA. */
  selfSigned(name: string, uris: readonly string[]): Pem {
    const keyPath = join(this.dir, `${name}-key.pem`);
    const certPath = join(this.dir, `${name}-cert.pem`);
    ecKey(keyPath, this.dir);
    run(['req', '-x509', '-new', '-key', keyPath, '-out', certPath, '-days', '1', '-subj', `/O=${this.trustDomain}/CN=${name}`,
      '-addext', `subjectAltName=${uris.map((u) => `URI:${u}`).join(',')}`], this.dir);
    return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
  }
}

/** `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export function spiffe(trustDomain: string, ns: string, sa: string): string {
  return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
}
