import { describe, expect, it } from 'vitest';
import { podFromCgroupFile, podFromCgroupPath } from './cgroup-pod-uid.js';

const UID = '7f4c1a52-3b1e-4d2c-9a0b-1234567890ab';

describe('podFromCgroupPath', () => {
  it('reads cgroupfs paths (kubepods/<qos>/pod<uid>/<container>)', () => {
    expect(podFromCgroupPath(`/kubepods/burstable/pod${UID}/abc123def`)).toEqual({
      podUid: UID,
      containerId: 'abc123def',
    });
  });
  it('reads systemd paths, turning _ back into -', () => {
    const sd = UID.replaceAll('-', '_');
    expect(
      podFromCgroupPath(
        `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${sd}.slice/cri-containerd-0fe1.scope`,
      ),
    ).toEqual({ podUid: UID, containerId: '0fe1' });
  });
  it('reads a uid written without dashes', () => {
    expect(podFromCgroupPath(`/kubepods/pod${UID.replaceAll('-', '')}/c1`)?.podUid).toBe(
      UID.replaceAll('-', ''),
    );
  });
  it('finds nothing in paths without a pod', () => {
    for (const p of [
      '/',
      '/user.slice/user-0.slice/session-1.scope',
      '/process_api/19f369ad4511b37161d6febad4bd80ed',
      `/pod${UID}`,
    ])
      expect(podFromCgroupPath(p)).toBeUndefined();
  });
});

describe('podFromCgroupFile', () => {
  it('finds the pod on any hierarchy line (cgroup v1)', () => {
    const text = [
      '12:pids:/',
      `4:memory:/kubepods/besteffort/pod${UID}/c1`,
      `8:cpu:/kubepods/besteffort/pod${UID}/c1`,
      '0::/',
      '',
    ].join('\n');
    expect(podFromCgroupFile(text)).toEqual({ podUid: UID, containerId: 'c1' });
  });
  it('refuses a file naming two containers', () => {
    const text = [`4:memory:/kubepods/pod${UID}/c1`, `8:cpu:/kubepods/pod${UID}/c2`].join('\n');
    expect(podFromCgroupFile(text)).toBeUndefined();
  });
  it('refuses a line without two colons and finds nothing on the host', () => {
    expect(podFromCgroupFile('garbage')).toBeUndefined();
    expect(podFromCgroupFile('0::/\n')).toBeUndefined();
  });
});
