/**
 * Fault: an enforced DENY AuthorizationPolicy is edited into something invalid (malformed YAML,
 * an unknown action). Promise: the control plane refuses the edit, reports it with file and field
 * path, and keeps the last good DENY in force on every node agent; deleting the file removes it.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyManifests,
  deleteManifest,
  type Lab,
  type LabMesh,
  type LabPod,
  manifestFile,
} from '@ambient/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeshLab, type MeshLab, sleepEchoSpec } from './fault-lab.js';

const isRoot = process.getuid?.() === 0;
const prefix = `q${process.pid % 100_000}`;
const HTTP_ECHO = `require('http').createServer((q,r)=>r.end('echo saw '+q.socket.remoteAddress.replace('::ffff:',''))).listen(8080,'0.0.0.0',()=>console.log('ready'))`;
const REF = { kind: 'AuthorizationPolicy', namespace: 'demo', name: 'deny-sleep' } as const;

const denyYaml = (action: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-sleep
  namespace: demo
spec:
  selector:
    matchLabels: {app: echo}
  action: ${action}
  rules:
    - from:
        - source:
            principals: [cluster.local/ns/demo/sa/sleep]
`;

/** The same policy with a flow sequence left open: not YAML. */
const MALFORMED = denyYaml('DENY').replace(
  /rules:[\s\S]*$/,
  'rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/sleep]}}]\n',
);

interface DebugConfig {
  authorizations: string[];
  invalid: Array<{
    file: string;
    ref: string;
    problems: Array<{ path: string; message: string }>;
    kept?: string[];
  }>;
}

describe.skipIf(!isRoot)('fault: an invalid edit of an enforced DENY (root)', () => {
  let m: MeshLab;
  let lab: Lab;
  let mesh: LabMesh;
  const url = 'http://echo.demo.svc.cluster.local/';
  const file = manifestFile(REF);

  const curl = async (pod: LabPod) => {
    const r = await lab.exec(pod, ['curl', '-s', '--max-time', '3', url]);
    return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
  };
  const debugConfig = async () => JSON.parse(await mesh.controlPlaneGet('/debug/config')) as DebugConfig;
  /** Replaces the policy's file as an editor saving in place would. */
  const overwrite = async (text: string) => {
    const staged = join(mesh.manifestDir, `.${file}.edit`);
    await writeFile(staged, text);
    await rename(staged, join(mesh.manifestDir, file));
  };
  const policiesOn = async (node: number) =>
    ((await mesh.configDump(node)).policies as Array<{ name: string }>).map((p) => p.name);
  /** Refused several times over, well after the refusal was reported and any push went out. */
  const stillRefused = async (sleep: LabPod) => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (let i = 0; i < 3; i++) expect(await curl(sleep)).toMatch(/^curl exit/);
    expect(await policiesOn(1)).toContain('deny-sleep');
    expect((await debugConfig()).authorizations).toContain('demo/deny-sleep');
  };

  beforeAll(async () => {
    m = await createMeshLab(prefix, sleepEchoSpec(), {
      enrolledNamespaces: ['demo'],
      apps: [{ pod: 'echo', namespace: 'demo', script: HTTP_ECHO }],
    });
    ({ lab, mesh } = m);
  }, 60_000);

  afterAll(async () => {
    await m?.destroy();
  });

  it('keeps refusing the denied client through malformed YAML and an invalid action, and allows it once the file is deleted', async () => {
    const sleep = lab.pod('demo', 'sleep');
    expect(await curl(sleep)).toBe(`echo saw ${sleep.ip}`);
    await applyManifests(mesh.manifestDir, denyYaml('DENY'));
    await expect.poll(() => curl(sleep), { timeout: 15_000, interval: 100 }).toMatch(/^curl exit/);

    // Malformed YAML over the policy's file: refused, reported with the file and the field path
    // where parsing broke, and the last good DENY stays in force.
    await overwrite(MALFORMED);
    await expect
      .poll(async () => (await debugConfig()).invalid.find((i) => i.file === file), {
        timeout: 10_000,
        interval: 50,
      })
      .toMatchObject({
        ref: file,
        problems: [
          { path: expect.stringMatching(/^spec\.rules/), message: expect.stringMatching(/^YAML: /) },
        ],
        kept: ['AuthorizationPolicy/demo/deny-sleep'],
      });
    const malformed = (await debugConfig()).invalid.find((i) => i.file === file);
    console.log(`malformed YAML reported: ${JSON.stringify(malformed)}`);
    await stillRefused(sleep);
    expect(await mesh.controlPlaneGet('/metrics')).toMatch(/^controlplane_invalid_resources 1$/m);

    // An invalid action: refused with the field path spec.action, the last good DENY kept.
    await overwrite(denyYaml('BOGUS'));
    await expect
      .poll(async () => (await debugConfig()).invalid.find((i) => i.file === file), {
        timeout: 10_000,
        interval: 50,
      })
      .toEqual({
        file,
        ref: 'AuthorizationPolicy demo/deny-sleep',
        problems: [{ path: 'spec.action', message: '"BOGUS" must be ALLOW, DENY, AUDIT or CUSTOM' }],
        kept: ['AuthorizationPolicy/demo/deny-sleep'],
      });
    await stillRefused(sleep);
    expect(await mesh.controlPlaneGet('/metrics')).toMatch(/^controlplane_invalid_resources 1$/m);

    // Deleting the file removes the policy: the client gets through, and the report goes.
    await deleteManifest(mesh.manifestDir, REF);
    await expect.poll(() => curl(sleep), { timeout: 15_000, interval: 100 }).toBe(`echo saw ${sleep.ip}`);
    expect(await policiesOn(1)).not.toContain('deny-sleep');
    expect((await debugConfig()).invalid).toEqual([]);
  }, 60_000);
});
