import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Leadership } from './leader-election.js';
import { LeaderWorkQueue, type LeaderWorkQueueInputs } from './leader-work-queue.js';

/** Leadership set by the test (no Lease behind it). */
class TestLeadership implements Leadership {
  isLeader = false;
  private readonly subscribers: Array<(leading: boolean) => void> = [];
  subscribe(onChange: (leading: boolean) => void): void {
    this.subscribers.push(onChange);
  }
  set(leading: boolean): void {
    this.isLeader = leading;
    for (const s of this.subscribers) s(leading);
  }
}

/** A queue on `leader` with the test's steps (silent logs). */
function testQueue(
  leader: Leadership,
  steps: Pick<LeaderWorkQueueInputs, 'resync' | 'reconcile'>,
): LeaderWorkQueue {
  return new LeaderWorkQueue({
    leader,
    logger: pino({ level: 'silent' }),
    name: 'test',
    keyField: 'key',
    ...steps,
  });
}

const tick = () => new Promise((r) => setTimeout(r, 10));

async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !done(); i++) await tick();
  if (!done()) throw new Error(`not within 3 s: ${what}`);
}

describe('LeaderWorkQueue', () => {
  it('resyncs on leadership, reconciles each key, and queues a failed key again after 1 s', async () => {
    const leader = new TestLeadership();
    const reconciled: string[] = [];
    let failOnce = true;
    const work: LeaderWorkQueue = testQueue(leader, {
      resync: async (term) => {
        for (const k of ['a', 'b']) work.enqueue(k);
        work.watching(term, []);
      },
      reconcile: async (key) => {
        if (key === 'b' && failOnce) {
          failOnce = false;
          throw new Error('conflict');
        }
        reconciled.push(key);
      },
    });
    await tick();
    expect(reconciled).toEqual([]); // not leading: nothing listed
    leader.set(true);
    await until(() => reconciled.includes('a'), 'a reconciled');
    expect(reconciled).toEqual(['a']);
    await until(() => reconciled.includes('b'), 'b reconciled on its retry');
    work.close();
  });

  it('stops the watches when leadership is lost; a resync of an ended term stops only its own', async () => {
    const leader = new TestLeadership();
    const stopped: string[] = [];
    let release: (() => void) | undefined;
    let resyncs = 0;
    const work: LeaderWorkQueue = testQueue(leader, {
      resync: async (term) => {
        const n = ++resyncs;
        // The first resync is slow: its term ends (and a new one starts) before it has its watch.
        if (n === 1) await new Promise<void>((r) => (release = r));
        work.watching(term, [() => stopped.push(`watch ${n}`)]);
      },
      reconcile: async () => {},
    });
    leader.set(true);
    await until(() => release !== undefined, 'the first resync waiting');
    leader.set(false);
    leader.set(true);
    await until(() => resyncs === 2, 'the second term resynced');
    release?.();
    await until(() => stopped.length === 1, 'the stale watch stopped');
    // The first term's watch stopped at once; the second term's is untouched until it ends.
    expect(stopped).toEqual(['watch 1']);
    leader.set(false);
    expect(stopped).toEqual(['watch 1', 'watch 2']);
    work.close();
  });
});
