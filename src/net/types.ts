// The seam between stoken and its runtime: everything above src/net sees only these types.

/** PEM certificate chain and private key, as read from the configured files. */
export interface TlsCredentials {
  readonly cert: string;
  readonly key: string;
}

/**
 * Where TLS credentials come from. Called for each new handshake, so a reload
 * (SIGHUP) takes effect for new connections while open ones keep theirs.
 */
export type TlsSource = () => TlsCredentials;

/** One accepted connection, read as chunks and written as bytes. */
export interface Conn {
  /** Client IP address, or "unix" for a unix-socket peer. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** True once TLS is active (implicit TLS or after startTls). */
  readonly secure: boolean;
  /** Next chunk of bytes, or null at end of stream (peer closed, error, or close()). */
  read(): Promise<Uint8Array | null>;
  /** Resolves when the bytes are handed to the kernel/TLS layer; rejects if the socket is gone. */
  write(data: Uint8Array | string): Promise<void>;
  /**
   * Server-side TLS upgrade (STARTTLS, RFC 3207). Any plaintext already received
   * and not yet returned by read() is discarded. The returned Conn replaces this one.
   */
  startTls(tls: TlsSource): Promise<Conn>;
  /** Close now; pending read() resolves to null. Idempotent. */
  close(): void;
}

export type ListenSpec =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly tls?: TlsSource }
  | { readonly kind: "unix"; readonly path: string };

export interface Listener {
  /** Human-readable address for logs, e.g. "127.0.0.1:2587" or "unix:/run/stoken/lmtp.sock". */
  readonly addr: string;
  /** Bound TCP port (useful when listening on port 0), or 0 for unix sockets. */
  readonly port: number;
  /** Accepted connections until close(). For implicit TLS the handshake is done before a Conn is yielded. */
  accept(): AsyncIterable<Conn>;
  close(): Promise<void>;
}
