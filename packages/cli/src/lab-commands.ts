/**
 * `ambientctl lab up|down|status|exec` and `ambientctl demo lab`. A lab brought up here keeps
 * running after the command returns: its apps and node agents are detached, and what later
 * commands need is in /run/ambient-lab/<name>/state.json.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, readFile as readText, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyManifests, deleteManifest, Lab, LabMesh, type LabSpec, labelManifest } from '@ambient/lab';
import { parseAllDocuments } from 'yaml';
import { CliError } from './cli-error.js';
import { parsePrometheusText } from './ztunnel/tcp-traffic-table.js';
import type { ZtunnelReader } from './ztunnel/ztunnel-commands.js';

export const STATE_ROOT = '/run/ambient-lab';

/** The demo topology: two nodes, an enrolled namespace with a client and a two-pod service, and a pod outside the mesh. */
export const DEMO_SPEC: LabSpec = {
  nodes: 2,
  pods: [
    { name: 'sleep', namespace: 'demo', node: 0, serviceAccount: 'sleep', labels: { app: 'sleep' } },
    { name: 'echo-0', namespace: 'demo', node: 1, serviceAccount: 'echo', labels: { app: 'echo' } },
    { name: 'echo-1', namespace: 'demo', node: 0, serviceAccount: 'echo', labels: { app: 'echo' } },
    { name: 'client', namespace: 'legacy', node: 1, serviceAccount: 'client', labels: { app: 'client' } },
  ],
  services: [
    { name: 'echo', namespace: 'demo', selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] },
  ],
};
const ENROLLED = ['demo'];

const httpEcho = (name: string) =>
  `require('http').createServer((q,r)=>r.end('${name} saw '+q.socket.remoteAddress.replace('::ffff:','')+'\\n')).listen(8080,'0.0.0.0')`;

interface LabState {
  readonly name: string;
  spec: LabSpec;
  readonly pids: number[];
  /** Waypoints deployed with `ambientctl waypoint apply`. */
  waypoints?: Array<{ namespace: string; name: string; vip: string; pod: string }>;
  readonly dir: string;
  readonly enrolled: readonly string[];
}

const stateDir = (name: string) => join(STATE_ROOT, name);

async function readState(name: string): Promise<LabState> {
  try {
    return JSON.parse(await readFile(join(stateDir(name), 'state.json'), 'utf8')) as LabState;
  } catch {
    throw new Error(`no lab named "${name}" is up (run: ambientctl lab up --name ${name})`);
  }
}

export async function labUp(name: string, print: (l: string) => void): Promise<LabState> {
  const dir = stateDir(name);
  await labDown(name, () => {}).catch(() => {});
  await mkdir(dir, { recursive: true });
  const lab = await Lab.create(name, DEMO_SPEC);
  const pids: number[] = [];
  try {
    for (const pod of lab.pods.filter((p) => p.labels?.app === 'echo')) {
      const log = openSync(join(dir, `app-${pod.name}.log`), 'a');
      const child = lab.start(pod.netns, [process.execPath, '-e', httpEcho(pod.name)], undefined, log);
      if (child.pid) pids.push(child.pid);
    }
    const mesh = new LabMesh(lab, { dir, enrolledNamespaces: ENROLLED, logLevel: 'info' });
    try {
      await mesh.start();
    } finally {
      pids.push(...mesh.pids, ...(mesh.controlPlanePid ? [mesh.controlPlanePid] : []));
    }
  } catch (err) {
    Lab.killProcesses(pids);
    await Lab.cleanup(name);
    throw err;
  }
  const state: LabState = { name, spec: DEMO_SPEC, pids, dir, enrolled: ENROLLED };
  await writeFile(join(dir, 'state.json'), JSON.stringify(state, null, 2));
  await labStatus(name, print);
  return state;
}

export async function labDown(name: string, print: (l: string) => void): Promise<void> {
  const state = await readState(name);
  Lab.killProcesses(state.pids);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const removed = await Lab.cleanup(name);
  await rm(state.dir, { recursive: true, force: true });
  print(`lab "${name}" is down (${removed.length} namespaces removed)`);
}

