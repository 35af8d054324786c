// validateResource: every problem in one Istio resource, each with its field path; one validator per kind, registered by kind.
import { ConfigValidationError } from '../common/errors.js';
import type { TypedResource } from './kinds.js';
import { validateDestinationRule } from './networking/destination-rule-validation.js';
import { validateGateway } from './networking/gateway-validation.js';
import { validateServiceEntry, validateWorkloadEntry } from './networking/service-entry-validation.js';
import { validateSidecar } from './networking/sidecar-validation.js';
import { validateVirtualService } from './networking/virtual-service-validation.js';
import { formatProblem, type Problem } from './problem.js';
import { isKind, type IstioResource, type Kind } from './resource.js';
import { validateAuthorizationPolicy, validatePeerAuthentication, validateRequestAuthentication } from './security/security-validation.js';
import { validateTelemetry } from './telemetry/telemetry-validation.js';
import { asObject, asString, asStringMap, Checker } from './validation/checker.js';
import { checkLabels, isKubeLabelName, isKubeName } from './validation/names.js';

/** Checks a resource's spec, reporting into `c` with paths starting at `spec`. */
export type SpecValidator = (c: Checker, spec: unknown, namespace: string, name: string) => void;

const VALIDATORS: { readonly [K in Kind]: SpecValidator } = {
  VirtualService: validateVirtualService,
  DestinationRule: validateDestinationRule,
  Gateway: validateGateway,
  ServiceEntry: validateServiceEntry,
  WorkloadEntry: (c, spec) => validateWorkloadEntry(c, spec),
  Sidecar: (c, spec) => validateSidecar(c, spec),
  PeerAuthentication: (c, spec) => validatePeerAuthentication(c, spec),
  RequestAuthentication: (c, spec) => validateRequestAuthentication(c, spec),
  AuthorizationPolicy: (c, spec) => validateAuthorizationPolicy(c, spec),
  Telemetry: (c, spec) => validateTelemetry(c, spec),
};

/** Every problem in `resource` (metadata and spec), in document order; empty when it is valid. Never throws. */
export function validateResource(resource: IstioResource): Problem[] {
  const c = new Checker();
  try {
    validateMetadata(c, resource);
    if (!isKind(resource.kind)) {
      c.report('kind', `unknown kind ${JSON.stringify(resource.kind)}`);
      return c.problems;
    }
    VALIDATORS[resource.kind](c, resource.spec, resource.metadata.namespace, resource.metadata.name);
  } catch (err) {
    // A validator bug must not take the config store down; report it against the resource instead.
    c.report('spec', `internal error while validating: ${err instanceof Error ? err.message : String(err)}`);
  }
  return c.problems;
}

function validateMetadata(c: Checker, resource: IstioResource): void {
  const meta = asObject(c, 'metadata', resource.metadata);
  if (!meta) return;
  const name = asString(c, 'metadata.name', meta.name);
  if (!name) c.report('metadata.name', 'name is required');
  else if (!isKubeName(name)) c.report('metadata.name', `invalid name ${JSON.stringify(name)} (expected lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`);
  const namespace = asString(c, 'metadata.namespace', meta.namespace);
  if (namespace !== undefined && !isKubeLabelName(namespace)) c.report('metadata.namespace', `invalid namespace ${JSON.stringify(namespace)} (expected a DNS-1123 label)`);
  checkLabels(c, 'metadata.labels', meta.labels);
  asStringMap(c, 'metadata.annotations', meta.annotations);
}

/** True when the resource has no problems; narrows it to its kind's typed spec (check `kind` to pick the kind). */
export function isValidResource<K extends Kind>(resource: IstioResource<K>): resource is TypedResource<K> {
  return validateResource(resource).length === 0;
}

/** Every problem of `resource` formatted as `file: Kind ns/name: field.path: message`. */
export function describeProblems(resource: IstioResource): string[] {
  return validateResource(resource).map((p) => formatProblem(resource, p));
}

/** Throws ConfigValidationError (TRELLIS_CONFIG_INVALID) listing every problem, or returns the resource typed. */
export function assertValidResource<K extends Kind>(resource: IstioResource<K>): TypedResource<K> {
  const details = describeProblems(resource);
  if (details.length > 0) throw new ConfigValidationError(details);
  return resource as unknown as TypedResource<K>;
}
