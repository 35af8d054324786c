// RequestAuthentication (security.istio.io): which JWTs a workload accepts and where to find them, field names as in Istio's YAML.
import type { PolicyTargetReference, SecurityWorkloadSelector } from './common.js';

export interface RequestAuthenticationSpec {
  selector?: SecurityWorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JWTRule[];
}

export interface JWTRule {
  issuer: string;
  audiences?: string[];
  /** URL of the issuer's key set; used when `jwks` is not given. */
  jwksUri?: string;
  /** The key set inline, as a JSON string; takes precedence over jwksUri. */
  jwks?: string;
  fromHeaders?: { name: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header: string; claim: string }[];
  /** Istio duration: timeout for fetching jwksUri. */
  timeout?: string;
}