export async function labStatus(name: string, print: (l: string) => void): Promise<void> {
  const state = await readState(name);
  const lab = Lab.attach(name, state.spec);
  const mesh = new LabMesh(lab, { dir: state.dir, enrolledNamespaces: state.enrolled });
  print(
    `lab "${name}": ${lab.nodes.length} nodes, ${lab.pods.length} pods, ${lab.services.length} services; state in ${state.dir}`,
  );
  const cp = await mesh.controlPlaneGet('/debug/connections').catch(() => undefined);
  print(
    `  control plane  ${mesh.controlPlaneAddress.padEnd(20)} ${cp ? `serving ${(JSON.parse(cp) as unknown[]).length} proxies` : 'NOT serving'}; manifests in ${mesh.manifestDir}`,
  );
  for (const node of lab.nodes) {
    print(
      `  node${node.index}  ${node.ip.padEnd(14)} ztunnel ${(await mesh.ready(node.index)) ? 'ready' : 'NOT ready'}`,
    );
  }
  for (const pod of lab.pods) {
    const where = `${pod.namespace}/${pod.name}`;
    const gateway = pod.labels?.['gateway.networking.k8s.io/gateway-name'];
    const what = gateway
      ? `waypoint ${gateway} ${(await mesh.waypointReady(pod)) ? 'ready' : 'NOT ready'}`
      : (await mesh.isEnrolled(pod))
        ? 'enrolled (HBONE)'
        : 'not enrolled';
    print(`  ${where.padEnd(16)} ${pod.ip.padEnd(14)} node${pod.node}  ${what}`);
  }
  for (const s of lab.services) {
    print(
      `  service ${s.name}.${s.namespace}.svc.cluster.local  ${s.vip}:${s.ports.map((p) => p.port).join(',')} -> ${s.endpoints.map((e) => e.name).join(', ')}`,
    );
  }
}

