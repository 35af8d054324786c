// Who may see a resource: Istio's exportTo (`*`, `.`, `~`, namespace names) and label selectors matching workloads.

/**
 * True when a resource of `owner` namespace with this `exportTo` is visible to `namespace`. Missing or empty
 * exportTo means `*` (Istio's default `defaultServiceExportTo`/`defaultVirtualServiceExportTo`/… are all `*`).
 */
export function isVisibleTo(exportTo: readonly string[] | undefined, owner: string, namespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const entry of exportTo) {
    if (entry === '*') return true;
    if (entry === '.' ? owner === namespace : entry === namespace) return true;
  }
  return false;
}

/** True when every label of `selector` is set to the same value in `labels`; an empty or missing selector selects everything. */
export function selectorMatches(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector)) if (labels[key] !== value) return false;
  return true;
}

/** True when two host patterns can name a common host (`*.example.com` and `a.example.com`, or `*` and anything). */
export function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const aWild = a.startsWith('*'), bWild = b.startsWith('*');
  if (aWild && bWild) return a.length > b.length ? a.endsWith(b.slice(1)) : b.endsWith(a.slice(1));
  if (aWild) return b.endsWith(a.slice(1));
  if (bWild) return a.endsWith(b.slice(1));
  return false;
}

/** Istio's creation-time order without timestamps: by name, then namespace (its tie-break, which it documents as stable). */
export function compareConfigs(a: { metadata: { name: string; namespace: string } }, b: { metadata: { name: string; namespace: string } }): number {
  return compareStrings(a.metadata.name, b.metadata.name) || compareStrings(a.metadata.namespace, b.metadata.namespace);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
