// Small shared pieces of the end-to-end tests.
import { AssertionError } from "../assert.ts";
import type { RunResult } from "./server.ts";

/**
 * An end-to-end test: it owns child processes and sockets that it always closes itself
 * (the server with `await using`), so Deno's op/resource sanitizers, which cannot see
 * through node:net sockets, are turned off.
 */
export function e2eTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });
}

/** Parse the JSON a tests/e2e/py script printed; on failure show what it wrote. */
export function parseJson<T>(r: RunResult, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new AssertionError(
      `${what} printed no JSON (exit ${r.code})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
}

/** base64 of the AUTH PLAIN initial response (RFC 4616): NUL user NUL password. */
export function authPlain(user: string, password: string): string {
  return new TextEncoder().encode(`\0${user}\0${password}`).toBase64();
}

/** A file's bytes as text, one char per byte (so 8-bit bytes survive for matching). */
export async function readLatin1(path: string): Promise<string> {
  return new TextDecoder("latin1").decode(await Deno.readFile(path));
}

/** The first Received header of a stored message, unfolded. */
export function receivedHeader(message: string): string {
  const m = /^Received:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*/m.exec(message);
  if (!m) {
    throw new AssertionError(`No Received header in ${JSON.stringify(message.slice(0, 500))}`);
  }
  return m[0].replace(/\r?\n[ \t]+/g, " ");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A simple message with CRLF line ends. */
export function simpleMessage(from: string, to: string, subject: string, body: string): string {
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Message-ID: <${crypto.randomUUID()}@client.example.test>`,
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    "",
    body,
    "",
  ].join("\r\n");
}
