// How benchmarks report: one line per figure, ratios against a baseline from the same run, medians of rounds.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function printFigure(label: string, value: number, unit: string): void {
  console.log(`${label}: ${value.toFixed(value >= 100 ? 0 : 1)} ${unit}`);
}

export function printRatio(label: string, ratio: number): void {
  console.log(`${label}: ${ratio.toFixed(2)}x`);
}
