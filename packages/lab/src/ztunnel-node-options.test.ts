import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ZTUNNEL_NODE_OPTIONS } from './lab-mesh.js';

const repo = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, repo), 'utf8');

describe('the node agent V8 options', () => {
  it('are the same in the lab launcher and the image, and the chart keeps the image ones by default', () => {
    expect(ZTUNNEL_NODE_OPTIONS).toMatch(/--max-semi-space-size=\d+/);
    // 4 MB semi-spaces cost the sending agent about 1.7x the CPU per GB (performance-ztunnel-memory.md).
    expect(Number(/--max-semi-space-size=(\d+)/.exec(ZTUNNEL_NODE_OPTIONS)?.[1])).toBeGreaterThanOrEqual(8);
    const ztunnelStage = /FROM runtime AS ztunnel\n([\s\S]*?)\nFROM /.exec(read('Dockerfile'))?.[1] ?? '';
    expect(ztunnelStage).toContain(`ENV NODE_OPTIONS="${ZTUNNEL_NODE_OPTIONS}"`);
    expect(read('charts/ztunnel/values.yaml')).toContain(`NODE_OPTIONS="${ZTUNNEL_NODE_OPTIONS}"`);
    expect(read('charts/ztunnel/values.yaml')).toMatch(/\nenv: \{\}\n/);
    expect(read('charts/ztunnel/templates/daemonset.yaml')).not.toContain('NODE_OPTIONS');
  });
});