/** Runs a command in a pod (`namespace/pod`) or node (`node0`), with the terminal attached. */
export async function labExec(name: string, target: string, cmd: string[]): Promise<number> {
  const state = await readState(name);
  const lab = Lab.attach(name, state.spec);
  let netns: string;
  const nodeMatch = /^node(\d+)$/.exec(target);
  if (nodeMatch) {
    const node = lab.nodes[Number(nodeMatch[1])];
    if (!node) throw new Error(`no ${target} in lab "${name}"`);
    netns = node.netns;
  } else {
    const [ns, pod] = target.split('/');
    netns = lab.pod(ns ?? '', pod ?? '').netns;
  }
  const child = spawn('ip', ['netns', 'exec', netns, ...cmd], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

/** The main demo: a two-node lab with the mesh, curl across it, the proof, and teardown. */
export async function demoLab(options: {
  keep: boolean;
  name?: string;
  print: (l: string) => void;
}): Promise<void> {
  const { print } = options;
  const name = options.name ?? 'demo';
  print('Bringing up a two-node lab with a ztunnel per node...');
  const state = await labUp(name, print);
  const lab = Lab.attach(name, state.spec);
  const mesh = new LabMesh(lab, { dir: state.dir, enrolledNamespaces: state.enrolled });
  try {
    const sleep = lab.pod('demo', 'sleep');
    print('\nAn enrolled pod calls the service by name (its ztunnel tunnels the connection over HBONE):');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await lab.exec(sleep, [
        'curl',
        '-s',
        '--max-time',
        '5',
        'http://echo.demo.svc.cluster.local/',
      ]);
      print(
        `  demo/sleep$ curl http://echo.demo.svc.cluster.local/  ->  ${r.stdout.trim() || `failed (exit ${r.code})`}`,
      );
      if (r.code !== 0 || !r.stdout.includes(`saw ${sleep.ip}`)) throw new Error('the enrolled call failed');
      seen.add(r.stdout.split(' ')[0] ?? '');
    }
    const client = lab.pod('legacy', 'client');
    print(
      '\nA pod outside the mesh calls the same service (plaintext into the enrolled pod, allowed by default):',
    );
    const r = await lab.exec(client, ['curl', '-s', '--max-time', '5', 'http://echo.demo/']);
    print(`  legacy/client$ curl http://echo.demo/  ->  ${r.stdout.trim() || `failed (exit ${r.code})`}`);
    if (r.code !== 0) throw new Error('the plaintext call failed');
    print('\nWhat the node agents report (istio_tcp_connections_opened_total, reporter="destination"):');
    for (const node of lab.nodes) {
      const samples = parsePrometheusText(await mesh.metrics(node.index)).filter(
        (x) => x.name === 'istio_tcp_connections_opened_total' && x.labels.reporter === 'destination',
      );
      for (const { labels: m, value } of samples) {
        print(
          `  node${node.index}: ${m.source_workload} -> ${m.destination_workload}  ${m.connection_security_policy}  principal ${m.source_principal}  count ${value}`,
        );
      }
    }
    print(
      `\nOK: ${seen.size} echo endpoints answered over mutual TLS; the apps saw the client pod's own IP.`,
    );

    print(
      '\nAn L7 waypoint for the services of namespace demo (ambientctl waypoint apply -n demo --enroll-namespace):',
    );
    await waypointApply({
      lab: name,
      namespace: 'demo',
      enrollNamespace: true,
      print: (l) => print(`  ${l}`),
    });
    const policy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-get-only, namespace: demo }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: ALLOW
  rules:
    - from: [{ source: { principals: [cluster.local/ns/demo/sa/sleep] } }]
      to: [{ operation: { methods: [GET] } }]
`;
    print('  and an AuthorizationPolicy on it: only demo/sleep, only GET');
    await applyManifests(join(state.dir, 'manifests'), policy);
    const call = async (method: string) => {
      const out = await lab.exec(sleep, [
        'curl',
        '-s',
        '-i',
        '-X',
        method,
        '--max-time',
        '5',
        'http://echo.demo.svc.cluster.local/',
      ]);
      const [head = '', body = ''] = out.stdout.split(/\r?\n\r?\n/, 2);
      const status = /^HTTP\/\S+ (\d{3})/.exec(head)?.[1] ?? '000';
      const id = /^x-request-id: (\S+)/im.exec(head)?.[1];
      return { text: `${body.trim()} [${status}]`, id };
    };
    const wp = Lab.attach(name, (await readState(name)).spec).pods.find(
      (p) => p.namespace === 'demo' && p.name === 'waypoint-0',
    );
    // Wait until the policy has reached the waypoint and sleep's node agent sends the echo
    // service through it (it takes well under a second).
    for (let i = 0; i < 100 && wp; i++) {
      const atWaypoint = JSON.stringify(await mesh.waypointConfigDump(wp).catch(() => ({})));
      const atNode = JSON.stringify(await mesh.configDump(sleep.node).catch(() => ({})));
      if (atWaypoint.includes('echo-get-only') && atNode.includes('waypoint.demo.svc.cluster.local')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const denied = (await call('POST')).text;
    const allowed = await call('GET');
    print(
      `  demo/sleep$ curl http://echo.demo.svc.cluster.local/          ->  ${allowed.text}  (x-request-id ${allowed.id ?? 'none'})`,
    );
    print(`  demo/sleep$ curl -X POST http://echo.demo.svc.cluster.local/  ->  ${denied}`);
    print(
      "  (through a waypoint the app sees the waypoint's address, as with upstream ztunnel; the waypoint names the client in x-forwarded-for)",
    );
    if (!allowed.text.endsWith('[200]') || !denied.includes('RBAC: access denied [403]'))
      throw new Error('the waypoint did not apply the policy');
    if (wp) {
      print('\nWhat the waypoint reports (istio_requests_total, reporter="waypoint"):');
      for (const { labels: m, value } of parsePrometheusText(await mesh.waypointMetrics(wp)).filter(
        (x) => x.name === 'istio_requests_total',
      )) {
        print(
          `  ${m.source_workload} -> ${m.destination_service_name} (${m.destination_workload})  ${m.response_code}  flags ${m.response_flags}  principal ${m.source_principal}  count ${value}`,
        );
      }
    }
    print(
      '\nOK: HTTP went client ztunnel -> waypoint -> destination ztunnel; the waypoint applied L7 policy.',
    );
    if (options.keep) {
      print(
        `\nThe lab is still up. Try:\n  ambientctl lab status\n  ambientctl lab exec demo/sleep -- curl -s http://echo.demo.svc.cluster.local/\n  ambientctl lab down`,
      );
    }
  } finally {
    if (!options.keep) await labDown(name, print);
  }
}

