import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyV8Flags, ZTUNNEL_V8_FLAGS } from './v8-flags.js';

/** What V8 prints when this Node's V8 does not know a flag given to setFlagsFromString. */
function v8Complaint(flag: string): string {
  const r = spawnSync(
    process.execPath,
    ['-e', `require('node:v8').setFlagsFromString(${JSON.stringify(flag)})`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  return `${r.stdout}${r.stderr}`;
}

describe('applyV8Flags', () => {
  it('sets the heap-growth flag through the setter it is given', () => {
    const set: string[] = [];
    applyV8Flags((f) => set.push(f));
    expect(set).toEqual(['--heap-growing-percent=100']);
  });

  it("uses only flags this Node's V8 knows (an unknown one is reported, not refused)", () => {
    expect(v8Complaint('--heap-growing-percent-unknown=1')).toMatch(/unrecognized flag/);
    for (const flag of ZTUNNEL_V8_FLAGS) expect(v8Complaint(flag)).toBe('');
  });

  it("runs in the agent's entry point before the agent starts", () => {
    const main = readFileSync(new URL('../main.ts', import.meta.url), 'utf8');
    const applied = main.indexOf('applyV8Flags();');
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(main.indexOf('await runComponent('));
  });
});
