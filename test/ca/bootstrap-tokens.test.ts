// Bootstrap tokens: the token file's format (with line numbers on errors), issued tokens, and a file edited while running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BootstrapTokens } from '../../src/ca/bootstrap-tokens.js';
import { CaError } from '../../src/ca/ca-error.js';
import { tempDir } from './ca-fixtures.js';

test('a token file maps each token to its identity; comments and blank lines are skipped', () => {
  const tmp = tempDir('tokens');
  try {
    const file = join(tmp.dir, 'tokens');
    writeFileSync(file, '# local mesh tokens\n\ntoken-productpage-0123456789 default productpage\n  token-reviews-0123456789abc   bookinfo   reviews-v2  \n');
    const tokens = new BootstrapTokens(file);
    assert.deepEqual(tokens.identityOf('token-productpage-0123456789'), { namespace: 'default', serviceAccount: 'productpage' });
    assert.deepEqual(tokens.identityOf('token-reviews-0123456789abc'), { namespace: 'bookinfo', serviceAccount: 'reviews-v2' });
    assert.equal(tokens.identityOf('token-productpage-012345678'), undefined, 'a prefix is not the token');
    assert.equal(tokens.identityOf(''), undefined);
  } finally {
    tmp.remove();
  }
});

test('a bad token file is refused with every problem and its line', () => {
  const tmp = tempDir('tokens-bad');
  try {
    const file = join(tmp.dir, 'tokens');
    writeFileSync(file, 'only-two-fields default\nshort default productpage\ntoken-0123456789abcdef Default productpage\ntoken-0123456789abcdef default product_page\n');
    assert.throws(() => new BootstrapTokens(file), (err: unknown) => {
      assert.ok(err instanceof CaError);
      assert.equal(err.code, 'TRELLIS_CA_TOKEN_FILE_INVALID');
      assert.match(err.message, /tokens:1: expected "token namespace serviceaccount", got 2 field\(s\)/);
      assert.match(err.message, /tokens:2: token is 5 characters; at least 16 are required/);
      assert.match(err.message, /tokens:3: namespace "Default" is not a DNS-1123 label/);
      assert.match(err.message, /tokens:4: service account "product_page" is not a DNS-1123 subdomain/);
      return true;
    });
    assert.throws(() => new BootstrapTokens(join(tmp.dir, 'missing')), /missing: cannot read/);
  } finally {
    tmp.remove();
  }
});

test('issued tokens are random per call and map to their identity; a line appended to the file is picked up', () => {
  const tmp = tempDir('tokens-issue');
  try {
    const file = join(tmp.dir, 'tokens');
    writeFileSync(file, '');
    const tokens = new BootstrapTokens(file);
    const a = tokens.issue('default', 'details');
    const b = tokens.issue('default', 'details');
    assert.notEqual(a, b);
    assert.ok(a.length >= 40);
    assert.deepEqual(tokens.identityOf(a), { namespace: 'default', serviceAccount: 'details' });
    assert.throws(() => tokens.issue('Bad NS', 'x'), /cannot issue a token/);
    assert.equal(tokens.identityOf('added-later-0123456789'), undefined);
    appendFileSync(file, 'added-later-0123456789 default ratings\n');
    assert.deepEqual(tokens.identityOf('added-later-0123456789'), { namespace: 'default', serviceAccount: 'ratings' });
    tokens.persist(a, 'default', 'details');
    assert.deepEqual(new BootstrapTokens(file).identityOf(a), { namespace: 'default', serviceAccount: 'details' }, 'a persisted token survives a restart');
  } finally {
    tmp.remove();
  }
});
