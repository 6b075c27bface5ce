import { describe, expect, it } from 'vitest';
import { planEnrollment } from './enrollment-plan.js';

const m = (...entries: Array<[string, string]>) => new Map(entries);

describe('planEnrollment', () => {
  it('enrolls wanted pods that are not served, and stops and releases served pods no longer wanted', () => {
    const plan = planEnrollment({
      wanted: m(['uid-a', '/ns/a'], ['uid-b', '/ns/b']),
      served: m(['uid-a', '/ns/a'], ['uid-c', '/ns/c']),
      releasing: m(),
    });
    expect(plan.enroll).toEqual(['uid-b']);
    expect(plan.stop).toEqual(['uid-c']);
    expect([...plan.release]).toEqual([['/ns/c', 'uid-c']]);
  });

  it('on the first run, sweeps every pod namespace of the node except those of wanted pods', () => {
    const plan = planEnrollment({
      wanted: m(['uid-a', '/ns/a']),
      served: m(),
      releasing: m(),
      sweep: m(['/ns/a', 'demo/a'], ['/ns/b', 'demo/b'], ['/ns/legacy', 'outside/legacy']),
    });
    expect(plan.enroll).toEqual(['uid-a']);
    expect([...plan.release.keys()].sort()).toEqual(['/ns/b', '/ns/legacy']);
  });

  it('a queued release is dropped when its pod is wanted again, so its new capture is never removed', () => {
    const plan = planEnrollment({
      wanted: m(['uid-b', '/ns/b']),
      served: m(),
      releasing: m(['/ns/b', 'demo/b'], ['/ns/gone', 'demo/gone']),
    });
    expect([...plan.release.keys()]).toEqual(['/ns/gone']);
    expect(plan.enroll).toEqual(['uid-b']);
  });

  it('serves a pod afresh when it is wanted in another netns, releasing the old one', () => {
    const plan = planEnrollment({
      wanted: m(['uid-a', '/proc/self/fd/31']),
      served: m(['uid-a', '/proc/self/fd/30']),
      releasing: m(),
    });
    expect(plan.stop).toEqual(['uid-a']);
    expect(plan.enroll).toEqual(['uid-a']);
    expect([...plan.release]).toEqual([['/proc/self/fd/30', 'uid-a']]);
  });

  it('nothing to do when what is served is what is wanted', () => {
    const plan = planEnrollment({ wanted: m(['u', '/ns/u']), served: m(['u', '/ns/u']), releasing: m() });
    expect(plan).toEqual({ stop: [], release: new Map(), enroll: [] });
  });
});
