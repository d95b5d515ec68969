/** Latency samples in milliseconds, summarised by percentiles (nearest rank on the sorted samples). */
export class Samples {
  private values = new Float64Array(1024);
  private size = 0;

  add(value: number): void {
    if (this.size === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.size++] = value;
  }

  addAll(other: Samples): void {
    for (let i = 0; i < other.size; i++) this.add(other.values[i]!);
  }

  get count(): number {
    return this.size;
  }

  summary(): LatencySummary {
    const sorted = this.values.slice(0, this.size).sort();
    const at = (p: number) =>
      this.size === 0 ? NaN : sorted[Math.min(this.size - 1, Math.ceil((p / 100) * this.size) - 1)]!;
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: this.size,
      mean: this.size ? sum / this.size : NaN,
      p50: at(50),
      p95: at(95),
      p99: at(99),
      max: this.size ? sorted[this.size - 1]! : NaN,
    };
  }
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export const round = (value: number, digits = 2): number => {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
};

/** A summary rounded for the JSON results. */
export const roundSummary = (s: LatencySummary) => ({
  count: s.count,
  mean: round(s.mean),
  p50: round(s.p50),
  p95: round(s.p95),
  p99: round(s.p99),
  max: round(s.max),
});
