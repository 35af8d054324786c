// Reloads plugged-in cacerts when their files change (Istio's AUTO_RELOAD_PLUGIN_CERTS): a new intermediate or root is taken up without a restart, the old root kept for the overlap.
import { X509Certificate as NodeX509 } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { describeError } from '../common/errors.js';
import type { CaLogger, CertificateAuthority } from './authority.js';
import { CACERTS_FILES, loadCacerts } from './ca-material.js';

const WATCHED = new Set<string>(Object.values(CACERTS_FILES));

/**
 * Watches `dir`; after its cacerts files stop changing for `settleMs` (an operator copies four files one by one),
 * loads and checks them and, when the signing certificate differs, rotates the CA to them. Files that do not check
 * out are logged and the current material keeps signing.
 */
export function watchCacerts(ca: CertificateAuthority, dir: string, logger: CaLogger, settleMs = 1_000): { close(): void } {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const reload = async (): Promise<void> => {
    try {
      const next = await loadCacerts(dir);
      const current = ca.signingMaterial();
      const same = new NodeX509(Buffer.from(next.issuer.cert.rawData)).fingerprint256 === new NodeX509(Buffer.from(current.issuer.cert.rawData)).fingerprint256 && next.rootPem === current.rootPem;
      if (same || closed) return;
      await ca.rotateRoot({ caCertDir: dir });
    } catch (err) {
      logger.warn(`CA: ${dir} changed but cannot be used, the current certificates keep signing: ${describeError(err)}`);
    }
  };
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, (_event, file) => {
      if (closed || (file && !WATCHED.has(file.toString()))) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => void reload(), settleMs);
      timer.unref();
    });
  } catch (err) {
    logger.warn(`CA: cannot watch ${dir} for new certificates: ${describeError(err)}`);
    return { close: () => undefined };
  }
  watcher.unref();
  watcher.on('error', (err) => logger.warn(`CA: watching ${dir} failed: ${describeError(err)}`));
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher.close();
    },
  };
}
