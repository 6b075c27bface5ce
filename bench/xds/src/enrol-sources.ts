/**
 * Where the enrolment benchmark's cluster lives, behind one interface: a manifest directory (the
 * label is a rewritten Namespace file) or a real Kubernetes API server on loopback (etcd +
 * kube-apiserver, objects written through the API, the label set by `kubectl label`).
 */
import { execFile } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import {
  BENCH_NAMESPACE,
  benchNamespace,
  benchPod,
  benchServiceAccounts,
  benchServices,
  DATAPLANE_MODE,
  type EnrolSizes,
} from './enrol-objects.js';
import { KubeWriter } from './kube-writer.js';
import { cpuOf, now } from './measure.js';
import type { Teardown } from './teardown.js';

const run = promisify(execFile);
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface EnrolSource {
  readonly name: 'directory' | 'kubernetes';
  /** The control plane's settings that select this source. */
  readonly env: Readonly<Record<string, string>>;
  /** How long writing the objects took (through the API server: the requests). */
  readonly writeMs: number;
  /** CPU seconds the source's processes spent on the writes (name -> s). */
  readonly writeCpu: Readonly<Record<string, number>>;
  /** Sets or removes the namespace's istio.io/dataplane-mode=ambient; resolves once done. */
  setEnrolled(on: boolean): Promise<void>;
  /** Processes of the source whose CPU time counts (name -> pid). */
  processes(): Record<string, number>;
}

/** The objects in a manifest directory; the Namespace in a file of its own, rewritten to label. */
export async function directorySource(work: string, sizes: EnrolSizes): Promise<EnrolSource> {
  const dir = join(work, 'manifests');
  await mkdir(dir, { recursive: true });
  const t0 = now();
  const items: object[] = [...benchServiceAccounts(), ...benchServices(sizes)];
  for (let i = 0; i < sizes.pods; i++) {
    const { pod, status } = benchPod(i, sizes);
    items.push({ ...pod, status });
  }
  await writeFile(join(dir, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  const writeNamespace = async (on: boolean) => {
    // Staged under a dot name (ignored by the source) and renamed into place: one change.
    await writeFile(join(dir, '.namespace.json'), JSON.stringify(benchNamespace(on)));
    await rename(join(dir, '.namespace.json'), join(dir, 'namespace.json'));
  };
  await writeNamespace(false);
  return {
    name: 'directory',
    env: { CP_CONFIG_SOURCE: 'directory', CP_MANIFEST_DIR: dir },
    writeMs: now() - t0,
    writeCpu: {},
    setEnrolled: writeNamespace,
    processes: () => ({}),
  };
}

export interface KubernetesSourceOptions {
  /** Requests in flight while writing the objects. */
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

/**
 * etcd + kube-apiserver on loopback with the objects written through the API: pods are created
 * and then given a kubelet's status through the status subresource (no scheduler or kubelet runs;
 * spec.nodeName places them).
 */
export async function kubernetesSource(
  sizes: EnrolSizes,
  teardown: Teardown,
  opts: KubernetesSourceOptions,
): Promise<EnrolSource> {
  const binDir = await kubeBinaries(REPO_ROOT);
  const starting = KubeApiServer.start({ binDir });
  // Registered before the start resolves, so an interrupt meanwhile still stops what it started.
  teardown.add(async () => {
    await (await starting.catch(() => undefined))?.stop();
  });
  const api = await starting;
  const writer = new KubeWriter({
    url: api.url,
    token: api.adminToken,
    caFile: api.caFile,
    concurrency: opts.concurrency,
  });
  teardown.add(() => writer.close());
  const ns = `/api/v1/namespaces/${BENCH_NAMESPACE}`;
  const processes = () => {
    const p = api.pids();
    return {
      ...(p.apiserver !== undefined && { 'API server': p.apiserver }),
      ...(p.etcd !== undefined && { etcd: p.etcd }),
    };
  };
  const cpu = async () =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(processes()).map(async ([k, pid]) => [k, await cpuOf([pid])] as const),
      ),
    );
  const cpu0 = await cpu();
  opts.log(`writing ${sizes.pods} pods and ${sizes.services} services through the API server`);
  const t0 = now();
  await writer.create('/api/v1/namespaces', benchNamespace(false));
  await writer.each(benchServiceAccounts(), (sa) => writer.create(`${ns}/serviceaccounts`, sa));
  await writer.each(benchServices(sizes), (svc) => writer.create(`${ns}/services`, svc));
  const indexes = Array.from({ length: sizes.pods }, (_, i) => i);
  await writer.each(indexes, async (i) => {
    const { pod, status } = benchPod(i, sizes);
    await writer.create(`${ns}/pods`, pod);
    await writer.request(
      'PATCH',
      `${ns}/pods/pod${i}/status`,
      { status },
      200,
      'application/merge-patch+json',
    );
  });
  const writeMs = now() - t0;
  const cpu1 = await cpu();
  writer.close();
  const kubectl = (...args: string[]) =>
    run('kubectl', ['--kubeconfig', api.kubeconfig, ...args], { timeout: 60_000 });
  return {
    name: 'kubernetes',
    env: { CP_CONFIG_SOURCE: 'kubernetes', CP_KUBECONFIG: api.kubeconfig, CP_POD_NAME: 'xds-bench-0' },
    writeMs,
    writeCpu: Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, v - (cpu0[k] ?? 0)])),
    setEnrolled: async (on) => {
      await kubectl(
        'label',
        'namespace',
        BENCH_NAMESPACE,
        on ? `${DATAPLANE_MODE}=ambient` : `${DATAPLANE_MODE}-`,
      );
    },
    processes,
  };
}
