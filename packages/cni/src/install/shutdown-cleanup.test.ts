import { describe, expect, it } from 'vitest';
import { type DaemonSetLookup, removePluginOnStop } from './shutdown-cleanup.js';

describe('removePluginOnStop (istio-cni ShouldStopCleanup)', () => {
  const cases: Array<[DaemonSetLookup, boolean, string]> = [
    [{ kind: 'present' }, false, 'an upgrade or a node reboot: new pods wait for the next agent'],
    [{ kind: 'deleting' }, true, 'the DaemonSet is being deleted'],
    [{ kind: 'gone' }, true, 'the DaemonSet is gone'],
    [{ kind: 'revoked', status: 403 }, true, 'the role went with the uninstall'],
    [{ kind: 'revoked', status: 401 }, true, 'the service account went with the uninstall'],
    [{ kind: 'error', message: 'ECONNREFUSED' }, false, 'unknown: stay closed'],
  ];
  for (const [lookup, remove, why] of cases) {
    it(`${lookup.kind}${'status' in lookup ? ` ${lookup.status}` : ''}: ${remove ? 'removes' : 'keeps'} the plugin (${why})`, () => {
      expect(removePluginOnStop(lookup)).toBe(remove);
    });
  }
});
