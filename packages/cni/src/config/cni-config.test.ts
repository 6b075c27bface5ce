import { describe, expect, it } from 'vitest';
import { netnsInAgent, parseCniConfig } from './cni-config.js';

describe('parseCniConfig', () => {
  it('takes the chart defaults when only the node name and a kubeconfig are set', () => {
    const r = parseCniConfig({ CNI_NODE_NAME: 'node-a', CNI_KUBECONFIG: '/k' });
    expect(r).toEqual({
      ok: true,
      value: {
        nodeName: 'node-a',
        zdsSocket: '/var/run/ztunnel/ztunnel.sock',
        pluginEventSocket: '/var/run/ambient-cni/pluginevent.sock',
        hostBinDir: '/host/opt/cni/bin',
        hostNetDir: '/host/etc/cni/net.d',
        hostProc: '/host/proc',
        hostMounts: '',
        podNamespace: 'istio-system',
        daemonSetName: 'ambient-cni-node',
        logLevel: 'info',
        readyPort: 8000,
        kubeconfig: '/k',
        kubernetesServiceHost: '',
        kubernetesServicePort: '443',
      },
    });
    expect(r.ok && Object.isFrozen(r.value)).toBe(true);
  });

  it('reads in-cluster when CNI_KUBECONFIG is empty and the service host is set', () => {
    const r = parseCniConfig({
      CNI_NODE_NAME: 'n',
      CNI_KUBECONFIG: '',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '6443',
    });
    expect(
      r.ok && [r.value.kubeconfig, r.value.kubernetesServiceHost, r.value.kubernetesServicePort],
    ).toEqual(['', '10.96.0.1', '6443']);
  });

  it('refuses every bad setting at once, by name', () => {
    const r = parseCniConfig({ CNI_NODE_NAME: '', CNI_READY_PORT: '70000', CNI_LOG_LEVEL: 'loud' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.map((p) => p.path).sort()).toEqual([
      'CNI_KUBECONFIG',
      'CNI_LOG_LEVEL',
      'CNI_NODE_NAME',
      'CNI_READY_PORT',
    ]);
  });

  it('reads every setting set to "" exactly as if it were unset (the shared empty-value rule)', () => {
    const base = { CNI_NODE_NAME: 'n', CNI_KUBECONFIG: '/k' };
    for (const key of [
      'CNI_ZDS_SOCKET',
      'CNI_PLUGIN_EVENT_SOCKET',
      'CNI_HOST_BIN_DIR',
      'CNI_HOST_NET_DIR',
      'CNI_HOST_PROC',
      'CNI_LOG_LEVEL',
      'CNI_READY_PORT',
      'KUBERNETES_SERVICE_PORT',
    ])
      expect(parseCniConfig({ ...base, [key]: '' }), key).toEqual(parseCniConfig(base));
    expect(parseCniConfig({ ...base, CNI_NODE_NAME: '' })).toMatchObject({
      ok: false,
      problems: [{ path: 'CNI_NODE_NAME', message: 'is required' }],
    });
  });

  it('opens the netns path the plugin reports under CNI_HOST_MOUNTS (the host root in the container)', () => {
    const r = parseCniConfig({ CNI_NODE_NAME: 'n', CNI_KUBECONFIG: '/k', CNI_HOST_MOUNTS: '/host' });
    expect(r.ok && r.value.hostMounts).toBe('/host');
    expect(netnsInAgent('/host', '/var/run/netns/cni-1234')).toBe('/host/var/run/netns/cni-1234');
    // On the host (no mount): the path as reported.
    expect(netnsInAgent('', '/var/run/netns/cni-1234')).toBe('/var/run/netns/cni-1234');
  });
});
