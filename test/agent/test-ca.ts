// A small CA for the agent's tests: a self-signed root (a second one for rotation overlap) signing workload CSRs, in-process or over IstioCertificateService with TLS and a bearer token.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { CA_SERVICE_DEFINITION, type IstioCertificateRequest, type IstioCertificateResponse } from '../../src/ca/ca-service.js';

const crypto = webcrypto;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

interface Authority {
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

async function selfSigned(name: string): Promise<Authority> {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
      keys,
      signingAlgorithm: EC,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
    },
    crypto,
  );
  return { cert, keys };
}

let serial = 0x1000;

export class TestCa {
  /** Signed CSRs so far. */
  issued = 0;
  /** When set, every call fails with this (the CA is "down"). */
  failWith: Error | undefined;
  /** Extra roots appended to each answer (a root rotation overlap). */
  extraRoots: x509.X509Certificate[] = [];

  private constructor(readonly root: Authority) {}

  static async create(name = 'O=Trellis test CA'): Promise<TestCa> {
    return new TestCa(await selfSigned(name));
  }

  static async otherRoot(name = 'O=Trellis next root'): Promise<x509.X509Certificate> {
    return (await selfSigned(name)).cert;
  }

  get rootPem(): string {
    return this.root.cert.toString('pem');
  }

  /** Signs like Istio's CA: the CSR's public key and URI SANs, the requested validity; answers leaf, root (+ overlap roots). */
  async sign(csrPem: string, validitySeconds: number): Promise<string[]> {
    if (this.failWith) throw this.failWith;
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify(crypto))) throw new Error('CSR signature does not verify');
    const san = csr.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension | null;
    const now = Date.now();
    const leaf = await x509.X509CertificateGenerator.create(
      {
        serialNumber: (serial++).toString(16),
        subject: '',
        issuer: this.root.cert.subject,
        notBefore: new Date(now - 1000),
        notAfter: new Date(now + validitySeconds * 1000),
        signingAlgorithm: EC,
        publicKey: csr.publicKey,
        signingKey: this.root.keys.privateKey,
        extensions: [
          ...(san ? [new x509.SubjectAlternativeNameExtension(san.names.toJSON(), true)] : []),
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        ],
      },
      crypto,
    );
    this.issued += 1;
    return [leaf.toString('pem'), this.rootPem, ...this.extraRoots.map((r) => r.toString('pem'))];
  }

  /** Serves CreateCertificate over TLS on 127.0.0.1 (a serving certificate for IP 127.0.0.1 from the same root), requiring `authorization: Bearer <token>`. */
  async serve(token: string): Promise<{ address: string; close(): Promise<void> }> {
    const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const serving = await x509.X509CertificateGenerator.create(
      {
        serialNumber: 'ff01',
        subject: 'CN=istiod',
        issuer: this.root.cert.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3600_000),
        signingAlgorithm: EC,
        publicKey: keys.publicKey,
        signingKey: this.root.keys.privateKey,
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' }])],
      },
      crypto,
    );
    const keyPem = x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    const server = new grpc.Server();
    server.addService(CA_SERVICE_DEFINITION, {
      CreateCertificate: (call: grpc.ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, callback: grpc.sendUnaryData<IstioCertificateResponse>) => {
        if (call.metadata.get('authorization')[0] !== `Bearer ${token}`) return callback({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
        this.sign(call.request.csr, Number(call.request.validity_duration ?? 0) || 86400).then(
          (chain) => callback(null, { cert_chain: chain }),
          (err: Error) => callback({ code: grpc.status.UNAVAILABLE, details: err.message }),
        );
      },
    });
    const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serving.toString('pem')), private_key: Buffer.from(keyPem) }], false);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
    return {
      address: `127.0.0.1:${port}`,
      close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    };
  }
}
