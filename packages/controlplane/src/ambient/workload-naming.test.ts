import { describe, expect, it } from 'vitest';
import { decodeManifest } from '../manifests/kube-objects.js';
import { canonicalService, deployMeta, workloadName, workloadTrustDomain } from './workload-naming.js';

interface Owner {
  kind: string;
  name: string;
  controller?: boolean;
  apiVersion?: string;
}

function pod(o: { name?: string; generateName?: string; labels?: Record<string, string>; owners?: Owner[] }) {
  const r = decodeManifest({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name ?? 'p',
      namespace: 'demo',
      labels: o.labels ?? {},
      ...(o.generateName !== undefined && { generateName: o.generateName }),
      ...(o.owners && {
        ownerReferences: o.owners.map((w) => ({ apiVersion: w.apiVersion ?? 'apps/v1', uid: 'u', ...w })),
      }),
    },
    spec: { nodeName: 'n' },
    status: { podIP: '10.0.0.1' },
  });
  if (r.ok !== true || r.value.kind !== 'Pod') throw new Error(JSON.stringify(r));
  return r.value;
}

describe('deployMeta and workloadName: owner references', () => {
  it('names a ReplicaSet pod after its Deployment when the name ends in the pod-template-hash', () => {
    const p = pod({
      name: 'reviews-v1-7d4b9c8f5-x2x9q',
      generateName: 'reviews-v1-7d4b9c8f5-',
      labels: { app: 'reviews', 'pod-template-hash': '7d4b9c8f5' },
      owners: [{ kind: 'ReplicaSet', name: 'reviews-v1-7d4b9c8f5', controller: true }],
    });
    expect(deployMeta(p)).toEqual({ name: 'reviews-v1', kind: 'Deployment' });
    expect(workloadName(p)).toBe('reviews-v1');
  });

  it('keeps a ReplicaSet name whose suffix is not the hash (a bare ReplicaSet)', () => {
    const p = pod({
      generateName: 'rs-',
      labels: { 'pod-template-hash': 'abc' },
      owners: [{ kind: 'ReplicaSet', name: 'my-rs', controller: true }],
    });
    expect(deployMeta(p)).toEqual({ name: 'my-rs', kind: 'ReplicaSet' });
  });

  it('names an Argo Rollout pod after the Rollout', () => {
    const p = pod({
      generateName: 'x-',
      labels: { 'rollouts-pod-template-hash': '5f6' },
      owners: [{ kind: 'ReplicaSet', name: 'canary-5f6', controller: true }],
    });
    expect(deployMeta(p)).toEqual({ name: 'canary', kind: 'Rollout' });
  });

  it('names a Job pod of a CronJob after the CronJob, and a plain Job after the Job', () => {
    const cron = pod({
      generateName: 'backup-28912345-',
      owners: [{ kind: 'Job', name: 'backup-28912345', controller: true, apiVersion: 'batch/v1' }],
    });
    expect(deployMeta(cron)).toEqual({ name: 'backup', kind: 'CronJob' });
    const job = pod({
      generateName: 'migrate-',
      owners: [{ kind: 'Job', name: 'migrate', controller: true }],
    });
    expect(deployMeta(job)).toEqual({ name: 'migrate', kind: 'Job' });
    // Seven digits is not a CronJob schedule suffix.
    const seven = pod({
      generateName: 'x-',
      owners: [{ kind: 'Job', name: 'etl-1234567', controller: true }],
    });
    expect(deployMeta(seven)).toEqual({ name: 'etl-1234567', kind: 'Job' });
  });

  it('names a DeploymentConfig pod after its deploymentconfig label', () => {
    const p = pod({
      generateName: 'x-',
      labels: { deploymentconfig: 'frontend' },
      owners: [{ kind: 'ReplicationController', name: 'frontend-3', controller: true }],
    });
    expect(deployMeta(p)).toEqual({ name: 'frontend', kind: 'DeploymentConfig' });
  });

  it('names StatefulSet and DaemonSet pods after the controller', () => {
    const sts = pod({
      name: 'db-0',
      generateName: 'db-',
      owners: [{ kind: 'StatefulSet', name: 'db', controller: true }],
    });
    expect(workloadName(sts)).toBe('db');
    const ds = pod({
      generateName: 'agent-',
      owners: [{ kind: 'DaemonSet', name: 'agent', controller: true }],
    });
    expect(workloadName(ds)).toBe('agent');
  });

  it('uses only the controller owner, not the first owner', () => {
    const p = pod({
      generateName: 'x-',
      owners: [
        { kind: 'ConfigMap', name: 'not-me' },
        { kind: 'StatefulSet', name: 'me', controller: true },
      ],
    });
    expect(workloadName(p)).toBe('me');
  });

  it('falls back to the pod name: no generateName, no owners, or no controller among them', () => {
    const owners = [{ kind: 'StatefulSet', name: 'db', controller: true }];
    expect(workloadName(pod({ name: 'db-0', owners }))).toBe('db-0');
    expect(workloadName(pod({ name: 'solo', generateName: 'solo-' }))).toBe('solo');
    expect(
      workloadName(pod({ name: 'p1', generateName: 'p-', owners: [{ kind: 'StatefulSet', name: 'db' }] })),
    ).toBe('p1');
    expect(deployMeta(pod({ name: 'solo' }))).toEqual({ name: 'solo', kind: 'Pod' });
  });

  it('lets the service.istio.io/workload-name label override everything', () => {
    const p = pod({
      generateName: 'x-',
      labels: { 'service.istio.io/workload-name': 'custom', 'pod-template-hash': 'h' },
      owners: [{ kind: 'ReplicaSet', name: 'web-h', controller: true }],
    });
    expect(workloadName(p)).toBe('custom');
  });

  it('does not take the app label as the workload name', () => {
    expect(workloadName(pod({ name: 'web-1', labels: { app: 'web' } }))).toBe('web-1');
  });
});

describe('canonicalService', () => {
  it('takes the first present of canonical-name, app.kubernetes.io/name, app, else the workload name', () => {
    const all = {
      'service.istio.io/canonical-name': 'c',
      'app.kubernetes.io/name': 'k',
      app: 'a',
    };
    expect(canonicalService(all, 'w').name).toBe('c');
    expect(canonicalService({ 'app.kubernetes.io/name': 'k', app: 'a' }, 'w').name).toBe('k');
    expect(canonicalService({ app: 'a' }, 'w').name).toBe('a');
    expect(canonicalService({}, 'w').name).toBe('w');
  });

  it('takes the first present of canonical-revision, app.kubernetes.io/version, version, else latest', () => {
    const all = {
      'service.istio.io/canonical-revision': 'r',
      'app.kubernetes.io/version': 'kv',
      version: 'v',
    };
    expect(canonicalService(all, 'w').revision).toBe('r');
    expect(canonicalService({ 'app.kubernetes.io/version': 'kv', version: 'v' }, 'w').revision).toBe('kv');
    expect(canonicalService({ version: 'v' }, 'w').revision).toBe('v');
    expect(canonicalService({}, 'w').revision).toBe('latest');
  });

  it('counts a label present with an empty value as present, as istiod looks up keys', () => {
    expect(canonicalService({ 'service.istio.io/canonical-name': '', app: 'a' }, 'w').name).toBe('');
    expect(canonicalService({ version: '' }, 'w').revision).toBe('');
  });
});

describe('workloadTrustDomain', () => {
  it('is empty for the default cluster.local and the mesh trust domain otherwise', () => {
    expect(workloadTrustDomain('cluster.local')).toBe('');
    expect(workloadTrustDomain('example.org')).toBe('example.org');
  });
});
