// The runtime seam: everything runtime-specific about networking lives in src/net.
// node:net, node:tls and node:dns behave the same on Deno 2 and Bun, so one implementation
// serves both.
export { listen, onSignal, readTlsCredentials } from "./node.ts";
export type { Signal } from "./node.ts";
export { connect, ConnectError, startTlsClient } from "./connect.ts";
export type { ConnectFailure, ConnectOptions, StartTlsOptions } from "./connect.ts";
export { makeResolver } from "./dns.ts";
export type { DnsResolver, MxRecord, ResolverOptions, SrvRecord } from "./dns.ts";
export type { Conn, Listener, ListenSpec, TlsCredentials, TlsSource } from "./types.ts";
