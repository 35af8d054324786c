// Gateway (networking.istio.io): the ports, hosts and TLS a gateway proxy serves, field names as in Istio's YAML.
import type { Port } from './common.js';

export interface GatewaySpec {
  selector?: Record<string, string>;
  servers?: Server[];
}

export interface Server {
  port?: Port;
  bind?: string;
  /** `host`, `*.example.com`, or `namespace/host` (namespace `*` or `.` allowed). */
  hosts?: string[];
  tls?: ServerTLSSettings;
  defaultEndpoint?: string;
  name?: string;
}

export const SERVER_TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'] as const;
export const TLS_PROTOCOL_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: (typeof SERVER_TLS_MODES)[number];
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  credentialName?: string;
  credentialNames?: string[];
  subjectAltNames?: string[];
  verifyCertificateSpki?: string[];
  verifyCertificateHash?: string[];
  minProtocolVersion?: (typeof TLS_PROTOCOL_VERSIONS)[number];
  maxProtocolVersion?: (typeof TLS_PROTOCOL_VERSIONS)[number];
  cipherSuites?: string[];
}
