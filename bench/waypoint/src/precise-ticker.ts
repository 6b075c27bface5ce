import { Worker } from 'node:worker_threads';

/** Wall-clock milliseconds with sub-microsecond resolution, comparable across threads. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

// The worker sleeps in Atomics.wait, which wakes within about 0.1 ms, where a timer on the main
// thread wakes 0.5 to 3 ms late; a message then wakes the main thread's event loop.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const cell = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
const { startMs, intervalMs, ticks } = workerData;
for (let i = 0; i < ticks; i++) {
  const wait = startMs + i * intervalMs - now();
  if (wait > 0) Atomics.wait(cell, 0, 0, wait);
  parentPort.postMessage(i);
}
`;

/**
 * Calls `onTick` at `startMs + i * intervalMs` (preciseNow's clock) for i below `ticks`, from a
 * worker thread that sleeps precisely. Stops by itself after the last tick, or on stop().
 */
export class PreciseTicker {
  private readonly worker: Worker;

  constructor(startMs: number, intervalMs: number, ticks: number, onTick: () => void) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { startMs, intervalMs, ticks } });
    this.worker.on('message', onTick);
  }

  stop(): void {
    void this.worker.terminate();
  }
}
