// IstioCertificateService.CreateCertificate on a grpc.Server: authenticate the caller, sign its CSR for its own identity, answer the chain; every refusal logged with its reason.
import * as grpc from '@grpc/grpc-js';
import { describeError } from '../common/errors.js';
import type { CertificateAuthority } from './authority.js';
import type { TokenIdentity } from './bootstrap-tokens.js';
import type { CallerAuthenticator } from './caller-authentication.js';
import { CaError } from './ca-error.js';
import { CA_SERVICE_DEFINITION, structStrings, type IstioCertificateRequest, type IstioCertificateResponse } from './ca-service.js';

/** Why a request was refused, as counted (Istio's citadel_server_* error counters). */
export type CaRefusal = 'authentication' | 'csr' | 'identity' | 'sign';

/** Hooks for metrics; every one optional. */
export interface CaServiceObserver {
  request?(): void;
  issued?(): void;
  refused?(reason: CaRefusal): void;
}

export interface CaServiceOptions {
  readonly ca: CertificateAuthority;
  readonly authenticator: CallerAuthenticator;
  readonly logger: { info(message: string): void; warn(message: string): void };
  readonly observer?: CaServiceObserver;
}

const STATUS: Readonly<Record<string, { code: grpc.status; refusal: CaRefusal }>> = {
  TRELLIS_CA_UNAUTHENTICATED: { code: grpc.status.UNAUTHENTICATED, refusal: 'authentication' },
  TRELLIS_CA_CSR_INVALID: { code: grpc.status.INVALID_ARGUMENT, refusal: 'csr' },
  TRELLIS_CA_IDENTITY_MISMATCH: { code: grpc.status.PERMISSION_DENIED, refusal: 'identity' },
};

/** Request bytes that are not an IstioCertificateRequest. */
class MalformedRequest {
  constructor(readonly reason: string) {}
}

// grpc-js answers a throwing deserializer with INTERNAL and no reason; a value lets the handler say INVALID_ARGUMENT and why.
const { CreateCertificate: method } = CA_SERVICE_DEFINITION;
const SERVER_DEFINITION = {
  CreateCertificate: {
    ...method,
    requestDeserialize: (bytes: Buffer): IstioCertificateRequest | MalformedRequest => {
      try {
        return method.requestDeserialize(bytes);
      } catch (err) {
        return new MalformedRequest(describeError(err));
      }
    },
  },
};

/** Registers istio.v1.auth.IstioCertificateService on `server` (the secure xDS port's, beside ADS). */
export function addCaService(server: grpc.Server, options: CaServiceOptions): void {
  const { ca, authenticator, logger, observer } = options;
  server.addService(SERVER_DEFINITION, {
    CreateCertificate: (call: grpc.ServerUnaryCall<IstioCertificateRequest | MalformedRequest, IstioCertificateResponse>, callback: grpc.sendUnaryData<IstioCertificateResponse>) => {
      observer?.request?.();
      const peer = safePeer(call);
      const workload = call.request instanceof MalformedRequest ? undefined : structStrings(call.request?.metadata).WorkloadName;
      const who = `${peer}${workload ? ` (WorkloadName ${workload})` : ''}`;
      const refuse = (err: unknown, caller?: TokenIdentity): void => {
        const mapped = err instanceof CaError ? STATUS[err.code] : undefined;
        const code = mapped?.code ?? grpc.status.INTERNAL;
        observer?.refused?.(mapped?.refusal ?? 'sign');
        const as = caller ? ` as ${caller.namespace}/${caller.serviceAccount}` : '';
        logger.warn(`CA: refused CreateCertificate from ${who}${as}: ${grpc.status[code]}: ${describeError(err)}`);
        callback({ code, details: describeError(err) });
      };
      let caller: TokenIdentity;
      try {
        const auth = call.getAuthContext();
        caller = authenticator.authenticate({ metadata: call.metadata, ...(auth.sslPeerCertificate ? { peerCertificate: auth.sslPeerCertificate } : {}) });
      } catch (err) {
        return refuse(err);
      }
      if (call.request instanceof MalformedRequest) return refuse(new CaError('TRELLIS_CA_CSR_INVALID', `request is not an IstioCertificateRequest: ${call.request.reason}`), caller);
      const request = call.request ?? { csr: '' };
      ca.signWorkload(request.csr, caller, request.validity_duration).then(
        (signed) => {
          observer?.issued?.();
          const clamped = signed.clamped ? ` (requested ${request.validity_duration} s, clamped to the maximum)` : '';
          logger.info(`CA: issued ${signed.identity} to ${who}, serial ${signed.leaf.serialNumber}, valid until ${signed.leaf.notAfter.toISOString()}${clamped}`);
          callback(null, { cert_chain: signed.certChain });
        },
        (err: unknown) => refuse(err, caller),
      );
    },
  });
}

function safePeer(call: { getPeer(): string }): string {
  try {
    return call.getPeer();
  } catch {
    return 'unknown peer';
  }
}
