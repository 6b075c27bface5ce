/**
 * The enrolment benchmark's Kubernetes variant (`npm run bench:xds:kube`) at a tiny size, so its
 * code path keeps working: pods and services written through a real API server, the control plane
 * process on it, node clients, `kubectl label` and its removal, and everything cleaned up.
 * Spawns the built entry points: run `npx tsc -b` first. Figures are printed, never asserted.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type EnrolResult, runEnrolBench } from '../../bench/xds/src/enrol-bench.js';
import { type EnrolSource, kubernetesSource } from '../../bench/xds/src/enrol-sources.js';
import { Teardown } from '../../bench/xds/src/teardown.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('bench/xds --source kubernetes', () => {
  it('kubectl label brings every node client all 200 pods of the namespace over HBONE, ACKed, and its removal takes them out; processes and directories are gone afterwards', async () => {
    const sizes = { pods: 200, services: 10, nodes: 3 };
    const teardown = new Teardown();
    let source: EnrolSource | undefined;
    let work = '';
    let pids: number[] = [];
    let result: EnrolResult;
    try {
      result = await runEnrolBench(
        async (dir, td) => {
          work = dir;
          source = await kubernetesSource(sizes, td, { concurrency: 8, log: () => {} });
          return source;
        },
        { ...sizes, rounds: 1, clientProcesses: 1, phaseTimeoutMs: 30_000, log: () => {} },
        teardown,
      );
    } finally {
      pids = Object.values(source?.processes() ?? {});
      await teardown.run();
    }
    console.log(
      `200 pods: written in ${result.writeMs.toFixed(0)} ms; label ${result.labelMs[0]?.toFixed(0)} ms, ` +
        `unlabel ${result.unlabelMs[0]?.toFixed(0)} ms to all 3 clients`,
    );
    expect(result.source).toBe('kubernetes');
    expect(result.afterLabel).toEqual(
      [0, 1, 2].map((client) => ({ client, workloads: 200, hbone: 200, acked: true })),
    );
    expect(result.afterUnlabel).toEqual(
      [0, 1, 2].map((client) => ({ client, workloads: 200, hbone: 0, acked: true })),
    );
    expect(result.labelMs).toHaveLength(1);
    expect(result.unlabelMs).toHaveLength(1);
    // The pods and services, and the API server's own `kubernetes` service.
    expect(result.resources).toBe(200 + 10 + 1);
    expect(result.nacks).toBe(0);
    expect(pids).toHaveLength(2);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(work)).toBe(false);
  }, 90_000);
});
