/** Timing helpers for benchmarks: warm up, then the median of several timed rounds. */
export interface Rate {
  msPerOp: number;
  opsPerSec: number;
}

export function rate(msPerOp: number): Rate {
  return { msPerOp: round(msPerOp), opsPerSec: round(1000 / msPerOp) };
}

export function round(x: number, digits = 4): number {
  return Number(x.toPrecision(digits));
}

/** Median ms per call of f over `rounds` rounds of about `roundMs` each. */
export function measure(f: (i: number) => unknown, roundMs = 300, rounds = 5): Rate {
  f(0);
  const perRound: number[] = [];
  let i = 1;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < roundMs || n < 3) {
      f(i++);
      n++;
    }
    perRound.push((performance.now() - start) / n);
  }
  perRound.sort((a, b) => a - b);
  return rate(perRound[Math.floor(rounds / 2)]!);
}

export function parseFlags(argv: string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      flags.set(a.slice(2), next);
      i++;
    } else flags.set(a.slice(2), true);
  }
  return flags;
}

/** Seeded generator (xorshift32) in [0, 1), so every run of a benchmark makes the same data. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}
