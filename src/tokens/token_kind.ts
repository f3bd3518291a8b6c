// Draft §5.3: temporary tokens are stateless and short-lived, permanent ones are stored
// (as metadata only) and long-lived.
export type TokenKind = "temp" | "perm";
