// Column-aligned text tables like Go's tabwriter output in istioctl.

/** Left-aligned columns separated by at least `padding` spaces; trailing spaces trimmed. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], padding = 3): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return `${all.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + padding))).join('').trimEnd()).join('\n')}\n`;
}
