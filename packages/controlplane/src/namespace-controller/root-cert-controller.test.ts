import { describe, expect, it } from 'vitest';
import { decideRootCert } from './root-cert-controller.js';

const NAME = 'istio-ca-root-cert';
const PEM = '-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n';

describe('decideRootCert: what istiod’s namespace controller does with a namespace', () => {
  it('creates the ConfigMap with root-cert.pem and the istio.io/config label where it is missing', () => {
    expect(decideRootCert('demo', 'Active', undefined, NAME, PEM)).toEqual({
      action: 'create',
      configMap: {
        metadata: { name: NAME, namespace: 'demo', labels: { 'istio.io/config': 'true' } },
        data: { 'root-cert.pem': PEM },
      },
    });
    // kube-system is served: a node agent may run there.
    expect(decideRootCert('kube-system', 'Active', undefined, NAME, PEM).action).toBe('create');
  });

  it('skips kube-public, kube-node-lease, local-path-storage and a namespace being deleted', () => {
    for (const ns of ['kube-public', 'kube-node-lease', 'local-path-storage'])
      expect(decideRootCert(ns, 'Active', undefined, NAME, PEM), ns).toEqual({ action: 'none' });
    expect(decideRootCert('demo', 'Terminating', undefined, NAME, PEM)).toEqual({ action: 'none' });
  });

  it('restores an edited root-cert.pem, keeping the other keys and the resourceVersion read; leaves a right one alone', () => {
    const existing = {
      metadata: { name: NAME, namespace: 'demo', resourceVersion: '42', labels: {} },
      data: { 'root-cert.pem': 'tampered', extra: 'x' },
    };
    expect(decideRootCert('demo', 'Active', existing, NAME, PEM)).toEqual({
      action: 'update',
      configMap: { ...existing, data: { 'root-cert.pem': PEM, extra: 'x' } },
    });
    expect(
      decideRootCert('demo', 'Active', { ...existing, data: { 'root-cert.pem': PEM } }, NAME, PEM),
    ).toEqual({ action: 'none' });
  });
});
