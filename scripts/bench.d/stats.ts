// Medians with min–max over repetitions, and the result table with ratios. Only ratios
// from one run compare: these machines are noisy, so the table never stands alone.

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): Summary | null {
  const xs = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { n: xs.length, median, min: xs[0]!, max: xs.at(-1)! };
}

/** 1234.5 -> "1,235"; small values keep a decimal or two. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return "—";
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function cell(s: Summary | null): string {
  if (s === null) return "—";
  if (s.n === 1) return num(s.median);
  return `${num(s.median)} (${num(s.min)}–${num(s.max)})`;
}

export function ratio(a: Summary | null, b: Summary | null): number {
  return a && b && b.median > 0 ? a.median / b.median : NaN;
}

export function ratioText(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : "—";
}

/** A markdown table; columns padded so it also reads as plain text. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  return [line(head), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)]
    .join("\n");
}
