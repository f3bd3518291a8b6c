// What the MTA's Authentication-Results fields (RFC 8601) say about the sender's domain,
// for deciding whether a Submission-Token header may be trusted (PROTOCOL.md §9).
import { fieldsNamed, type HeaderField } from "./headers.ts";

export interface DomainAuth {
  /** dkim=pass with header.d (or header.i) in the sender's domain. */
  readonly dkimPass: boolean;
  /** spf=pass with smtp.mailfrom in the sender's domain. */
  readonly spfPass: boolean;
  /** Some dkim / spf result other than pass was recorded for the sender's domain (or at all). */
  readonly dkimFail: boolean;
  readonly spfFail: boolean;
}

/** Strip RFC 5322 comments "( … )", which RFC 8601 allows almost anywhere. */
function uncomment(s: string): string {
  let out = "";
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && depth > 0) {
      i++;
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")" && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

function inDomain(value: string, domain: string): boolean {
  const v = value.toLowerCase().replace(/^.*@/, "");
  return v === domain || v.endsWith("." + domain);
}

/**
 * Results for `domain` from the Authentication-Results fields added by `authservId` (our
 * MTA). Fields from anyone else could have been written by the sender, so when none carry
 * our id only the topmost field (the last one added on the way in) is read.
 */
export function domainAuth(
  fields: readonly HeaderField[],
  domain: string,
  authservId: string,
): DomainAuth {
  const all = fieldsNamed(fields, "Authentication-Results");
  const ours = all.filter((f) =>
    uncomment(f.value).trim().split(/[\s;]/, 1)[0]?.toLowerCase() === authservId
  );
  const trusted = ours.length > 0 ? ours : all.slice(0, 1);
  const d = domain.toLowerCase();
  let dkimPass = false, spfPass = false, dkimFail = false, spfFail = false;
  for (const f of trusted) {
    const parts = uncomment(f.value).split(";").slice(1);
    for (const part of parts) {
      const m = /^\s*(dkim|spf)\s*=\s*([a-z]+)(.*)$/is.exec(part);
      if (!m) continue;
      const method = m[1]!.toLowerCase();
      const result = m[2]!.toLowerCase();
      const props = m[3]!;
      const prop = (name: string) =>
        new RegExp(`\\b${name}\\s*=\\s*"?([^\\s";]+)`, "i").exec(props)?.[1];
      if (method === "dkim") {
        const who = prop("header\\.d") ?? prop("header\\.i");
        if (who !== undefined && !inDomain(who, d)) continue;
        if (result === "pass" && who !== undefined) dkimPass = true;
        else if (result !== "pass") dkimFail = true;
      } else {
        const who = prop("smtp\\.mailfrom") ?? prop("smtp\\.helo");
        if (who !== undefined && !inDomain(who, d)) continue;
        if (result === "pass" && who !== undefined) spfPass = true;
        else if (result !== "pass") spfFail = true;
      }
    }
  }
  return { dkimPass, spfPass, dkimFail, spfFail };
}

/**
 * PROTOCOL.md §9: keep a Submission-Token header unless the MTA shows the sender's domain
 * failed both DKIM and SPF; with `requirePass`, keep it only if one of them passed.
 */
export function mayHarvest(a: DomainAuth, requirePass: boolean): boolean {
  if (a.dkimPass || a.spfPass) return true;
  if (requirePass) return false;
  return !(a.dkimFail && a.spfFail);
}
