// The original destination of a connection iptables redirected (SO_ORIGINAL_DST), read through the native addon
// native/original_dst.c; where the addon is not built, the reason why, for the NACK of listeners that need it.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
}

/** Reads a socket's original destination; undefined when the connection was not redirected (no NAT entry). */
export type OriginalDestinationReader = (socket: Socket) => OriginalDestination | undefined;

export type OriginalDestinationSupport =
  | { readonly available: true; readonly read: OriginalDestinationReader }
  | { readonly available: false; readonly reason: string };

interface Addon {
  getOriginalDst(fd: number): { address: string; port: number; family: string };
}

/** The addon as scripts/build-native.mjs leaves it, relative to this file in dist/src/proxy/transport/ or src/proxy/transport/. */
const ADDON_PATH = fileURLToPath(new URL('../../../../native/build/Release/original_dst.node', import.meta.url));
const SOURCE_ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/original_dst.node', import.meta.url));

/** `::ffff:10.0.0.5` -> `10.0.0.5`: a dual-stack socket reports IPv4 peers mapped, listeners are keyed by the plain form. */
function unmap(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** The file descriptor of a TCP socket accepted by node:net (its libuv handle's fd; -1 or absent elsewhere). */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export function readerFromAddon(addon: Addon): OriginalDestinationReader {
  return (socket) => {
    const fd = socketFd(socket);
    if (fd === undefined) return undefined;
    try {
      const d = addon.getOriginalDst(fd);
      return { address: unmap(d.address), port: d.port };
    } catch {
      // ENOENT: no NAT entry, the connection came to the listener directly; Envoy then keeps the local address.
      return undefined;
    }
  };
}

let cached: OriginalDestinationSupport | undefined;

/** Loads the addon once per process. */
export function loadOriginalDestinationSupport(): OriginalDestinationSupport {
  if (cached) return cached;
  if (process.platform !== 'linux') return (cached = { available: false, reason: `SO_ORIGINAL_DST is Linux-only (this is ${process.platform})` });
  const path = [ADDON_PATH, SOURCE_ADDON_PATH].find((p) => existsSync(p));
  if (!path) return (cached = { available: false, reason: `${ADDON_PATH} is missing (run npm run build, which runs scripts/build-native.mjs, and read its message)` });
  try {
    const addon = createRequire(import.meta.url)(path) as Addon;
    if (typeof addon.getOriginalDst !== 'function') return (cached = { available: false, reason: `${path} has no getOriginalDst` });
    return (cached = { available: true, read: readerFromAddon(addon) });
  } catch (err) {
    return (cached = { available: false, reason: `${path} does not load: ${(err as Error).message}` });
  }
}
