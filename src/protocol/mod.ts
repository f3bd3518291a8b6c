// The pure SMTP/LMTP protocol core: parsing and framing only, no I/O.

export { formatReply, type Reply, reply, replySummary } from "./reply.ts";
export { latin1, type Line, LineReader } from "./line_reader.ts";
export { type Command, parseCommand, type Parsed } from "./command.ts";
export {
  formatLocal,
  formatMailbox,
  isDomainName,
  isIPv4,
  isIPv6,
  type Mailbox,
  normalizeAddress,
  parseMailbox,
} from "./address.ts";
export { decodeXtext, type Param, parseParams } from "./params.ts";
export { DataReader, type DataStep } from "./data_reader.ts";
export {
  decodeBase64Strict,
  decodePlain,
  decodeStoken,
  encodeBase64,
  type PlainCredentials,
} from "./sasl.ts";
export { receivedHeader, rfc5322Date, type TraceInfo } from "./trace.ts";
