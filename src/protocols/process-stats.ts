/** Peak memory and CPU time of this process, for operators and benchmarks (no data involved). */
export function processStats(): { maxRssMb: number; cpuSeconds: number } {
  const u = process.resourceUsage();
  // maxRSS is in kilobytes, CPU times in microseconds.
  return { maxRssMb: u.maxRSS / 1024, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6 };
}
