// Finds the config files under a directory: *.yaml, *.yml and *.json, recursively, skipping hidden entries.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const EXTENSIONS = ['.yaml', '.yml', '.json'];

export interface ConfigTree {
  /** Config files, sorted by path (the order that decides which of two definitions wins). */
  files: string[];
  /** Every directory scanned, the root first, for watchers. */
  directories: string[];
}

export function isConfigFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * Lists the tree under `root`. Hidden files and directories are skipped: editors' swap files, `.git`, and the `..data`
 * directories Kubernetes ConfigMap volumes hold beside their symlinks (which would otherwise load everything twice).
 * Symlinks to files are followed, symlinks to directories are not (no loops). Entries that vanish mid-scan are skipped.
 * Throws only when `root` itself cannot be read.
 */
export async function scanConfigTree(root: string): Promise<ConfigTree> {
  const files: string[] = [];
  const directories: string[] = [];
  const visit = async (dir: string, isRoot: boolean): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isRoot) throw err;
      return; // a subdirectory removed while scanning: its files are gone
    }
    directories.push(dir);
    const subdirs: string[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) subdirs.push(path);
      else if (entry.isFile() && isConfigFile(entry.name)) files.push(path);
      else if (entry.isSymbolicLink() && isConfigFile(entry.name)) {
        const target = await stat(path).catch(() => undefined);
        if (target?.isFile()) files.push(path);
      }
    }
    for (const sub of subdirs) await visit(sub, false);
  };
  await visit(root, true);
  files.sort(comparePaths);
  return { files, directories };
}

/** Plain code-unit order: deterministic on every platform and locale. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
