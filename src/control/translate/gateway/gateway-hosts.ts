// Gateway server hosts (`namespace/host`) and how VirtualService hosts bind to them (Istio's gateway host intersection).
import { hostMatches } from '../../model/hostname.js';

export interface ServerHost {
  /** `*` (any), or the namespace whose VirtualServices may bind. */
  namespace: string;
  host: string;
}

/** `ns/host`, `./host` (the Gateway's namespace), `*\/host` or `host` (any namespace). */
export function parseServerHost(text: string, gatewayNamespace: string): ServerHost {
  const slash = text.indexOf('/');
  if (slash < 0) return { namespace: '*', host: text };
  const namespace = text.slice(0, slash);
  return { namespace: namespace === '.' ? gatewayNamespace : namespace, host: text.slice(slash + 1) };
}

/** The more specific of two hosts when one covers the other (`*` and `a.example.com` → `a.example.com`), else undefined. */
export function intersectHosts(vsHost: string, serverHost: string): string | undefined {
  if (hostMatches(serverHost, vsHost)) return vsHost;
  if (hostMatches(vsHost, serverHost)) return serverHost;
  return undefined;
}
