// NDS: Istio's name table (istio.networking.nds.v1.NameTable), one resource per host as Istio's per-host NDS resources carry it.
import { isIP } from 'node:net';
import type { istio } from '../../generated/types.js';
import { NAME_TABLE } from '../../type-urls.js';
import { XdsValidationError, describeError } from '../../../common/errors.js';
import { unpackAny, type Any } from '../../codec.js';
import type { XdsResourceType } from '../resource-type.js';

export type NameTable = istio.networking.nds.v1.NameTable;
export type NameInfo = istio.networking.nds.v1.NameTable.NameInfo;

/** A host's entry: the resource name is the host, the resource a NameTable whose table holds that one host. */
export class NameTableResourceType implements XdsResourceType<NameInfo> {
  readonly typeUrl = NAME_TABLE;
  // Subscribed as a wildcard and sent whole: a host missing from a SotW response is gone.
  readonly allResourcesRequiredInSotW = true;

  nameOf(any: Any): string | undefined {
    if (any.type_url !== this.typeUrl) return undefined;
    try {
      const hosts = Object.keys(unpackAny<NameTable>(any).table ?? {});
      return hosts.length === 1 ? hosts[0] : undefined;
    } catch {
      return undefined;
    }
  }

  decode(any: Any, name: string): NameInfo {
    if (any.type_url !== this.typeUrl) throw new XdsValidationError([`type_url: expected ${this.typeUrl}, got ${any.type_url || '(empty)'}`]);
    let message: NameTable;
    try {
      message = unpackAny<NameTable>(any, this.typeUrl);
    } catch (err) {
      throw new XdsValidationError([describeError(err)]);
    }
    const problems: string[] = [];
    const hosts = Object.keys(message.table ?? {});
    if (hosts.length !== 1) problems.push(`table: expected exactly one host (the resource's), got ${hosts.length}`);
    else if (hosts[0] !== name) problems.push(`table: host "${hosts[0]}" does not match the resource name "${name}"`);
    const info = message.table?.[hosts[0] ?? ''] ?? {};
    (info.ips ?? []).forEach((ip, i) => {
      if (isIP(ip) === 0) problems.push(`table["${name}"].ips[${i}]: expected an IPv4 or IPv6 address, got ${JSON.stringify(ip)}`);
    });
    if ((info.ips ?? []).length === 0) problems.push(`table["${name}"].ips: at least one address is required`);
    if (problems.length > 0) throw new XdsValidationError(problems);
    return info;
  }
}

export const nameTableResourceType = new NameTableResourceType();
