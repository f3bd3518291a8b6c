// Message header fields (RFC 5322 §2.2): just enough to read, drop and add fields on the
// way through, without touching the body. Works on latin1 strings so bytes round-trip.

export interface HeaderField {
  /** Field name as written ("" for a line that is not a field). */
  readonly name: string;
  /** The field exactly as received, folded lines and the final CRLF included. */
  readonly raw: string;
  /** Unfolded value, surrounding white space removed. */
  readonly value: string;
}

const CRLFCRLF = [13, 10, 13, 10];

/**
 * Offset just past the blank line ending the header section, or -1 if `buf` has none.
 * A message that starts with CRLF has an empty header section (offset 2).
 */
export function headerEnd(buf: Uint8Array): number {
  if (buf[0] === 13 && buf[1] === 10) return 2;
  let i = buf.indexOf(13);
  while (i >= 0 && i + 3 < buf.length) {
    if (buf[i + 1] === CRLFCRLF[1] && buf[i + 2] === CRLFCRLF[2] && buf[i + 3] === CRLFCRLF[3]) {
      return i + 4;
    }
    i = buf.indexOf(13, i + 1);
  }
  return -1;
}

/** Fields of a header section (as returned up to headerEnd, blank line optional). */
export function parseHeaderFields(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = block.split(/(?<=\r\n)/);
  let current: string[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const raw = current.join("");
    current = [];
    const colon = raw.indexOf(":");
    // Not a field: kept with an empty name so rewriting loses nothing.
    if (colon <= 0) {
      fields.push({ name: "", raw, value: "" });
      return;
    }
    const name = raw.slice(0, colon).trimEnd();
    const value = raw.slice(colon + 1).replace(/\r\n(?=[ \t])/g, "").trim();
    fields.push({ name, raw, value });
  };
  for (const line of lines) {
    if (line === "\r\n") break;
    if ((line.startsWith(" ") || line.startsWith("\t")) && current.length > 0) current.push(line);
    else {
      flush();
      current.push(line);
    }
  }
  flush();
  return fields;
}

export function fieldsNamed(fields: readonly HeaderField[], name: string): HeaderField[] {
  const n = name.toLowerCase();
  return fields.filter((f) => f.name.toLowerCase() === n);
}
