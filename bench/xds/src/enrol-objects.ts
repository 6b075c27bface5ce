/**
 * The cluster the enrolment benchmark labels: one namespace (`bench`, not enrolled at first) with
 * N running pods spread over the nodes by spec.nodeName, M services selecting them, and their
 * service accounts. The same objects go to a manifest directory or through a Kubernetes API
 * server, so the two sources build the same model.
 */

export const BENCH_NAMESPACE = 'bench';
export const DATAPLANE_MODE = 'istio.io/dataplane-mode';
const SERVICE_ACCOUNTS = 20;

export interface EnrolSizes {
  readonly pods: number;
  readonly services: number;
  /** Nodes the pods are spread over (node0 .. node<nodes-1>), one xDS client per node. */
  readonly nodes: number;
}

type Obj = Record<string, unknown>;

/** Addresses fit the ranges used: pods in 10.64.0.0/16, services in 10.96.1.0 .. 10.96.255.x. */
export function checkSizes(s: EnrolSizes): void {
  if (!(s.pods >= 1 && s.pods <= 250 * 256)) throw new Error(`pods: 1 to ${250 * 256}, not ${s.pods}`);
  if (!(s.services >= 1 && s.services <= 250 * 255))
    throw new Error(`services: 1 to ${250 * 255}, not ${s.services}`);
  if (!(s.nodes >= 1)) throw new Error(`nodes: at least 1, not ${s.nodes}`);
}

export function benchNamespace(enrolled: boolean): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: BENCH_NAMESPACE, ...(enrolled && { labels: { [DATAPLANE_MODE]: 'ambient' } }) },
  };
}

export function benchServiceAccounts(): Obj[] {
  return Array.from({ length: SERVICE_ACCOUNTS }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: `sa${i}`, namespace: BENCH_NAMESPACE },
  }));
}

export function benchServices(s: EnrolSizes): Obj[] {
  return Array.from({ length: s.services }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc${i}`, namespace: BENCH_NAMESPACE },
    spec: {
      // 10.96.0.x is left to the API server's own `kubernetes` service.
      clusterIP: `10.96.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`,
      selector: { app: `svc${i}` },
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    },
  }));
}

/** Pod i without its status (what is created), and the status a kubelet would write for it. */
export function benchPod(i: number, s: EnrolSizes): { pod: Obj; status: Obj } {
  const ip = `10.64.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  return {
    pod: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `pod${i}`, namespace: BENCH_NAMESPACE, labels: { app: `svc${i % s.services}` } },
      spec: {
        nodeName: `node${i % s.nodes}`,
        serviceAccountName: `sa${i % SERVICE_ACCOUNTS}`,
        automountServiceAccountToken: false,
        containers: [{ name: 'app', image: 'app', ports: [{ name: 'http', containerPort: 8080 }] }],
      },
    },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [
        { type: 'Ready', status: 'True' },
        { type: 'ContainersReady', status: 'True' },
      ],
    },
  };
}
