// Local mode's caller authentication: bootstrap tokens, each allowing one identity (namespace, service account), read from a file or issued by `trellis up`.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { describeError } from '../common/errors.js';
import { CaError } from './ca-error.js';
import { identityProblem } from './identity.js';

export interface TokenIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

// Tokens are kept by their SHA-256: a lookup's timing then tells nothing about the stored token's bytes.
function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Parses a token file: one `token namespace serviceaccount` per line; blank lines and `#` comments ignored. */
export function parseTokenFile(file: string, text: string): Map<string, TokenIdentity> {
  const out = new Map<string, TokenIdentity>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) return problems.push(`${file}:${i + 1}: expected "token namespace serviceaccount", got ${parts.length} field(s)`);
    const [token, namespace, serviceAccount] = parts as [string, string, string];
    const problem = identityProblem(namespace, serviceAccount);
    if (problem) return problems.push(`${file}:${i + 1}: ${problem}`);
    if (token.length < 16) return problems.push(`${file}:${i + 1}: token is ${token.length} characters; at least 16 are required`);
    out.set(digest(token), { namespace, serviceAccount });
  });
  if (problems.length > 0) throw new CaError('TRELLIS_CA_TOKEN_FILE_INVALID', problems.join('; '));
  return out;
}

/**
 * The tokens the CA accepts. Tokens issued through `issue()` live in memory (and are appended to the token
 * file when there is one); the file is re-read when it changed, so a token written by another process works
 * without a restart.
 */
export class BootstrapTokens {
  private fromFile = new Map<string, TokenIdentity>();
  private readonly issued = new Map<string, TokenIdentity>();
  private fileStamp = '';

  constructor(private readonly file?: string) {
    if (file) this.reload(true);
  }

  /** A new random token for `namespace`/`serviceAccount` (what `trellis up` hands each workload's agent). */
  issue(namespace: string, serviceAccount: string): string {
    const problem = identityProblem(namespace, serviceAccount);
    if (problem) throw new CaError('TRELLIS_CA_TOKEN_FILE_INVALID', `cannot issue a token: ${problem}`);
    const token = randomBytes(32).toString('base64url');
    this.issued.set(digest(token), { namespace, serviceAccount });
    return token;
  }

  /** The identity a token allows, or undefined for an unknown token. */
  identityOf(token: string): TokenIdentity | undefined {
    const key = digest(token);
    const found = this.issued.get(key) ?? this.fromFile.get(key);
    if (found || !this.file) return found;
    this.reload(false);
    return this.fromFile.get(key);
  }

  /** Records a token (e.g. from `trellis up`) in the token file too, so a restarted control plane still accepts it. */
  persist(token: string, namespace: string, serviceAccount: string): void {
    if (!this.file) return;
    appendFileSync(this.file, `${token} ${namespace} ${serviceAccount}\n`, { mode: 0o600 });
  }

  private reload(initial: boolean): void {
    const file = this.file!;
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.mtimeMs}:${st.size}`;
    } catch (err) {
      if (initial) throw new CaError('TRELLIS_CA_TOKEN_FILE_INVALID', `${file}: cannot read: ${describeError(err)}`);
      return;
    }
    if (stamp === this.fileStamp) return;
    const text = readFileSync(file, 'utf8');
    try {
      this.fromFile = parseTokenFile(file, text);
      this.fileStamp = stamp;
    } catch (err) {
      // At start-up a bad file stops the control plane; later, the previous content stays in force.
      if (initial) throw err;
    }
  }
}
