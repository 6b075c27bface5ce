/**
 * A process of count-only xDS clients for bench/xds: each opens the same Delta ADS stream as a node
 * agent (TLS, its node's token, node id and NODE_NAME, wildcard Address and Authorization
 * subscriptions) but reads only the envelope of each DeltaDiscoveryResponse from the raw bytes:
 * the resources are counted, not decoded, and every response is ACKed. This measures what the
 * control plane and the transport deliver, without 50 decoders sharing the machine's cores with
 * the control plane. After the first full config, a response's resources are looked at by name
 * only to find the benchmark's target pod, whose Address alone is decoded (to read the change
 * number from its IP).
 * Reports the same JSON lines as clients.ts ("synced", "solo", "change"), the first two with the
 * size of the first Address response in "bytes"; same arguments.
 */
import { readFileSync } from 'node:fs';
import { DELTA_ADS_METHOD, meshProtos } from '@ambient/shared';
import { addressResourceType, authorizationResourceType } from '@ambient/ztunnel';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { changeOfIp, TARGET } from './bench-target.js';
import { now } from './measure.js';

const [target = '', rootFile = '', tokensJson = '', first = '0', count = '1'] = process.argv.slice(2);
const root = readFileSync(rootFile);
const tokens = JSON.parse(readFileSync(tokensJson, 'utf8')) as Record<string, { node: string }>;
const tokenOf = new Map(Object.entries(tokens).map(([t, v]) => [v.node, t]));
const ADDRESS = addressResourceType();
const TYPE_URLS = [ADDRESS.typeUrl, authorizationResourceType().typeUrl];
const request = meshProtos().lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const closers: Array<() => void> = [];

function emit(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** The envelope of a DeltaDiscoveryResponse (type_url=4, nonce=5) and its resources=2, counted. */
interface Envelope {
  typeUrl: string;
  nonce: string;
  resources: number;
  /** [start, end) of each resource's bytes, when asked for. */
  spans: Array<[number, number]>;
}

function readEnvelope(buf: Uint8Array, withSpans: boolean): Envelope {
  const r = protobuf.Reader.create(buf);
  const env: Envelope = { typeUrl: '', nonce: '', resources: 0, spans: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 18) {
      const len = r.uint32();
      if (withSpans) env.spans.push([r.pos, r.pos + len]);
      r.skip(len);
      env.resources += 1;
    } else if (tag === 34) env.typeUrl = r.string();
    else if (tag === 42) env.nonce = r.string();
    else r.skipType(tag & 7);
  }
  return env;
}

/** The name (3) of a Resource, and its Any's value (resource=2 -> value=2). */
function readResource(buf: Uint8Array): { name: string; value?: Uint8Array } {
  const r = protobuf.Reader.create(buf);
  let name = '';
  let value: Uint8Array | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 26) name = r.string();
    else if (tag === 18) {
      const any = protobuf.Reader.create(r.bytes());
      while (any.pos < any.len) {
        const t = any.uint32();
        if (t === 18) value = any.bytes();
        else any.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return value ? { name, value } : { name };
}

function startClient(i: number, solo = false): void {
  const node = `node${i}`;
  const channel = new grpc.Client(target, grpc.credentials.createSsl(root), {
    'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    'grpc.use_local_subchannel_pool': 1,
    ...(process.env.BENCH_FLOW_WINDOW && {
      'grpc-node.flow_control_window': Number(process.env.BENCH_FLOW_WINDOW),
    }),
  });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${tokenOf.get(node)}`);
  const call = channel.makeBidiStreamRequest<object, Buffer>(
    DELTA_ADS_METHOD,
    (req) => Buffer.from(request.encode(req).finish()),
    (buf) => buf,
    metadata,
  );
  const close = () => {
    call.cancel();
    channel.close();
  };
  call.on('error', () => {});
  const seen = new Set<string>();
  let addresses = 0;
  let bytes = 0;
  call.on('data', (buf: Buffer) => {
    const synced = seen.size === TYPE_URLS.length;
    const env = readEnvelope(buf, synced && buf.length < 1 << 20);
    call.write({ typeUrl: env.typeUrl, responseNonce: env.nonce });
    if (env.typeUrl === ADDRESS.typeUrl) {
      if (!synced) {
        addresses = env.resources;
        bytes = buf.length;
      }
      for (const [start, end] of env.spans) {
        const res = readResource(buf.subarray(start, end));
        if (res.name !== TARGET || !res.value) continue;
        const v = ADDRESS.decode(res.value, res.name);
        if (v.ok && 'workload' in v.value) {
          const k = changeOfIp(v.value.workload.ips[0]);
          if (k !== undefined) emit({ change: k, client: i, at: now() });
        }
      }
    }
    if (synced) return;
    seen.add(env.typeUrl);
    if (seen.size < TYPE_URLS.length) return;
    if (solo) {
      emit({ solo: i, at: now(), resources: addresses, bytes });
      close();
    } else emit({ synced: i, at: now(), resources: addresses, bytes });
  });
  for (const [n, typeUrl] of TYPE_URLS.entries())
    call.write({
      ...(n === 0 && {
        node: {
          id: `ztunnel~127.0.0.1~ztunnel-${node}.istio-system~istio-system.svc.cluster.local`,
          metadata: { fields: { NODE_NAME: { stringValue: node } } },
        },
      }),
      typeUrl,
      resourceNamesSubscribe: ['*'],
    });
  if (!solo) closers.push(close);
}

process.stdin.on('data', (d: Buffer) => {
  if (d.toString().includes('solo')) startClient(Number(first), true);
  if (d.toString().includes('start'))
    for (let i = Number(first); i < Number(first) + Number(count); i++) startClient(i);
  if (d.toString().includes('stop')) {
    for (const c of closers) c();
    process.exit(0);
  }
});
emit({ ready: Number(first) }); // modules loaded, commands heard from now on
