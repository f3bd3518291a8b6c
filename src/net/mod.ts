// The runtime seam: the rest of stoken imports networking from here only.
// node:net and node:tls behave the same on Deno 2 and Bun, so one implementation serves both.
export { listen, onSignal, readTlsCredentials } from "./node.ts";
export type { Signal } from "./node.ts";
export type { Conn, Listener, ListenSpec, TlsCredentials, TlsSource } from "./types.ts";
