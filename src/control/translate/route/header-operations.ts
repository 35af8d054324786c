// VirtualService header set/add/remove as Envoy header mutations (Istio's TranslateHeadersOperations).
import type { Headers } from '../../../api/index.js';
import type { envoy } from '../../../xds/generated/types.js';

type HeaderValueOption = envoy.config.core.v3.HeaderValueOption;

export interface HeaderOperations {
  requestHeadersToAdd: HeaderValueOption[];
  responseHeadersToAdd: HeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToRemove: string[];
  /** A `host`/`:authority` set or add: Istio turns it into host_rewrite_literal. */
  authority: string;
}

/** Pseudo-headers and Host cannot be mutated by Envoy. */
function isInternalHeader(key: string): boolean {
  return key.startsWith(':') || key.toLowerCase() === 'host';
}

function isAuthorityHeader(key: string): boolean {
  const lower = key.toLowerCase();
  return lower === ':authority' || lower === 'host';
}

function appendHeaders(headers: Record<string, string> | undefined, append: boolean): { options: HeaderValueOption[]; authority: string } {
  let authority = '';
  const options: HeaderValueOption[] = [];
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (isAuthorityHeader(key)) authority = value;
    if (isInternalHeader(key)) continue;
    options.push({ header: { key, value }, append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD' });
  }
  // Istio sorts by key so the output does not depend on map order.
  options.sort((a, b) => (a.header!.key! < b.header!.key! ? -1 : a.header!.key! > b.header!.key! ? 1 : 0));
  return { options, authority };
}

/** `set` overwrites (OVERWRITE_IF_EXISTS_OR_ADD) and comes first; `add` appends (APPEND_IF_EXISTS_OR_ADD). */
export function translateHeaderOperations(headers: Headers): HeaderOperations {
  const reqSet = appendHeaders(headers.request?.set, false);
  const reqAdd = appendHeaders(headers.request?.add, true);
  const respSet = appendHeaders(headers.response?.set, false);
  const respAdd = appendHeaders(headers.response?.add, true);
  return {
    requestHeadersToAdd: [...reqSet.options, ...reqAdd.options],
    responseHeadersToAdd: [...respSet.options, ...respAdd.options],
    requestHeadersToRemove: (headers.request?.remove ?? []).filter((k) => !isInternalHeader(k)),
    responseHeadersToRemove: (headers.response?.remove ?? []).filter((k) => !isInternalHeader(k)),
    authority: reqSet.authority || reqAdd.authority,
  };
}
