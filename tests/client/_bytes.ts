// Byte helpers for the client tests: the protocol tests' helpers under the names used here,
// plus the normalisation the client applies to bodies.
export {
  bytes as latin1Bytes,
  concat as concatBytes,
  rng as seeded,
  text as latin1Text,
} from "../protocol/_bytes.ts";

/** The body as the server must store it: every CR LF, bare CR and bare LF as CR LF, and a
 * final CR LF added to a non-empty body that lacks one. */
export function normalized(body: string): string {
  const s = body.replace(/\r\n|\r|\n/g, "\r\n");
  return s === "" || s.endsWith("\r\n") ? s : s + "\r\n";
}
