// Which resources of one type a stream subscribes to: explicit names, wildcard, or both (xDS "How the client specifies what resources to return").
import { WILDCARD_CAPABLE } from '../type-urls.js';
import type { ResourceSet, VersionedResource } from './resource-source.js';

/** The explicit wildcard name of the current xDS spec; it can be mixed with other names. */
export const WILDCARD_NAME = '*';

export class Subscription {
  private wildcardMode = false;
  private readonly explicitNames = new Set<string>();

  constructor(readonly typeUrl: string) {}

  get wildcard(): boolean {
    return this.wildcardMode;
  }

  get names(): ReadonlySet<string> {
    return this.explicitNames;
  }

  /**
   * Applies a SotW request's full name list; returns whether the subscription changed.
   * Empty names on the first request of LDS/CDS is the legacy wildcard; for other types empty means
   * "none". Afterwards only an explicit "*" keeps wildcard, so names without it end wildcard mode.
   */
  applySotw(resourceNames: readonly string[], first: boolean): boolean {
    const before = this.key();
    const capable = WILDCARD_CAPABLE.has(this.typeUrl);
    const legacyWildcard = first && resourceNames.length === 0 && capable;
    // After a legacy wildcard start, Envoy keeps sending empty lists: they mean "still wildcard", not "none".
    const stillLegacy = !first && resourceNames.length === 0 && capable && this.wildcardMode && this.explicitNames.size === 0;
    this.wildcardMode = legacyWildcard || stillLegacy || (capable && resourceNames.includes(WILDCARD_NAME));
    this.explicitNames.clear();
    for (const name of resourceNames) if (name !== WILDCARD_NAME) this.explicitNames.add(name);
    return this.key() !== before;
  }

  /**
   * Applies a delta request's subscribe/unsubscribe lists; returns the names newly subscribed
   * (the server must send those even if it believes the client has them).
   */
  applyDelta(subscribe: readonly string[], unsubscribe: readonly string[], first: boolean): string[] {
    const capable = WILDCARD_CAPABLE.has(this.typeUrl);
    if (first && subscribe.length === 0 && capable) this.wildcardMode = true;
    const added: string[] = [];
    for (const name of subscribe) {
      if (name === WILDCARD_NAME) {
        if (capable) this.wildcardMode = true;
      } else {
        this.explicitNames.add(name);
        added.push(name);
      }
    }
    for (const name of unsubscribe) {
      if (name === WILDCARD_NAME) this.wildcardMode = false;
      else this.explicitNames.delete(name);
    }
    return added.filter((name) => this.explicitNames.has(name));
  }

  /** Whether the stream wants `name`: explicitly, or through wildcard. */
  wants(name: string): boolean {
    return this.wildcardMode || this.explicitNames.has(name);
  }

  /** The resources of `set` this subscription sees, by name. */
  visible(set: ResourceSet): Map<string, VersionedResource> {
    if (this.wildcardMode) return new Map(set.resources);
    const visible = new Map<string, VersionedResource>();
    for (const name of this.explicitNames) {
      const resource = set.resources.get(name);
      if (resource) visible.set(name, resource);
    }
    return visible;
  }

  /** For status: the explicit names (sorted) and whether wildcard is on. */
  describe(): { wildcard: boolean; names: string[] } {
    return { wildcard: this.wildcardMode, names: [...this.explicitNames].sort() };
  }

  private key(): string {
    return `${this.wildcardMode ? '*' : ''}|${[...this.explicitNames].sort().join('\0')}`;
  }
}
