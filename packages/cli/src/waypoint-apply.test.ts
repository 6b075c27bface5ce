import { describe, expect, it } from 'vitest';
import { WAYPOINT_FOR, waypointApply } from './lab-commands.js';

// No lab with this name exists: a refusal must come before the lab is read, so the error named
// here, and not "no lab named ...", proves the argument was checked first.
const NO_LAB = `no-such-lab-${process.pid}`;

describe('ambientctl waypoint apply: arguments refused as istioctl refuses them', () => {
  it("refuses --name none, the value istio.io/use-waypoint reserves for 'no waypoint'", async () => {
    const printed: string[] = [];
    await expect(
      waypointApply({ lab: NO_LAB, namespace: 'demo', name: 'none', print: (l) => printed.push(l) }),
    ).rejects.toThrow("invalid name provided for waypoint, 'none' is a reserved value");
    expect(printed).toEqual([]);
  });

  it('refuses a --for that is not service, workload, all or none, naming the valid ones', async () => {
    for (const waypointFor of ['pods', 'Service', '', 'service,workload']) {
      await expect(
        waypointApply({ lab: NO_LAB, namespace: 'demo', waypointFor, print: () => {} }),
      ).rejects.toThrow(
        `invalid traffic type: ${waypointFor}. Valid options are: service, workload, all, none`,
      );
    }
  });

  it('accepts every --for value istioctl accepts (it then needs a running lab)', async () => {
    expect([...WAYPOINT_FOR]).toEqual(['service', 'workload', 'all', 'none']);
    for (const waypointFor of WAYPOINT_FOR) {
      await expect(
        waypointApply({ lab: NO_LAB, namespace: 'demo', waypointFor, print: () => {} }),
      ).rejects.toThrow(`no lab named "${NO_LAB}" is up`);
    }
  });
});
