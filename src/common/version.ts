// The package version, read once from package.json so --version and node metadata agree.
import { readFileSync } from 'node:fs';

const packageJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string; name: string };

export const TRELLIS_VERSION: string = packageJson.version;
