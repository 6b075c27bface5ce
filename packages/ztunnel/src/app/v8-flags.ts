import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags the node agent sets on itself at startup; Node refuses them in NODE_OPTIONS, and the
 * image's `--max-semi-space-size` stays there.
 *
 * `--heap-growing-percent=100`: after a full GC the old generation may grow to twice what survived
 * it. V8 otherwise picks the factor itself and caps it at 1.3 while its memory reducer is done
 * with an idle heap (heap.cc, `CurrentHeapGrowingMode`). After 1,000 held connections had closed,
 * the sending agent then ran a mark-sweep-compact every 15 to 20 MB tunnelled in 8 of 12 bulk
 * transfers, and in 1 of 10 with the flag (docs/performance-ztunnel-memory.md).
 * The memory reducer still collects an idle heap; only how far the heap grows between full GCs
 * under load changes.
 */
export const ZTUNNEL_V8_FLAGS: readonly string[] = ['--heap-growing-percent=100'];

/** Applies {@link ZTUNNEL_V8_FLAGS}; `set` is V8's own setter outside tests. */
export function applyV8Flags(set: (flags: string) => void = setFlagsFromString): void {
  for (const flag of ZTUNNEL_V8_FLAGS) set(flag);
}
