// Sidecar (networking.istio.io): narrows what a sidecar sees (egress hosts) and how it listens, field names as in Istio's YAML.
import type { Port, WorkloadSelector } from './common.js';
import type { ConnectionPoolSettings } from './destination-rule.js';
import type { ServerTLSSettings } from './gateway.js';

export const CAPTURE_MODES = ['DEFAULT', 'IPTABLES', 'NONE'] as const;
export const OUTBOUND_TRAFFIC_MODES = ['REGISTRY_ONLY', 'ALLOW_ANY'] as const;

export interface SidecarSpec {
  workloadSelector?: WorkloadSelector;
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  outboundTrafficPolicy?: {
    mode?: (typeof OUTBOUND_TRAFFIC_MODES)[number];
    egressProxy?: { host?: string; subset?: string; port?: { number?: number } };
  };
}

export interface IstioIngressListener {
  port?: Port;
  bind?: string;
  captureMode?: (typeof CAPTURE_MODES)[number];
  /** `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT` or `unix:///path`. */
  defaultEndpoint?: string;
  tls?: ServerTLSSettings;
  connectionPool?: ConnectionPoolSettings;
}

export interface IstioEgressListener {
  port?: Port;
  bind?: string;
  captureMode?: (typeof CAPTURE_MODES)[number];
  /** `namespace/dnsName`; namespace may be `*`, `.` or `~`, dnsName may be `*` or `*.suffix`. */
  hosts?: string[];
}
