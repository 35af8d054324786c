// trellis iptables: the rules for Istio's own test flag sets equal Istio's golden files; bad flags are refused by flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigValidationError } from '../../../src/common/errors.js';
import { CAPTURE_DEFAULTS, parseCaptureFlags, parseIpv4Cidr, resolvConfServersV4, type CaptureFlags } from '../../../src/agent/capture/capture-config.js';
import { buildCaptureRules } from '../../../src/agent/capture/iptables-rules.js';

const bin = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../../test/fixtures/istio-iptables/', import.meta.url));

/** Istio's golden file less its header comment and the save commands its test stub records (they are not rules). */
function golden(name: string): string {
  return readFileSync(join(fixtures, `${name}.golden`), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#') && l !== 'iptables-save' && l !== 'ip6tables-save' && l !== '')
    .map((l) => `${l}\n`)
    .join('');
}

/** Istio's test config (constructTestConfig): no inbound capture, no outbound ranges unless the case sets them. */
function flags(overrides: Partial<CaptureFlags>): CaptureFlags {
  return { ...CAPTURE_DEFAULTS, inboundPorts: '', localExcludePorts: '', serviceCidr: '', redirectDns: false, captureAllDns: false, ...overrides };
}

const CASES: readonly [string, Partial<CaptureFlags>][] = [
  ['outbound-ports-include', { outboundPorts: '32000,31000' }],
  ['outbound-ports-exclude', { localOutboundPortsExclude: '22,80,443' }],
  ['outbound-ports-exclude-single', { localOutboundPortsExclude: '22' }],
  ['inbound-wildcard-exclude', { inboundPorts: '*', localExcludePorts: '22,80,443' }],
  ['loopback-outbound-iprange', { serviceCidr: '127.1.2.3/32', redirectDns: true, resolvConf: 'nameserver 127.0.0.53\n', proxyUid: '3,4', proxyGid: '1,2' }],
];

for (const [name, overrides] of CASES) {
  test(`rules equal Istio's ${name}.golden`, () => {
    assert.equal(buildCaptureRules(parseCaptureFlags(flags(overrides))), golden(name));
  });
}

test('trellis iptables --dry-run prints the golden rules for the same command-line flags and changes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-iptables-'));
  try {
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, '# comment\nsearch example\nnameserver 127.0.0.53\nnameserver ::1\n');
    const out = execFileSync(process.execPath, [bin, 'iptables', '--dry-run', '-b', '', '-d', '', '-i', '127.1.2.3/32', '--redirect-dns', '--resolv-conf', resolv, '-u', '3,4', '-g', '1,2', '--iptables-variant', 'nft'], { encoding: 'utf8' });
    assert.equal(out, golden('loopback-outbound-iprange'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("defaults are the injector's: every inbound port but 15090/15021/15020, every outbound destination, uid and gid 1337", () => {
  const rules = buildCaptureRules(parseCaptureFlags({ ...CAPTURE_DEFAULTS, redirectDns: false, captureAllDns: false }));
  assert.match(rules, /^-A ISTIO_INBOUND -p tcp -m multiport --dports 15090,15021,15020 -j RETURN$/m);
  assert.match(rules, /^-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT$/m);
  assert.match(rules, /^-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN$/m);
  assert.ok(rules.trimEnd().endsWith('-A ISTIO_OUTPUT -j ISTIO_REDIRECT\nCOMMIT'), rules);
});

test('-x ranges return before -i ranges redirect; CIDRs print as networks', () => {
  const rules = buildCaptureRules(parseCaptureFlags(flags({ serviceCidr: '10.0.0.0/8,192.168.1.7', serviceExcludeCidr: '10.1.2.3/16' })));
  const lines = rules.split('\n');
  const exclude = lines.indexOf('-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN');
  assert.ok(exclude > 0, rules);
  assert.ok(lines.indexOf('-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT') > exclude, rules);
  assert.ok(lines.includes('-A ISTIO_OUTPUT -d 192.168.1.7/32 -j ISTIO_REDIRECT'), rules);
});

test('--capture-all-dns redirects every port-53 packet, not only to the resolv.conf servers', () => {
  const rules = buildCaptureRules(parseCaptureFlags(flags({ redirectDns: true, captureAllDns: true })));
  assert.match(rules, /^-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports 15053$/m);
  assert.match(rules, /^-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053$/m);
  assert.match(rules, /^-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1$/m);
});

test('-c interfaces are returned before anything is captured', () => {
  const rules = buildCaptureRules(parseCaptureFlags(flags({ excludeInterfaces: 'eth9' })));
  const lines = rules.split('\n');
  assert.equal(lines[5], '-A PREROUTING -i eth9 -j RETURN');
  assert.equal(lines[6], '-A OUTPUT -o eth9 -j RETURN');
});

test('every bad flag is reported with the flag that carries it', () => {
  const bad = flags({
    proxyPort: '70000',
    inboundCapturePort: 'abc',
    inboundTunnelPort: '0',
    proxyUid: 'root;rm',
    inboundInterceptionMode: 'BRIDGE',
    inboundPorts: '80,x',
    localExcludePorts: '-1',
    serviceCidr: '10.0.0.0/33,300.1.1.1/8,fd00::/8,10.0.0.0/8/1,10.0.0.0/x',
    serviceExcludeCidr: '*',
    outboundPorts: '99999',
    localOutboundPortsExclude: 'ssh',
    excludeInterfaces: 'eth0 ; reboot',
    captureAllDns: true,
  });
  assert.throws(() => parseCaptureFlags(bad), (err: unknown) => {
    assert.ok(err instanceof ConfigValidationError);
    const d = err.details.join('\n');
    for (const expected of [
      /^-p: "70000" is not a port number/m,
      /^-z: "abc" is not a port number/m,
      /^-e: port 0 cannot be a redirect target/m,
      /^-u: "root;rm" is not a user or group name or id/m,
      /^-g: "root;rm"/m,
      /^-m: "BRIDGE" is not an interception mode/m,
      /^-b: "x" is not a port number/m,
      /^-d: "-1" is not a port number/m,
      /^-i: "10.0.0.0\/33": the prefix length must be 0-32/m,
      /^-i: "300.1.1.1\/8" is not an IPv4 address or CIDR/m,
      /^-i: "fd00::\/8" is an IPv6 range/m,
      /^-i: "10.0.0.0\/8\/1" is not a CIDR/m,
      /^-i: "10.0.0.0\/x": the prefix length must be a number/m,
      /^-x: "\*" would exclude every destination/m,
      /^-q: "99999" is not a port number/m,
      /^-o: "ssh" is not a port number/m,
      /^-c: "eth0 ; reboot" is not an interface name/m,
      /^--capture-all-dns: only applies with --redirect-dns/m,
    ]) assert.match(d, expected);
    return true;
  });
});

test('-m TPROXY is refused with what to use instead; empty -u is refused', () => {
  assert.throws(() => parseCaptureFlags(flags({ inboundInterceptionMode: 'tproxy' })), /-m TPROXY: not supported yet .*use -m REDIRECT/);
  assert.throws(() => parseCaptureFlags(flags({ proxyUid: '' })), /-u: at least one user or group is required/);
});

test('CIDR and resolv.conf parsing', () => {
  assert.deepEqual(parseIpv4Cidr('10.1.2.3/8'), { network: '10.0.0.0', prefixLen: 8 });
  assert.deepEqual(parseIpv4Cidr('0.0.0.0/0'), { network: '0.0.0.0', prefixLen: 0 });
  assert.deepEqual(parseIpv4Cidr('1.2.3.4'), { network: '1.2.3.4', prefixLen: 32 });
  assert.deepEqual(resolvConfServersV4('nameserver 10.96.0.10\n  nameserver   8.8.8.8 # x\nnameserver fe80::1\noptions ndots:5\n'), ['10.96.0.10', '8.8.8.8']);
});

test('trellis iptables exits 1 with every problem on stderr and prints no rules for bad flags', () => {
  const r = spawnSync(process.execPath, [bin, 'iptables', '--dry-run', '-i', '10.0.0.0/40', '-p', 'abc'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /-p: "abc" is not a port number/);
  assert.match(r.stderr, /-i: "10.0.0.0\/40": the prefix length must be 0-32/);
  const variant = spawnSync(process.execPath, [bin, 'iptables', '--dry-run', '--iptables-variant', 'iptables-foo'], { encoding: 'utf8' });
  assert.notEqual(variant.status, 0);
  assert.match(variant.stderr, /--iptables-variant.*expected one of auto, nft, legacy, default/);
  const dns = spawnSync(process.execPath, [bin, 'iptables', '--dry-run', '--redirect-dns', '--resolv-conf', '/nonexistent/resolv.conf'], { encoding: 'utf8' });
  assert.equal(dns.status, 1);
  assert.match(dns.stderr, /--redirect-dns: cannot read the name servers from \/nonexistent\/resolv.conf/);
});
