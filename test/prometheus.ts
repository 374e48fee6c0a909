/** Reading a process's Prometheus page in tests and benchmarks. */

/** The sum of a metric over all its label sets on the page at `url`, or over the lines `filter` matches. */
export async function metricTotal(url: string, name: string, filter?: RegExp): Promise<number> {
  const text = await (await fetch(url)).text();
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && (!filter || filter.test(l)))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}
