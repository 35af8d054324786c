#!/usr/bin/env node
// Copies the non-TypeScript files the build needs (the generated protobuf descriptor, the dashboard's page) into dist/.
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const assets = ['src/xds/generated/envoy-descriptor.json', 'src/dashboard/page/index.html'];
for (const asset of assets) {
  const target = join(repo, 'dist', asset);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(repo, asset), target);
}