const KINDS: Record<string, string> = {
  namespace: 'Namespace',
  namespaces: 'Namespace',
  ns: 'Namespace',
  pod: 'Pod',
  pods: 'Pod',
  po: 'Pod',
  service: 'Service',
  services: 'Service',
  svc: 'Service',
  serviceaccount: 'ServiceAccount',
  sa: 'ServiceAccount',
  authorizationpolicy: 'AuthorizationPolicy',
  peerauthentication: 'PeerAuthentication',
  gateway: 'Gateway',
};

function kindOf(kind: string): string {
  const k = KINDS[kind.toLowerCase()];
  if (!k)
    throw new Error(
      `unknown kind ${JSON.stringify(kind)} (one of ${[...new Set(Object.values(KINDS))].join(', ')})`,
    );
  return k;
}

/** `ambientctl label <kind> <name> k=v k2-`: edits the object's labels in the lab's manifests. */
export async function labelObject(options: {
  lab: string;
  kind: string;
  name: string;
  namespace: string;
  labels: readonly string[];
  print: (l: string) => void;
}): Promise<void> {
  const state = await readState(options.lab);
  const kind = kindOf(options.kind);
  const ref = { kind, namespace: kind === 'Namespace' ? '' : options.namespace, name: options.name };
  const labels = await labelManifest(join(state.dir, 'manifests'), ref, options.labels);
  const shown =
    Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '(none)';
  options.print(`${kind.toLowerCase()}/${options.name} labeled: ${shown}`);
}

/** `ambientctl apply -f <file>`: validates every document and writes them to the lab's manifests. */
export async function applyFile(options: {
  lab: string;
  file: string;
  print: (l: string) => void;
}): Promise<void> {
  const state = await readState(options.lab);
  const text = options.file === '-' ? await readStdin() : await readText(options.file, 'utf8');
  for (const f of await applyManifests(join(state.dir, 'manifests'), text)) options.print(`applied ${f}`);
}

/** `ambientctl delete -f <file>`: removes the objects a file names. */
export async function deleteFile(options: {
  lab: string;
  file: string;
  print: (l: string) => void;
}): Promise<void> {
  const state = await readState(options.lab);
  const text = options.file === '-' ? await readStdin() : await readText(options.file, 'utf8');
  for (const doc of parseAllDocuments(text)) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null;
    if (!o?.kind) continue;
    const ref = {
      kind: o.kind,
      namespace: o.kind === 'Namespace' ? '' : (o.metadata?.namespace ?? 'default'),
      name: o.metadata?.name ?? '',
    };
    await deleteManifest(join(state.dir, 'manifests'), ref);
    options.print(`deleted ${o.kind.toLowerCase()}/${ref.name}`);
  }
}

/** Waypoint service VIPs come from their own block of the VIP range. */
const WAYPOINT_VIP_BASE = '198.19.250.';

/** The `--for` values of `ambientctl waypoint apply`, as `istioctl waypoint apply --for`. */
export const WAYPOINT_FOR = ['service', 'workload', 'all', 'none'] as const;

/** Refuses what istioctl refuses before it writes anything: the reserved name, an unknown --for. */
export function checkWaypointArgs(name: string, waypointFor: string | undefined): void {
  if (name === 'none')
    throw new CliError('CLI_ERR_ARGS', "invalid name provided for waypoint, 'none' is a reserved value");
  if (waypointFor !== undefined && !(WAYPOINT_FOR as readonly string[]).includes(waypointFor))
    throw new CliError(
      'CLI_ERR_ARGS',
      `invalid traffic type: ${waypointFor}. Valid options are: ${WAYPOINT_FOR.join(', ')}`,
    );
}

/**
 * `ambientctl waypoint apply`, the form of `istioctl waypoint apply`: an `istio-waypoint` Gateway
 * named `waypoint` unless `--name` says otherwise, labelled `istio.io/waypoint-for` when `--for`
 * is given, and, as Istio's deployment controller does, its pod and Service; returns once the
 * waypoint has its certificate and config. `--enroll-namespace` then labels the namespace
 * `istio.io/use-waypoint=<name>`; when the namespace already uses another waypoint, nothing is
 * applied unless `--overwrite`.
 * `--service-account` is the legacy form (`istio.io/for-service-account`, default name
 * `<service-account>-waypoint`).
 */
