// Shared test setup: a fixed clock, a key file, an engine over the in-memory store.
import { type KeyFile, newKeyFile } from "../../src/store/key_file.ts";
import {
  DEFAULT_POLICY,
  TokenEngine,
  type TokenPolicy,
  type TokenStore,
} from "../../src/tokens/engine.ts";
import { MemoryTokenStore } from "./memory_store.ts";

export const DAY_MS = 24 * 60 * 60 * 1000;
export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

export class Clock {
  t = T0;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Setup {
  engine: TokenEngine;
  store: MemoryTokenStore;
  keyFile: KeyFile;
  clock: Clock;
}

export async function setup(
  opts: { keyFile?: KeyFile; store?: MemoryTokenStore; clock?: Clock; policy?: TokenPolicy } = {},
): Promise<Setup> {
  const keyFile = opts.keyFile ?? newKeyFile();
  const store = opts.store ?? new MemoryTokenStore();
  const clock = opts.clock ?? new Clock();
  const engine = await TokenEngine.create(keyFile, store, opts.policy ?? DEFAULT_POLICY, clock.now);
  return { engine, store, keyFile, clock };
}

export function engineOver(
  keyFile: KeyFile,
  store: TokenStore,
  clock: Clock,
  policy: TokenPolicy = DEFAULT_POLICY,
): Promise<TokenEngine> {
  return TokenEngine.create(keyFile, store, policy, clock.now);
}

export function tokenBytes(token: string): Uint8Array {
  return Uint8Array.fromBase64(token, { alphabet: "base64url" });
}

export function bytesToToken(b: Uint8Array): string {
  return b.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** The token with one bit of byte `i` flipped. */
export function flipBit(token: string, i: number, bit = 0): string {
  const b = tokenBytes(token);
  b[i] = b[i]! ^ (1 << bit);
  return bytesToToken(b);
}

export const REMOTE = "bob@remote.example";
export const LOCAL = "alice@local.example";
