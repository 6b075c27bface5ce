import { describe, expect, it } from 'vitest';
import { nodeIp, podIp, podLink, serviceVip, validPrefix } from './address-plan.js';
import { validateLabSpec } from './lab-spec.js';

describe('address plan', () => {
  it('places nodes, pods and VIPs in 198.18.0.0/15 and keeps link names within 15 characters', () => {
    expect(nodeIp(0)).toBe('198.18.0.10');
    expect(podIp(1, 2)).toBe('198.18.17.12');
    expect(serviceVip(0)).toBe('198.19.0.1');
    expect(serviceVip(255)).toBe('198.19.1.0');
    expect(podLink('abcdef', 15, 199).length).toBeLessThanOrEqual(15);
    expect(validPrefix('lab1')).toBe(true);
    expect(validPrefix('toolongx')).toBe(false);
    expect(validPrefix('1lab')).toBe(false);
  });
});

describe('validateLabSpec', () => {
  it('accepts a valid spec', () => {
    const r = validateLabSpec({
      nodes: 2,
      pods: [{ name: 'sleep', namespace: 'demo', node: 0, labels: { app: 'sleep' } }],
      services: [
        {
          name: 'echo',
          namespace: 'demo',
          selector: { app: 'echo' },
          ports: [{ port: 80, targetPort: 8080 }],
        },
      ],
    });
    expect(r.ok).toBe(true);
  });

  it('reports every problem with its field path', () => {
    const r = validateLabSpec({
      nodes: 0,
      pods: [
        { name: 'Bad_Name', namespace: 'demo', node: 3 },
        { name: 'a', namespace: 'demo', node: 0, serviceAccount: 'x y' },
        { name: 'a', namespace: 'demo', node: 0 },
      ],
      services: [{ name: 'svc', namespace: 'demo', selector: {}, ports: [{ port: 0, targetPort: 70000 }] }],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.problems.map((p) => p.path);
    expect(paths).toEqual([
      'nodes',
      'pods[0].name',
      'pods[0].node',
      'pods[1].node',
      'pods[1].serviceAccount',
      'pods[2].node',
      'pods[2].name',
      'services[0].ports[0].port',
      'services[0].ports[0].targetPort',
    ]);
    expect(r.problems.find((p) => p.path === 'pods[2].name')?.message).toBe('duplicate pod demo/a');
  });
});
