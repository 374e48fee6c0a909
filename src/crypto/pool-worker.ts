/** Worker side of the pool: runs one kernel call per message and posts the result back. */
import { parentPort } from 'node:worker_threads';
import { runKernel, type KernelName } from './kernels.js';

interface Task {
  id: number;
  kernel: KernelName;
  shared: unknown;
  items: unknown[];
}

parentPort!.on('message', (task: Task) => {
  try {
    parentPort!.postMessage({ id: task.id, result: runKernel(task.kernel, task.shared, task.items) });
  } catch (e) {
    const err = e as Error & { code?: string };
    parentPort!.postMessage({ id: task.id, error: { name: err.name, message: err.message, code: err.code } });
  }
});
