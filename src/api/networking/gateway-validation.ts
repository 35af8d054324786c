// Gateway validation (servers, ports, hosts as `namespace/host`, TLS credentials by mode), after Istio's rules.
import { fieldPath, indexPath } from '../problem.js';
import { asBoolean, asEnum, asObject, asString, asStringList, eachObject, isSet, type Checker, type Obj } from '../validation/checker.js';
import { checkLabels, isDns1123Label, isIpAddress, wildcardDomainProblem } from '../validation/names.js';
import { checkPort } from './common-validation.js';
import { SERVER_TLS_MODES, TLS_PROTOCOL_VERSIONS } from './gateway.js';

const TLS_PROTOCOLS = ['HTTPS', 'TLS'];
const HTTP_PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY'];

export function validateGateway(c: Checker, spec: unknown, _namespace: string, name: string): void {
  if (!isDns1123Label(name)) c.report('metadata.name', `invalid gateway name ${JSON.stringify(name)} (expected a DNS-1123 label, no dots)`);
  const gw = asObject(c, 'spec', spec, ['selector', 'servers']);
  if (!gw) return;
  checkLabels(c, 'spec.selector', gw.selector, true);
  const servers = eachObject(c, 'spec.servers', gw.servers, ['port', 'bind', 'hosts', 'tls', 'defaultEndpoint', 'name'], (s, p) => validateServer(c, p, s));
  if (servers.length === 0 && !(Array.isArray(gw.servers) && gw.servers.length > 0)) c.report('spec.servers', 'gateway must have at least one server');

  const portNames = new Map<string, number>();
  servers.forEach((s, i) => {
    const port = s.port as Obj | undefined;
    const portName = port && typeof port.name === 'string' ? port.name : undefined;
    if (!portName) return;
    if (portNames.has(portName)) c.report(fieldPath(indexPath('spec.servers', i), 'port.name'), `port names in servers must be unique: duplicate name ${portName}`);
    else portNames.set(portName, i);
  });
}

function validateServer(c: Checker, path: string, server: Obj): void {
  const hosts = asStringList(c, fieldPath(path, 'hosts'), server.hosts) ?? [];
  if (hosts.length === 0) c.report(fieldPath(path, 'hosts'), 'server config must contain at least one host');
  hosts.forEach((h, i) => checkGatewayHost(c, indexPath(fieldPath(path, 'hosts'), i), h));

  const before = c.problems.length;
  const port = checkPort(c, fieldPath(path, 'port'), server.port, { number: true, name: true, protocol: true });
  const portValid = port !== undefined && c.problems.length === before;
  asString(c, fieldPath(path, 'bind'), server.bind);
  asString(c, fieldPath(path, 'defaultEndpoint'), server.defaultEndpoint);
  asString(c, fieldPath(path, 'name'), server.name);

  const tlsPath = fieldPath(path, 'tls');
  const tls = asObject(c, tlsPath, server.tls, [
    'httpsRedirect', 'mode', 'serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'credentialNames',
    'subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash', 'minProtocolVersion', 'maxProtocolVersion', 'cipherSuites',
  ]);
  if (tls) validateServerTls(c, tlsPath, tls);

  if (portValid && port) {
    const protocol = String(port.protocol).toUpperCase();
    if (TLS_PROTOCOLS.includes(protocol) && !tls) c.report(tlsPath, 'server must have TLS settings for HTTPS/TLS protocols');
    else if (!TLS_PROTOCOLS.includes(protocol) && tls) {
      const onlyRedirect = Object.keys(tls).every((k) => k === 'httpsRedirect' || (k === 'mode' && tls.mode === 'PASSTHROUGH'));
      if (!HTTP_PROTOCOLS.includes(protocol)) c.report(tlsPath, 'server cannot have TLS settings for non HTTPS/TLS ports');
      else if (!onlyRedirect) c.report(tlsPath, 'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect)');
    }
  }
}

/** `host`, `*.example.com`, or `namespace/host`; gateways allow IPs but not short names. */
function checkGatewayHost(c: Checker, path: string, value: string): void {
  let host = value;
  const slash = value.indexOf('/');
  if (slash >= 0) {
    const ns = value.slice(0, slash);
    host = value.slice(slash + 1);
    if (!ns || !host) {
      c.report(path, 'config namespace and dnsName in host entry cannot be empty');
      return;
    }
    if (ns !== '*' && ns !== '.' && !isDns1123Label(ns)) c.report(path, `invalid namespace value ${JSON.stringify(ns)} in gateway`);
  }
  if (host !== '*' && !host.includes('.')) c.report(path, `short names (non FQDN) are not allowed: ${JSON.stringify(host)}`);
  else if (host !== '*') {
    const problem = wildcardDomainProblem(host);
    if (problem && !isIpAddress(host)) c.report(path, problem);
  }
}

function validateServerTls(c: Checker, path: string, tls: Obj): void {
  asBoolean(c, fieldPath(path, 'httpsRedirect'), tls.httpsRedirect);
  const mode = asEnum(c, fieldPath(path, 'mode'), tls.mode, SERVER_TLS_MODES) ?? (isSet(tls.mode) ? undefined : 'PASSTHROUGH');
  const str = (k: string) => asString(c, fieldPath(path, k), tls[k]) ?? '';
  const serverCertificate = str('serverCertificate');
  const privateKey = str('privateKey');
  const caCertificates = str('caCertificates');
  const credentialName = str('credentialName');
  str('caCrl');
  const credentialNames = asStringList(c, fieldPath(path, 'credentialNames'), tls.credentialNames, false) ?? [];
  for (const k of ['subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash', 'cipherSuites']) asStringList(c, fieldPath(path, k), tls[k], false);
  asEnum(c, fieldPath(path, 'minProtocolVersion'), tls.minProtocolVersion, TLS_PROTOCOL_VERSIONS);
  asEnum(c, fieldPath(path, 'maxProtocolVersion'), tls.maxProtocolVersion, TLS_PROTOCOL_VERSIONS);
  if (credentialName && credentialNames.length) c.report(path, 'only one of credentialName or credentialNames may be set');

  if (mode === 'ISTIO_MUTUAL') {
    if (serverCertificate) c.report(fieldPath(path, 'serverCertificate'), 'ISTIO_MUTUAL TLS cannot have associated server certificate');
    if (privateKey) c.report(fieldPath(path, 'privateKey'), 'ISTIO_MUTUAL TLS cannot have associated private key');
    if (caCertificates) c.report(fieldPath(path, 'caCertificates'), 'ISTIO_MUTUAL TLS cannot have associated CA bundle');
    if (credentialName) c.report(fieldPath(path, 'credentialName'), 'ISTIO_MUTUAL TLS cannot have associated credentialName');
    return;
  }
  const terminates = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (!terminates) return;
  // With credentialName (a secret) the certificates come over SDS, so the file fields are not needed.
  if (credentialName || credentialNames.length) return;
  if (!serverCertificate) c.report(fieldPath(path, 'serverCertificate'), `${mode} TLS requires a server certificate (serverCertificate and privateKey, or credentialName)`);
  if (!privateKey) c.report(fieldPath(path, 'privateKey'), `${mode} TLS requires a private key (serverCertificate and privateKey, or credentialName)`);
  if (mode !== 'SIMPLE' && !caCertificates) c.report(fieldPath(path, 'caCertificates'), `${mode} TLS requires a client CA bundle`);
}
