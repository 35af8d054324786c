// Encodes generated resources once and interns them by content, so every proxy holding an identical resource shares one Any.
import { packAny } from '../../xds/codec.js';
import { contentVersion, type EncodedResourceInput } from '../../xds/server/index.js';
import { messageNameOf } from '../../xds/type-urls.js';
import type { GeneratedResource } from '../model/generator.js';

/** A resource ready for the SnapshotCache: name, Any and its content version; the same object for the same content. */
export type EncodedResource = Required<EncodedResourceInput>;

export interface ResourceInternerStats {
  /** Resources packed into Any (each generated object is packed at most once). */
  readonly encoded: number;
  /** Encodings whose content an interned resource already had: that one was handed out instead. */
  readonly shared: number;
  /** Distinct resources alive now (held by some proxy's snapshot or a generated object). */
  readonly live: number;
}

/**
 * Two steps: (1) a generated object (the generators share one object among proxies whose cache key matches) is
 * encoded once, remembered for as long as the object lives; (2) the bytes are interned by type, name and content hash,
 * so equal content generated for different proxies or from different snapshots ends up as one Any. Interned entries
 * are held weakly: once no snapshot (and no generated object) references one, it is collected and forgotten.
 */
export class ResourceInterner {
  private readonly byObject = new WeakMap<object, EncodedResource>();
  private readonly byContent = new Map<string, WeakRef<EncodedResource>>();
  private readonly collected = new FinalizationRegistry<string>((key) => {
    // The key may have been taken by a newer resource of the same content since; only forget a dead entry.
    if (this.byContent.get(key)?.deref() === undefined) this.byContent.delete(key);
  });
  private encodedCount = 0;
  private sharedCount = 0;

  /** The encoded, interned form of one generated resource of `typeUrl`. */
  encode(typeUrl: string, generated: GeneratedResource): EncodedResource {
    const known = this.byObject.get(generated.resource);
    if (known && known.name === generated.name) return known;
    const any = packAny(messageNameOf(typeUrl), generated.resource);
    this.encodedCount++;
    const version = contentVersion(any.value ?? new Uint8Array());
    const key = `${typeUrl}\n${generated.name}\n${version}`;
    let encoded = this.byContent.get(key)?.deref();
    if (encoded) {
      this.sharedCount++;
    } else {
      // protobufjs writes small messages into slices of Node's shared 8 KiB pool: a copy of exactly the message's size
      // keeps a long-lived resource from pinning a whole slab.
      encoded = { name: generated.name, any: { type_url: any.type_url, value: new Uint8Array(any.value ?? new Uint8Array()) }, version };
      this.byContent.set(key, new WeakRef(encoded));
      this.collected.register(encoded, key);
    }
    this.byObject.set(generated.resource, encoded);
    return encoded;
  }

  stats(): ResourceInternerStats {
    return { encoded: this.encodedCount, shared: this.sharedCount, live: this.byContent.size };
  }
}
