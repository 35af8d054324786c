// x-forwarded-client-cert (XFCC) as Envoy's HCM writes it: forward_client_cert_details and set_current_client_cert_details.
import type { envoy } from '../../xds/generated/types.js';
import type { HttpHeaders } from './headers.js';
import type { DownstreamTlsInfo } from './stream-info.js';

type HttpConnectionManagerConfig = envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;

export const XFCC_HEADER = 'x-forwarded-client-cert';

export type ForwardClientCertMode = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
type Detail = 'Cert' | 'Chain' | 'Subject' | 'URI' | 'DNS';

export interface ClientCertDetailsConfig {
  readonly mode: ForwardClientCertMode;
  /** In Envoy's order (Cert, Chain, Subject, URI, DNS); By and Hash always come first. */
  readonly details: readonly Detail[];
}

const MODES = new Set<string>(['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY']);

/** Reads the two HCM fields; throws on an unknown mode (the HCM's compile turns it into a NACK). */
export function compileClientCertDetails(config: HttpConnectionManagerConfig): ClientCertDetailsConfig {
  const mode = String(config.forward_client_cert_details ?? 'SANITIZE');
  if (!MODES.has(mode)) throw new Error(`forward_client_cert_details: unknown value ${mode}`);
  const s = config.set_current_client_cert_details;
  const details: Detail[] = [];
  if (s?.cert) details.push('Cert');
  if (s?.chain) details.push('Chain');
  if (s?.subject?.value) details.push('Subject');
  if (s?.uri) details.push('URI');
  if (s?.dns) details.push('DNS');
  return { mode: mode as ForwardClientCertMode, details };
}

/** Envoy's urlEncodedPemEncodedPeerCertificate: only these characters are escaped. */
function urlEncodePem(pem: string): string {
  return pem.replace(/[\n +/=]/g, (c) => ({ '\n': '%0A', ' ': '%20', '+': '%2B', '/': '%2F', '=': '%3D' })[c]!);
}

/** This hop's element: `By=<local URI SAN>;Hash=<sha256>;Cert="…";Chain="…";Subject="…";URI=…;DNS=…`. */
export function currentClientCertElement(tls: DownstreamTlsInfo, details: readonly Detail[]): string {
  const parts: string[] = [];
  for (const uri of tls.localUriSans ?? []) parts.push(`By=${uri}`);
  if (tls.peerCertificateSha256) parts.push(`Hash=${tls.peerCertificateSha256}`);
  for (const d of details) {
    switch (d) {
      case 'Cert':
        if (tls.peerCertificatePem) parts.push(`Cert="${urlEncodePem(tls.peerCertificatePem)}"`);
        break;
      case 'Chain':
        if (tls.peerCertificateChainPem) parts.push(`Chain="${urlEncodePem(tls.peerCertificateChainPem)}"`);
        break;
      case 'Subject':
        // Envoy writes the key even when the subject is empty.
        parts.push(`Subject="${tls.peerSubject ?? ''}"`);
        break;
      case 'URI': {
        const uris = tls.peerUris ?? [];
        if (uris.length === 0) parts.push('URI=');
        for (const u of uris) parts.push(`URI=${u}`);
        break;
      }
      case 'DNS':
        for (const d2 of tls.peerDnsSans ?? []) parts.push(`DNS=${d2}`);
        break;
    }
  }
  return parts.join(';');
}

/** A peer certificate was presented (Envoy: ssl() && peerCertificatePresented()). */
function isMutualTls(tls: DownstreamTlsInfo | undefined): tls is DownstreamTlsInfo {
  return tls !== undefined && (tls.peerCertificateSha256 !== undefined || tls.peerCertificatePem !== undefined);
}

/** Rewrites the request's XFCC header per the mode (Envoy's ConnectionManagerUtility::mutateXfccRequestHeader). */
export function applyClientCertDetails(headers: HttpHeaders, tls: DownstreamTlsInfo | undefined, config: ClientCertDetailsConfig): void {
  if (config.mode === 'ALWAYS_FORWARD_ONLY') return;
  if (config.mode === 'SANITIZE' || !isMutualTls(tls)) {
    // `delete` of an absent name is still a runtime call; most requests carry no XFCC.
    if (headers[XFCC_HEADER] !== undefined) delete headers[XFCC_HEADER];
    return;
  }
  if (config.mode === 'FORWARD_ONLY') return;
  const element = currentClientCertElement(tls, config.details);
  if (config.mode === 'SANITIZE_SET') {
    headers[XFCC_HEADER] = element;
    return;
  }
  const prev = headers[XFCC_HEADER];
  const text = Array.isArray(prev) ? prev.join(',') : prev;
  headers[XFCC_HEADER] = text ? `${text},${element}` : element;
}
