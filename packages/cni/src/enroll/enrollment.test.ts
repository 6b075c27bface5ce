import { describe, expect, it } from 'vitest';
import { decideEnrollment, type PodView, podTerminated } from './enrollment.js';

const pod = (over: Partial<PodView> = {}): PodView => ({
  uid: 'u1',
  name: 'p',
  namespace: 'demo',
  labels: {},
  annotations: {},
  hostNetwork: false,
  phase: 'Running',
  ips: ['10.0.0.5'],
  serviceAccount: 'default',
  ...over,
});
const AMBIENT = { 'istio.io/dataplane-mode': 'ambient' };
const NONE = { 'istio.io/dataplane-mode': 'none' };

describe('decideEnrollment', () => {
  const table: Array<[string, PodView, Record<string, string> | undefined, boolean, string]> = [
    ['namespace labeled ambient', pod(), AMBIENT, true, 'namespace_label'],
    ['namespace unlabeled', pod(), {}, false, 'not_selected'],
    ['namespace labeled none', pod(), NONE, false, 'not_selected'],
    [
      'namespace labeled something else',
      pod(),
      { 'istio.io/dataplane-mode': 'sidecar' },
      false,
      'not_selected',
    ],
    ['pod labeled ambient in an unlabeled namespace', pod({ labels: AMBIENT }), {}, true, 'pod_label'],
    ['pod labeled ambient, namespace unknown', pod({ labels: AMBIENT }), undefined, true, 'pod_label'],
    ['pod labeled none in an ambient namespace', pod({ labels: NONE }), AMBIENT, false, 'opted_out'],
    [
      'pod with another label value in an ambient namespace',
      pod({ labels: { 'istio.io/dataplane-mode': 'x' } }),
      AMBIENT,
      true,
      'namespace_label',
    ],
    ['host-network pod in an ambient namespace', pod({ hostNetwork: true }), AMBIENT, false, 'host_network'],
    [
      'host-network pod labeled ambient',
      pod({ hostNetwork: true, labels: AMBIENT }),
      {},
      false,
      'host_network',
    ],
    [
      'pod with a sidecar in an ambient namespace',
      pod({ annotations: { 'sidecar.istio.io/status': '{}' } }),
      AMBIENT,
      false,
      'sidecar',
    ],
    ['succeeded pod', pod({ phase: 'Succeeded' }), AMBIENT, false, 'terminated'],
    ['failed pod', pod({ phase: 'Failed' }), AMBIENT, false, 'terminated'],
    ['pending pod (no phase yet)', pod({ phase: '' }), AMBIENT, true, 'namespace_label'],
    ['kube-system labeled ambient', pod({ namespace: 'kube-system' }), AMBIENT, false, 'excluded_namespace'],
    [
      'kube-system pod labeled ambient',
      pod({ namespace: 'kube-system', labels: AMBIENT }),
      {},
      false,
      'excluded_namespace',
    ],
    ['namespace not known yet', pod(), undefined, false, 'namespace_unknown'],
  ];
  for (const [name, p, ns, enroll, reason] of table) {
    it(`${name}: ${enroll ? 'enrolled' : 'not enrolled'} (${reason})`, () => {
      expect(decideEnrollment(p, ns)).toEqual({ enroll, reason });
    });
  }

  it('takes another excluded namespace list', () => {
    expect(decideEnrollment(pod({ namespace: 'kube-system' }), AMBIENT, [])).toEqual({
      enroll: true,
      reason: 'namespace_label',
    });
    expect(decideEnrollment(pod(), AMBIENT, ['demo']).reason).toBe('excluded_namespace');
  });

  it('reads Succeeded and Failed as terminated, nothing else', () => {
    expect(
      ['Pending', 'Running', 'Unknown', '', 'Succeeded', 'Failed'].map((phase) => podTerminated({ phase })),
    ).toEqual([false, false, false, false, true, true]);
  });
});
