/**
 * Worker side of the pool: loads the kernel modules it was given (the cryptosystem's, and any layer
 * above's), then runs one kernel call per message and posts the result back. Messages that arrive
 * while the modules load wait in the port's queue.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runKernel, type KernelModule } from './kernels.js';

interface Task {
  id: number;
  kernel: string;
  shared: unknown;
  items: unknown[];
}

const urls = (workerData as { modules: string[] }).modules;
const modules: KernelModule[] = await Promise.all(urls.map(async (url) => ({ url, kernels: (await import(url)).kernels })));

parentPort!.on('message', (task: Task) => {
  try {
    parentPort!.postMessage({ id: task.id, result: runKernel(modules, task.kernel, task.shared, task.items) });
  } catch (e) {
    const err = e as Error & { code?: string };
    parentPort!.postMessage({ id: task.id, error: { name: err.name, message: err.message, code: err.code } });
  }
});
