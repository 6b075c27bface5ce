/**
 * A process of real xDS clients for bench/xds: each is a DeltaAdsClient subscribed to Istio's
 * Address and Authorization types with ztunnel's own decoders, over TLS with its node's token.
 * Reports (JSON lines on stdout, timestamps on the machine's shared clock):
 *   {"ready": firstIndex}                       once its modules are loaded
 *   {"synced": i, "at": ms, "resources": n}    when client i holds its first full config
 *   {"solo": i, "at": ms, "resources": n}      the same for a client synced alone ("solo"), then closed
 *   {"change": k, "client": i, "at": ms}         when client i sees the target pod's change k (bench-target.ts)
 *   {"ns": i, "workloads": n, "hbone": h, "acked": b, "at": ms}
 *                                                with a namespace to watch: after every response
 *                                                touching its workloads, how many client i holds,
 *                                                how many are HBONE, and whether it was ACKed
 * Started with: <target> <rootCertFile> <tokensJson> <firstIndex> <count> [namespace]; connects on
 * "start"; on "solo", one client syncs alone first.
 */
import { readFileSync } from 'node:fs';
import { DeltaAdsClient, XdsClientMetrics } from '@ambient/shared';
import { type AddressValue, addressResourceType, authorizationResourceType } from '@ambient/ztunnel';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { changeOfIp, TARGET } from './bench-target.js';
import { now } from './measure.js';

const [target = '', rootFile = '', tokensJson = '', first = '0', count = '1', watchNs = ''] =
  process.argv.slice(2);
const root = readFileSync(rootFile);
const tokens = JSON.parse(readFileSync(tokensJson, 'utf8')) as Record<string, { node: string }>;
const tokenOf = new Map(Object.entries(tokens).map(([t, v]) => [v.node, t]));
const ADDRESS_URL = addressResourceType().typeUrl;
const logger = pino({ level: 'silent' });
const clients: DeltaAdsClient[] = [];

function emit(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** The watched namespace's workloads (resource name -> carried over HBONE), with a running count. */
class Watched extends Map<string, boolean> {
  hbone = 0;
}

/**
 * Updates client i's view of the watched namespace from one response and, when the response
 * touched it, reports that view once the response has been answered: the client ACKs or NACKs
 * synchronously after its handler returns, so a microtask sees the answer counted.
 */
function watch(
  client: DeltaAdsClient,
  i: number,
  watched: Watched,
  updated: ReadonlyMap<string, AddressValue>,
  removed: readonly string[],
): void {
  let touched = false;
  const set = (name: string, hbone: boolean | undefined) => {
    const was = watched.get(name);
    if (was === undefined && hbone === undefined) return;
    touched = true;
    if (was) watched.hbone--;
    if (hbone === undefined) watched.delete(name);
    else {
      watched.set(name, hbone);
      if (hbone) watched.hbone++;
    }
  };
  for (const [name, v] of updated)
    set(
      name,
      'workload' in v && v.workload.namespace === watchNs ? v.workload.protocol === 'HBONE' : undefined,
    );
  for (const name of removed) set(name, undefined);
  if (!touched) return;
  const answers = () => client.dump().types.find((t) => t.typeUrl === ADDRESS_URL);
  const before = answers();
  queueMicrotask(() => {
    const after = answers();
    emit({
      ns: i,
      workloads: watched.size,
      hbone: watched.hbone,
      acked: (after?.acks ?? 0) > (before?.acks ?? 0),
      at: now(),
    });
  });
}

function startClient(i: number, solo = false): void {
  const node = `node${i}`;
  let addresses = 0;
  const watched = new Watched();
  const client: DeltaAdsClient = new DeltaAdsClient({
    target,
    credentials: grpc.credentials.createSsl(root),
    channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' },
    callMetadata: () => ({ authorization: `Bearer ${tokenOf.get(node)}` }),
    node: {
      id: `ztunnel~127.0.0.1~ztunnel-${node}.istio-system~istio-system.svc.cluster.local`,
      metadata: { NODE_NAME: node },
    },
    logger,
    metrics: new XdsClientMetrics(new Registry()),
    subscriptions: [
      {
        type: addressResourceType(),
        onChange: ({
          updated,
          removed,
          all,
        }: {
          updated: ReadonlyMap<string, AddressValue>;
          removed: readonly string[];
          all: ReadonlyMap<string, AddressValue>;
        }) => {
          addresses = all.size;
          if (watchNs) watch(client, i, watched, updated, removed);
          const t = updated.get(TARGET);
          if (t && 'workload' in t && client.isSynced()) {
            const k = changeOfIp(t.workload.ips[0]);
            if (k !== undefined) emit({ change: k, client: i, at: now() });
          }
        },
      },
      { type: authorizationResourceType(), onChange: () => {} },
    ],
  });
  client.start();
  if (solo) {
    client.synced().then(() => {
      emit({ solo: i, at: now(), resources: addresses });
      client.close();
    });
    return;
  }
  clients.push(client);
  client.synced().then(() => emit({ synced: i, at: now(), resources: addresses }));
}

process.stdin.on('data', (d: Buffer) => {
  if (d.toString().includes('solo')) startClient(Number(first), true);
  if (d.toString().includes('start'))
    for (let i = Number(first); i < Number(first) + Number(count); i++) startClient(i);
  if (d.toString().includes('stop')) {
    for (const c of clients) c.close();
    process.exit(0);
  }
});
emit({ ready: Number(first) }); // modules loaded, commands heard from now on
