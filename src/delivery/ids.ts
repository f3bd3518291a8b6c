// Delivery ids: 16 characters of [A-Za-z0-9] (PROTOCOL.md §6 asks for 10–32), 95 bits of randomness.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LENGTH = 16;

export function newDeliveryId(): string {
  // 62 does not divide 256: reject bytes >= 248 so every character is equally likely.
  let out = "";
  while (out.length < LENGTH) {
    const bytes = crypto.getRandomValues(new Uint8Array(LENGTH * 2));
    for (const b of bytes) {
      if (b < 248 && out.length < LENGTH) out += ALPHABET[b % 62];
    }
  }
  return out;
}
