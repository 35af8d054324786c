// Messages several networking kinds share: Port, PortSelector, StringMatch, WorkloadSelector, Percent, Destination.

/** Istio's protocol names (case-insensitive in YAML), as pkg/config/protocol parses them. */
export const PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'HTTP_PROXY', 'MONGO', 'MYSQL', 'REDIS', 'TCP', 'TLS', 'UDP'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface Port {
  number?: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

export interface PortSelector {
  number?: number;
}

/** Exactly one of exact, prefix, regex. */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface WorkloadSelector {
  labels?: Record<string, string>;
}

export interface Percent {
  value?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}
