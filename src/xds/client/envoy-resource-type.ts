// Base for resource types carried as an Envoy protobuf message: Any checks, naming, and problem collection shared by LDS/RDS/CDS/EDS/SDS.
import { XdsValidationError, describeError } from '../../common/errors.js';
import { unpackAny, type Any } from '../codec.js';
import type { XdsResourceType } from './resource-type.js';

/** Collects every problem of one resource, each as `field.path: what was expected`. */
export class Problems {
  readonly list: string[] = [];
  add(path: string, expectation: string): void {
    this.list.push(path ? `${path}: ${expectation}` : expectation);
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
}

export abstract class EnvoyResourceType<M extends object> implements XdsResourceType<M> {
  abstract readonly typeUrl: string;
  abstract readonly allResourcesRequiredInSotW: boolean;
  /** The message field holding the resource's name (`cluster_name` for ClusterLoadAssignment). */
  protected readonly nameField: string = 'name';

  // nameOf() and decode() see the same Any one after the other; decoding the bytes once is enough.
  private readonly unpacked = new WeakMap<Any, M>();

  /** Checks the message's own rules, adding each violation to `problems`. */
  protected abstract validate(message: M, problems: Problems): void;

  nameOf(any: Any): string | undefined {
    if (any.type_url !== this.typeUrl) return undefined;
    try {
      const name = (this.unpack(any) as Record<string, unknown>)[this.nameField];
      return typeof name === 'string' ? name : undefined;
    } catch {
      return undefined;
    }
  }

  decode(any: Any, name: string): M {
    const problems = new Problems();
    if (any.type_url !== this.typeUrl) {
      problems.add('type_url', `expected ${this.typeUrl}, got ${any.type_url || '(empty)'}`);
      throw new XdsValidationError(problems.list);
    }
    let message: M;
    try {
      message = this.unpack(any);
    } catch (err) {
      throw new XdsValidationError([describeError(err)]);
    }
    const ownName = (message as Record<string, unknown>)[this.nameField];
    if (typeof ownName !== 'string' || ownName === '') problems.add(this.nameField, 'must not be empty');
    else if (ownName !== name) problems.add(this.nameField, `"${ownName}" does not match the resource name "${name}"`);
    this.validate(message, problems);
    if (!problems.empty) throw new XdsValidationError(problems.list);
    return message;
  }

  private unpack(any: Any): M {
    let message = this.unpacked.get(any);
    if (!message) {
      message = unpackAny<M>(any, this.typeUrl);
      this.unpacked.set(any, message);
    }
    return message;
  }
}
