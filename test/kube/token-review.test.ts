/**
 * Authentication as istiod does it, against a real kube-apiserver: callers present projected
 * service-account tokens (TokenRequest bound to a Pod object, audience istio-ca), the control plane
 * verifies them with TokenReview, and a node agent (istio-system/ztunnel) gets certificates only for
 * service accounts of pods on its own bound pod's node. The control plane runs in-process with
 * CP_AUTHENTICATION=tokenreview on the API server's kubeconfig; its pods come from the API
 * (`kubectl get -o json`, decoded by the control plane's own decoders) through a fixed ConfigSource.
 * Pods are objects only: no kubelet runs them, which TokenRequest and TokenReview do not need.
 */
import { execFile } from 'node:child_process';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ControlPlaneApp, decodeManifest, parseControlPlaneConfig } from '@ambient/controlplane';
import { KubeApiServer, kubeBinaries } from '@ambient/lab';
import { ADDRESS_TYPE_URL, createCsr, GrpcCaClient, meshProtos, SpiffeId } from '@ambient/shared';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlplaneRbac } from '../charts/helm.js';
import { kubectlOf } from './kubectl.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const TD = 'cluster.local';
type KubeObject = Extract<ReturnType<typeof decodeManifest>, { ok: true }>['value'];
const DELTA_ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

let api: KubeApiServer;
let dir: string;
let cp: ControlPlaneApp;
let port: number;
let cpKubeconfig: string;

const { kubectl, kubectlStdin } = kubectlOf(() => api.kubeconfig);

const rawPost = async (apiPath: string, body: object) =>
  JSON.parse(await kubectlStdin(JSON.stringify(body), 'create', '--raw', apiPath, '-f', '-')) as Record<
    string,
    unknown
  >;

function pod(ns: string, name: string, sa: string, node: string, labels: Record<string, string> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: {
      serviceAccountName: sa,
      nodeName: node,
      // No token secret exists without a controller manager; projected tokens come from TokenRequest.
      automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
    },
  };
}

/** A TokenRequest for a service account, bound to a pod unless `bound` is undefined. */
async function token(
  ns: string,
  sa: string,
  audiences: string[],
  bound?: string,
  expirationSeconds = 600,
): Promise<string> {
  const uid = bound
    ? (await kubectl('get', 'pod', bound, '-n', ns, '-o', 'jsonpath={.metadata.uid}')).trim()
    : '';
  const res = await rawPost(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      audiences,
      expirationSeconds,
      ...(bound && { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: bound, uid } }),
    },
  });
  return (res.status as { token: string }).token;
}

/** The same claims as a real token, signed by a key the API server does not know. */
function forged(real: string): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const [h, p] = real.split('.') as [string, string];
  const sig = createSign('RSA-SHA256').update(`${h}.${p}`).sign(privateKey).toString('base64url');
  return `${h}.${p}.${sig}`;
}

/**
 * The claims of a real token with its times moved by `shiftSeconds`, signed again with the API
 * server's own service-account key (same issuer, audience, key id and bound pod): a token only its
 * times set apart.
 */
async function resigned(real: string, shiftSeconds: number): Promise<string> {
  const [h, p] = real.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, number>;
  for (const k of ['exp', 'iat', 'nbf'] as const)
    if (typeof claims[k] === 'number') claims[k] += shiftSeconds;
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const key = await readFile(path.join(api.dir, 'sa.key'), 'utf8');
  const sig = createSign('RSA-SHA256').update(`${h}.${payload}`).sign(key).toString('base64url');
  return `${h}.${payload}.${sig}`;
}

/** The objects the control plane knows: what the API server holds now, plus a waypoint Gateway. */
async function apiObjects() {
  const list = JSON.parse(await kubectl('get', 'namespaces,serviceaccounts,pods', '-A', '-o', 'json')) as {
    items: object[];
  };
  const docs = [
    ...list.items,
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'waypoint', namespace: 'demo' },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    },
  ];
  const objects = new Map<string, KubeObject>();
  for (const d of docs) {
    const r = decodeManifest(d);
    if (r.ok === false) throw new Error(JSON.stringify(r.problems));
    if (r.ok === true)
      objects.set(`${r.value.kind}/${r.value.metadata.namespace}/${r.value.metadata.name}`, r.value);
  }
  return objects;
}