export async function waypointApply(options: {
  lab: string;
  namespace: string;
  /** Legacy: serve this service account's workloads. */
  serviceAccount?: string;
  name?: string;
  waypointFor?: string;
  enrollNamespace?: boolean;
  overwrite?: boolean;
  node?: number;
  print: (l: string) => void;
}): Promise<void> {
  const name = options.name ?? (options.serviceAccount ? `${options.serviceAccount}-waypoint` : 'waypoint');
  checkWaypointArgs(name, options.waypointFor);
  const state = await readState(options.lab);
  const waypoints = state.waypoints ?? [];
  const existing = waypoints.find((w) => w.namespace === options.namespace && w.name === name);
  const lab = Lab.attach(options.lab, state.spec);
  const mesh = new LabMesh(lab, { dir: state.dir, enrolledNamespaces: state.enrolled });
  if (options.enrollNamespace && !options.overwrite) {
    // As istioctl: leave everything as it is rather than take the namespace from another waypoint.
    const current = await mesh.namespaceWaypoint(options.namespace);
    if (current !== undefined && current !== name) {
      options.print(
        `warning: namespace ${options.namespace} already uses waypoint ${current}; add --overwrite to switch it to ${name}`,
      );
      return;
    }
  }
  const vip = existing?.vip ?? `${WAYPOINT_VIP_BASE}${waypoints.length + 1}`;
  const deployed = await mesh.deployWaypoint(
    {
      namespace: options.namespace,
      name,
      ...(options.serviceAccount && { forServiceAccount: options.serviceAccount }),
      ...(options.waypointFor && { waypointFor: options.waypointFor }),
      node: options.node ?? lab.nodes.length - 1,
    },
    vip,
  );
  if (!existing) waypoints.push({ namespace: options.namespace, name, vip, pod: deployed.pod.name });
  state.waypoints = waypoints;
  state.spec = {
    ...state.spec,
    pods: lab.pods.map(({ name: n, namespace, node, serviceAccount, labels }) => ({
      name: n,
      namespace,
      node,
      ...(serviceAccount && { serviceAccount }),
      ...(labels && { labels }),
    })),
  };
  if (deployed.pid) state.pids.push(deployed.pid);
  await writeFile(join(state.dir, 'state.json'), JSON.stringify(state, null, 2));
  await mesh.waitWaypointReady(deployed.pod);
  const serving = options.serviceAccount
    ? `serving service account ${options.serviceAccount}`
    : `for ${options.waypointFor ?? 'service'} traffic`;
  options.print(
    `waypoint ${options.namespace}/${name} ready: pod ${deployed.pod.name} ${deployed.pod.ip} on node${deployed.pod.node}, identity spiffe://cluster.local/ns/${options.namespace}/sa/${name}, ${serving}`,
  );
  if (options.enrollNamespace) {
    const ns = options.namespace;
    await mesh.setNamespaceWaypoint(ns, name);
    options.print(`namespace/${ns} labeled with istio.io/use-waypoint=${name}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A lab's node agents (`node0`, `node1`, ...) for `ztunnel-config` and `metrics`. */
export async function labZtunnelReader(name: string): Promise<ZtunnelReader> {
  const state = await readState(name);
  const lab = Lab.attach(name, state.spec);
  const mesh = new LabMesh(lab, { dir: state.dir, enrolledNamespaces: state.enrolled });
  const all = lab.nodes.map((n) => `node${n.index}`);
  const index = (node: string) => {
    const i = all.indexOf(node);
    if (i < 0)
      throw new CliError(
        'CLI_ERR_NO_ZTUNNEL',
        `no ztunnel on node ${node} in lab "${name}" (nodes: ${all.join(', ')})`,
      );
    return i;
  };
  return {
    async nodes(node) {
      if (node === undefined) return all;
      index(node);
      return [node];
    },
    async read(node, endpoint) {
      const i = index(node);
      try {
        return endpoint === 'metrics' ? await mesh.metrics(i) : JSON.stringify(await mesh.configDump(i));
      } catch (err) {
        throw new CliError(
          'CLI_ERR_ZTUNNEL',
          `cannot read the ztunnel of ${node} in lab "${name}": ${(err as Error).message}`,
        );
      }
    },
  };
}
