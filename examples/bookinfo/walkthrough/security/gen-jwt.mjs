#!/usr/bin/env node
// Mints a JWT signed with this walkthrough's sample key (key.pem), like Istio's security/tools/jwt/samples/gen-jwt.py.
// The key is a published sample: anyone can mint tokens with it, so never trust it outside this demo.
//   node gen-jwt.mjs                       → iss/sub testing@secure.trellis.local, expires in 10 years
//   node gen-jwt.mjs --claims groups:group1,group2 --expire 60 --sub alice
//   node gen-jwt.mjs --jwks                → prints the JWKS (the public half) as RequestAuthentication's jwks takes it
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const key = createPrivateKey(readFileSync(fileURLToPath(new URL('./key.pem', import.meta.url))));
const jwk = createPublicKey(key).export({ format: 'jwk' });
// RFC 7638 thumbprint as the key id, so the token names the key it was signed with.
const kid = createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url');

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
if (args.includes('--jwks')) {
  process.stdout.write(`${JSON.stringify({ keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] })}\n`);
  process.exit(0);
}
const now = Math.floor(Date.now() / 1000);
const payload = {
  iss: opt('iss') ?? 'testing@secure.trellis.local',
  sub: opt('sub') ?? 'testing@secure.trellis.local',
  iat: now,
  exp: now + Number(opt('expire') ?? 10 * 365 * 24 * 3600),
};
for (const claim of (opt('claims') ?? '').split(';').filter(Boolean)) {
  const [name, value = ''] = claim.split(':');
  payload[name] = value.includes(',') ? value.split(',') : value;
}
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const input = `${b64({ alg: 'RS256', kid, typ: 'JWT' })}.${b64(payload)}`;
process.stdout.write(`${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}\n`);