const caClient = (tok: string, impersonate: boolean) =>
  new GrpcCaClient({
    target: `127.0.0.1:${port}`,
    credentials: grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
    channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
    token: () => tok,
    impersonate,
  });

async function certFor(tok: string, id: SpiffeId, impersonate = true): Promise<string[]> {
  const client = caClient(tok, impersonate);
  try {
    return await client.createCertificate({
      csrPem: (await createCsr(id)).csrPem,
      ttlSeconds: 600,
      ...(impersonate && { identity: id }),
    });
  } finally {
    client.close();
  }
}

/** Opens a Delta ADS stream; resolves 'ok' on the first response, or the refusal's code and details. */
async function xdsStream(tok: string, nodeId: string, nodeName?: string): Promise<string> {
  const reqType = meshProtos().lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const client = new grpc.Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(Buffer.from(cp.rootCertPem)),
    { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
  );
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${tok}`);
  const call = client.makeBidiStreamRequest(
    DELTA_ADS,
    (b: Buffer) => b,
    (b: Buffer) => b,
    md,
  );
  try {
    return await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer within 20 s')), 20_000);
      call.on('data', () => {
        clearTimeout(t);
        resolve('ok');
      });
      call.on('error', (e: grpc.ServiceError) => {
        clearTimeout(t);
        resolve(`${grpc.status[e.code]}: ${e.details}`);
      });
      call.write(
        Buffer.from(
          reqType
            .encode(
              reqType.fromObject({
                node: {
                  id: nodeId,
                  metadata: { fields: nodeName ? { NODE_NAME: { stringValue: nodeName } } : {} },
                },
                typeUrl: ADDRESS_TYPE_URL,
              }),
            )
            .finish(),
        ),
      );
    });
  } finally {
    call.cancel();
    client.close();
  }
}

async function authFailures(): Promise<Record<string, number>> {
  const m = await cp.registry.getSingleMetric('citadel_server_authentication_failure_count')?.get();
  return Object.fromEntries((m?.values ?? []).map((v) => [String(v.labels.reason), v.value]));
}

/** TokenReview requests the API server has served (its own apiserver_request_total). */
async function tokenReviewsServed(): Promise<number> {
  const text = await kubectl('get', '--raw', '/metrics');
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('apiserver_request_total{') && line.includes('resource="tokenreviews"'))
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

const SLEEP = SpiffeId.of(TD, 'demo', 'sleep');
const OTHER = SpiffeId.of(TD, 'demo', 'other');
const ZTUNNEL_A_ID = 'ztunnel~10.0.0.10~ztunnel-a.istio-system~istio-system.svc.cluster.local';
const router = (p: string) => `router~10.0.0.50~${p}.demo~demo.svc.cluster.local`;

let nodeAgentA: string;

describe('TokenReview authentication and node authorization on a real kube-apiserver', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    api = await KubeApiServer.start({ binDir: await kubeBinaries(ROOT) });
    console.log(`kube-apiserver and etcd ready in ${Date.now() - t0} ms`);
    await kubectl('create', 'namespace', 'istio-system');
    await kubectl('create', 'namespace', 'demo');
    for (const [ns, sa] of [
      ['istio-system', 'ztunnel'],
      ['demo', 'sleep'],
      ['demo', 'other'],
      ['demo', 'waypoint'],
    ] as const)
      await kubectl('create', 'serviceaccount', sa, '-n', ns);
    const pods = [
      pod('istio-system', 'ztunnel-a', 'ztunnel', 'node-a'),
      pod('istio-system', 'ztunnel-b', 'ztunnel', 'node-b'),
      pod('demo', 'sleep-a', 'sleep', 'node-a'),
      pod('demo', 'other-b', 'other', 'node-b'),
      pod('demo', 'waypoint-0', 'waypoint', 'node-a', {
        'gateway.networking.k8s.io/gateway-name': 'waypoint',
      }),
      pod('demo', 'waypoint-1', 'waypoint', 'node-b', {
        'gateway.networking.k8s.io/gateway-name': 'waypoint',
      }),
      pod('demo', 'doomed', 'sleep', 'node-a'),
    ];
    await kubectlStdin(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }), 'apply', '-f', '-');
    nodeAgentA = await token('istio-system', 'ztunnel', ['istio-ca'], 'ztunnel-a');
    const objects = await apiObjects();
    dir = await mkdtemp(path.join(os.tmpdir(), 'cp-tokenreview-'));
    // The control plane talks to the API as its own service account, with only the RBAC its chart
    // installs (charts/controlplane, rendered by the real Helm).
    await kubectlStdin(await controlplaneRbac(), 'apply', '-f', '-');
    const cpRes = await rawPost('/api/v1/namespaces/istio-system/serviceaccounts/controlplane/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600 },
    });
    cpKubeconfig = path.join(dir, 'controlplane.kubeconfig');
    await writeFile(
      cpKubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters:\n- name: lab\n  cluster:\n    server: ${api.url}\n    certificate-authority: ${api.caFile}`,
        `users:\n- name: controlplane\n  user:\n    token: ${(cpRes.status as { token: string }).token}`,
        'contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: controlplane',
        'current-context: lab',
        '',
      ].join('\n'),
    );
    const config = parseControlPlaneConfig({
      CP_MANIFEST_DIR: dir,
      CP_CA_DIR: path.join(dir, 'ca'),
      CP_AUTHENTICATION: 'tokenreview',
      CP_KUBECONFIG: cpKubeconfig,
      CP_GRPC_ADDRESS: '127.0.0.1',
      CP_GRPC_PORT: '0',
      CP_MONITOR_ADDRESS: '127.0.0.1',
      CP_MONITOR_PORT: '0',
      CP_DEBOUNCE_MS: '0',
    });
    if (!config.ok) throw new Error(JSON.stringify(config.problems));
    cp = new ControlPlaneApp({
      config: config.value,
      logger: pino({ level: 'silent' }),
      source: {
        start: async () => {},
        close: () => {},
        objects: () => objects,
        invalid: () => [],
        onChange: () => {},
      },
    });
    port = (await cp.start()).grpc.port;
  }, 180_000);

  afterAll(async () => {
    await cp?.close();
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('TokenReview of a pod-bound token names the service account and the pod (what 1.20 returns)', async () => {
    const review = (await rawPost('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: nodeAgentA, audiences: ['istio-ca'] },
    })) as {
      status: { authenticated: boolean; audiences: string[]; user: { username: string; extra: object } };
    };
    console.log(`TokenReview status.user.extra: ${JSON.stringify(review.status.user.extra)}`);
    expect(review.status.authenticated).toBe(true);
    expect(review.status.audiences).toEqual(['istio-ca']);
    expect(review.status.user.username).toBe('system:serviceaccount:istio-system:ztunnel');
    expect(Object.keys(review.status.user.extra)).toEqual(
      expect.arrayContaining([
        'authentication.kubernetes.io/pod-name',
        'authentication.kubernetes.io/pod-uid',
      ]),
    );
  }, 30_000);

  it("signs for a service account with a pod on the node agent's own node", async () => {
    const chain = await certFor(nodeAgentA, SLEEP);
    expect(chain.length).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('refuses a node agent asking for a service account whose pods run on another node', async () => {
    await expect(certFor(nodeAgentA, OTHER)).rejects.toThrow(
      /PERMISSION_DENIED.*no pod with service account demo\/other runs on node node-a/,
    );
    // The node agent on node-b is granted it: the refusal is about the node, not the account.
    const nodeAgentB = await token('istio-system', 'ztunnel', ['istio-ca'], 'ztunnel-b');
    expect((await certFor(nodeAgentB, OTHER)).length).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('refuses a token for another audience, counted as audience', async () => {
    const before = (await authFailures()).audience ?? 0;
    const apiAudience = await token(
      'istio-system',
      'ztunnel',
      ['https://kubernetes.default.svc.cluster.local'],
      'ztunnel-a',
    );
    await expect(certFor(apiAudience, SLEEP)).rejects.toThrow(/UNAUTHENTICATED.*TokenReview/);
    expect((await authFailures()).audience).toBe(before + 1);
  }, 30_000);

  it('refuses a token whose bound pod is gone, one signed by another key, and one bound to no pod', async () => {
    // expirationSeconds is at least 600 on 1.20: a token made invalid by deleting its bound pod
    // stands for an expired one (the API server refuses both at review time).
    const doomed = await token('demo', 'sleep', ['istio-ca'], 'doomed');
    await kubectl('delete', 'pod', 'doomed', '-n', 'demo', '--grace-period=0', '--force');
    await expect(certFor(doomed, SLEEP, false)).rejects.toThrow(
      /UNAUTHENTICATED.*TokenReview.*Token has been invalidated/,
    );
    const sleepA = await token('demo', 'sleep', ['istio-ca'], 'sleep-a');
    await expect(certFor(forged(sleepA), SLEEP, false)).rejects.toThrow(/UNAUTHENTICATED/);
    const unbound = await token('demo', 'sleep', ['istio-ca']);
    await expect(certFor(unbound, SLEEP, false)).rejects.toThrow(/UNAUTHENTICATED.*not bound to a pod/);
    // The real token of the same pod is accepted: the refusals are about the tokens.
    expect((await certFor(sleepA, SLEEP, false)).length).toBeGreaterThanOrEqual(2);
    const failures = await authFailures();
    console.log(`authentication failures by reason: ${JSON.stringify(failures)}`);
    expect(failures.unbound).toBeGreaterThanOrEqual(1);
    expect(failures.token).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('refuses an expired token the API server itself refuses (signed with its key, exp in the past), counted as expired', async () => {
    const real = await token('demo', 'sleep', ['istio-ca'], 'sleep-a', 900);
    // Moved 2 h back: expired an hour and more ago. Moved 1 h on and back: the control, valid.
    const expired = await resigned(real, -7200);
    const valid = await resigned(real, 60);
    const review = async (tok: string) =>
      (
        (await rawPost('/apis/authentication.k8s.io/v1/tokenreviews', {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token: tok, audiences: ['istio-ca'] },
        })) as { status: { authenticated?: boolean; error?: string } }
      ).status;
    const refused = await review(expired);
    console.log(`TokenReview of the expired token: ${JSON.stringify(refused)}`);
    expect(refused.authenticated).not.toBe(true);
    expect(refused.error).toMatch(/expired/);
    expect((await review(valid)).authenticated).toBe(true);
    const before = (await authFailures()).expired ?? 0;
    await expect(certFor(expired, SLEEP, false)).rejects.toThrow(/UNAUTHENTICATED.*TokenReview.*expired/);
    expect((await authFailures()).expired).toBe(before + 1);
    // xDS refuses it too, counted under the same reason.
    expect(await xdsStream(expired, router('sleep-a'))).toMatch(/^UNAUTHENTICATED: .*expired/);
    expect((await authFailures()).expired).toBeGreaterThan(before + 1);
    // The same claims, not expired, are accepted: the refusal is about exp alone.
    expect((await certFor(valid, SLEEP, false)).length).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('xDS: a node agent opens a stream for its own node only; a waypoint token only its own pod, and only its own certificate', async () => {
    expect(await xdsStream(nodeAgentA, ZTUNNEL_A_ID, 'node-a')).toBe('ok');
    expect(await xdsStream(nodeAgentA, ZTUNNEL_A_ID, 'node-b')).toBe(
      'PERMISSION_DENIED: token is bound to node node-a, not node-b',
    );
    const wp0 = await token('demo', 'waypoint', ['istio-ca'], 'waypoint-0');
    expect(await xdsStream(wp0, router('waypoint-0'))).toBe('ok');
    expect(await xdsStream(wp0, router('waypoint-1'))).toMatch(
      /^PERMISSION_DENIED: token is bound to pod demo\/waypoint-0 \(.+\), not demo\/waypoint-1/,
    );
    expect(await xdsStream(nodeAgentA, router('waypoint-0'))).toMatch(
      /^PERMISSION_DENIED: a node agent token/,
    );
    expect(await xdsStream('not-a-token', ZTUNNEL_A_ID, 'node-a')).toMatch(/^UNAUTHENTICATED/);
    // Its certificate: the gateway's own account, and no other.
    const waypointId = SpiffeId.of(TD, 'demo', 'waypoint');
    expect((await certFor(wp0, waypointId, false)).length).toBeGreaterThanOrEqual(2);
    await expect(certFor(wp0, SLEEP)).rejects.toThrow(
      /PERMISSION_DENIED.*demo\/waypoint may not impersonate/,
    );
  }, 60_000);

  it('a burst of certificate requests with one new token costs the API server one TokenReview', async () => {
    // A lifetime no other test uses: a token no earlier review has seen.
    const sleepA = await token('demo', 'sleep', ['istio-ca'], 'sleep-a', 800);
    const before = await tokenReviewsServed();
    const t0 = Date.now();
    const client = caClient(sleepA, false);
    try {
      const csrPem = (await createCsr(SLEEP)).csrPem;
      const chains = await Promise.all(
        Array.from({ length: 50 }, () => client.createCertificate({ csrPem, ttlSeconds: 600 })),
      );
      expect(chains.every((c) => c.length >= 2)).toBe(true);
    } finally {
      client.close();
    }
    const reviews = (await tokenReviewsServed()) - before;
    console.log(
      `50 concurrent CSRs with one token: ${reviews} TokenReview request(s), ${Date.now() - t0} ms`,
    );
    expect(reviews).toBe(1);
  }, 60_000);

  it('API server down: a token reviewed before keeps working until its cache entry ends, a new one is refused (review_error), and accepted once it is back', async () => {
    const known = await token('demo', 'sleep', ['istio-ca'], 'sleep-a');
    // Another lifetime: two requests in one second would otherwise give the same token.
    const fresh = await token('demo', 'sleep', ['istio-ca'], 'sleep-a', 700);
    expect((await certFor(known, SLEEP, false)).length).toBeGreaterThanOrEqual(2);
    const before = (await authFailures()).review_error ?? 0;
    await api.stopApiServer();
    try {
      const t0 = Date.now();
      await expect(certFor(fresh, SLEEP, false)).rejects.toThrow(/UNAUTHENTICATED.*TokenReview failed/);
      console.log(`refusal with the API server down took ${Date.now() - t0} ms`);
      expect((await authFailures()).review_error).toBe(before + 1);
      expect((await certFor(known, SLEEP, false)).length).toBeGreaterThanOrEqual(2);
    } finally {
      await api.startApiServer();
    }
    expect((await certFor(fresh, SLEEP, false)).length).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('the control plane RBAC grants what it reads and writes, and refuses the rest', async () => {
    // A SubjectAccessReview per check, as `kubectl auth can-i --as=...` asks, but naming the API
    // group itself: can-i resolves kinds through discovery, which lacks CRDs not installed here.
    const can = async (verb: string, resource: string, namespace = '', subresource = '') => {
      const [plural = '', ...group] = resource.split('.');
      const res = await rawPost('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: 'system:serviceaccount:istio-system:controlplane',
          groups: ['system:serviceaccounts', 'system:serviceaccounts:istio-system', 'system:authenticated'],
          resourceAttributes: { verb, resource: plural, group: group.join('.'), namespace, subresource },
        },
      });
      return (res.status as { allowed?: boolean }).allowed === true ? 'yes' : 'no';
    };
    const allowed: [string, string, string?, string?][] = [
      ['watch', 'pods'],
      ['list', 'namespaces'],
      ['watch', 'services', 'demo'],
      ['list', 'serviceaccounts', 'demo'],
      ['watch', 'gateways.gateway.networking.k8s.io', 'demo'],
      ['list', 'httproutes.gateway.networking.k8s.io'],
      ['watch', 'authorizationpolicies.security.istio.io'],
      ['list', 'peerauthentications.security.istio.io'],
      ['watch', 'virtualservices.networking.istio.io'],
      ['list', 'destinationrules.networking.istio.io'],
      ['create', 'tokenreviews.authentication.k8s.io'],
      ['create', 'deployments.apps', 'demo'],
      ['patch', 'deployments.apps', 'demo'],
      ['patch', 'services', 'demo'],
      ['patch', 'serviceaccounts', 'demo'],
      ['patch', 'gateways.gateway.networking.k8s.io', 'demo', 'status'],
      ['get', 'gatewayclasses.gateway.networking.k8s.io'],
      ['create', 'gatewayclasses.gateway.networking.k8s.io'],
      ['patch', 'gatewayclasses.gateway.networking.k8s.io', '', 'status'],
      ['update', 'leases.coordination.k8s.io', 'istio-system'],
      ['patch', 'authorizationpolicies.security.istio.io', 'demo', 'status'],
      ['patch', 'services', 'demo', 'status'],
      ['patch', 'httproutes.gateway.networking.k8s.io', 'demo', 'status'],
      ['watch', 'configmaps'],
      ['get', 'configmaps', 'demo'],
      ['create', 'configmaps', 'demo'],
      ['update', 'configmaps', 'demo'],
    ];
    const denied: [string, string, string?, string?][] = [
      ['get', 'secrets', 'istio-system'],
      ['create', 'pods', 'demo'],
      ['delete', 'namespaces'],
      ['update', 'gateways.gateway.networking.k8s.io', 'demo'],
      ['create', 'authorizationpolicies.security.istio.io', 'demo'],
      ['update', 'leases.coordination.k8s.io', 'demo'],
      ['create', 'subjectaccessreviews.authorization.k8s.io'],
      ['update', 'nodes'],
      ['delete', 'services', 'demo'],
      ['delete', 'deployments.apps', 'demo'],
      ['update', 'gatewayclasses.gateway.networking.k8s.io'],
      ['watch', 'customresourcedefinitions.apiextensions.k8s.io'],
      ['update', 'gateways.gateway.networking.k8s.io', 'demo', 'status'],
      ['update', 'authorizationpolicies.security.istio.io', 'demo', 'status'],
      ['patch', 'peerauthentications.security.istio.io', 'demo', 'status'],
      ['update', 'services', 'demo', 'status'],
      ['delete', 'configmaps', 'demo'],
      ['patch', 'configmaps', 'demo'],
      ['update', 'httproutes.gateway.networking.k8s.io', 'demo', 'status'],
      ['patch', 'httproutes.gateway.networking.k8s.io', 'demo'],
      ['patch', 'grpcroutes.gateway.networking.k8s.io', 'demo', 'status'],
    ];
    const answers = await Promise.all([...allowed, ...denied].map((a) => can(...a)));
    const got = [...allowed, ...denied].map((a, i) => `${a.join(' ')}: ${answers[i]}`);
    expect(got).toEqual([
      ...allowed.map((a) => `${a.join(' ')}: yes`),
      ...denied.map((a) => `${a.join(' ')}: no`),
    ]);
    // kubectl auth can-i itself, for built-in kinds discovery knows.
    const canI = async (...args: string[]) =>
      (
        await run(
          'kubectl',
          [
            '--kubeconfig',
            api.kubeconfig,
            'auth',
            'can-i',
            ...args,
            '--as=system:serviceaccount:istio-system:controlplane',
          ],
          { encoding: 'utf8' },
        ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
      ).stdout.trim();
    expect(await canI('watch', 'pods', '--all-namespaces')).toBe('yes');
    expect(await canI('create', 'tokenreviews')).toBe('yes');
    expect(await canI('get', 'secrets', '-n', 'istio-system')).toBe('no');
    // Every TokenReview above was made as this account (the control plane's CP_KUBECONFIG holds
    // its token); reading secrets with that kubeconfig is forbidden.
    await expect(
      run('kubectl', ['--kubeconfig', cpKubeconfig, 'get', 'secrets', '-n', 'istio-system']),
    ).rejects.toThrow(/forbidden/);
  }, 60_000);
});
