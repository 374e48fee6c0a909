/**
 * A pool of worker threads for batch arithmetic, so both cores of a server work. A batch is cut
 * into one chunk per worker; small batches stay on the calling thread, where posting messages
 * would cost more than it saves.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { cryptoKernels, runKernel, type KernelModule } from './kernels.js';
import { CiphermineError, isErrorCode } from './errors.js';

interface Pending {
  resolve: (v: unknown[]) => void;
  reject: (e: Error) => void;
}

interface Reply {
  id: number;
  result?: unknown[];
  error?: { name: string; message: string; code?: string };
}

/** Below this many items per batch the calling thread does the work itself. */
const MIN_PARALLEL_ITEMS = 8;

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private turn = 0;

  private readonly modules: readonly KernelModule[];

  /** `extra`: kernel modules of layers above crypto (the cryptosystem's own are always loaded). */
  constructor(
    readonly size = availableParallelism(),
    extra: readonly KernelModule[] = [],
  ) {
    this.modules = [cryptoKernels, ...extra];
    const urls = this.modules.map((m) => m.url);
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: { modules: urls } });
      w.on('message', (reply: Reply) => this.settle(reply));
      w.on('error', (e) => this.failAll(e));
      w.unref(); // idle workers must not keep a process alive; post() refs them while busy
      this.workers.push(w);
    }
  }

  private settle(reply: Reply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) for (const w of this.workers) w.unref();
    if (reply.error) {
      const e = new CiphermineError(isErrorCode(reply.error.code) ? reply.error.code : 'ERR_WORKER', reply.error.message);
      e.name = reply.error.name;
      p.reject(e);
    } else p.resolve(reply.result!);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private post(kernel: string, shared: unknown, items: unknown[]): Promise<unknown[]> {
    const id = this.nextId++;
    const worker = this.workers[this.turn++ % this.workers.length]!;
    worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, kernel, shared, items });
    });
  }

  /** Runs a kernel over items, split across workers; results come back in order. */
  async map<O>(kernel: string, shared: unknown, items: readonly unknown[]): Promise<O[]> {
    if (this.size === 0 || items.length < MIN_PARALLEL_ITEMS) {
      return runKernel(this.modules, kernel, shared, items as unknown[]) as O[];
    }
    const chunk = Math.ceil(items.length / this.size);
    const parts: Promise<unknown[]>[] = [];
    for (let i = 0; i < items.length; i += chunk) parts.push(this.post(kernel, shared, items.slice(i, i + chunk)));
    return (await Promise.all(parts)).flat() as O[];
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
