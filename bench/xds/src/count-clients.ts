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
import http2 from 'node:http2';
import { DELTA_ADS_METHOD, meshProtos } from '@ambient/shared';
import { addressResourceType, authorizationResourceType } from '@ambient/ztunnel';
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

/** Reads varints, skips and slices across the chunks a message arrived in, without joining them. */
class ChunkCursor {
  private ci = 0;
  private off = 0;
  pos = 0;

  constructor(private readonly chunks: readonly Buffer[]) {}

  private byte(): number {
    let c = this.chunks[this.ci] as Buffer;
    while (this.off >= c.length) {
      this.ci += 1;
      this.off = 0;
      c = this.chunks[this.ci] as Buffer;
    }
    this.pos += 1;
    return c[this.off++] as number;
  }

  varint(): number {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  }

  skip(n: number): void {
    this.pos += n;
    while (n > 0) {
      const left = (this.chunks[this.ci] as Buffer).length - this.off;
      if (n < left) {
        this.off += n;
        return;
      }
      n -= left;
      this.ci += 1;
      this.off = 0;
    }
  }

  string(n: number): string {
    const parts: Buffer[] = [];
    this.pos += n;
    while (n > 0) {
      const c = this.chunks[this.ci] as Buffer;
      const take = Math.min(n, c.length - this.off);
      parts.push(c.subarray(this.off, this.off + take));
      this.off += take;
      n -= take;
      if (this.off >= c.length && n > 0) {
        this.ci += 1;
        this.off = 0;
      }
    }
    return Buffer.concat(parts).toString();
  }
}

/** readEnvelope for a message still in the chunks it arrived in: resources counted, no spans. */
function countEnvelope(chunks: readonly Buffer[], length: number): Envelope {
  const r = new ChunkCursor(chunks);
  const env: Envelope = { typeUrl: '', nonce: '', resources: 0, spans: [] };
  while (r.pos < length) {
    const tag = r.varint();
    const wire = tag & 7;
    if (wire === 0) r.varint();
    else if (wire === 1) r.skip(8);
    else if (wire === 5) r.skip(4);
    else if (wire !== 2) throw new Error(`wire type ${wire} in a DeltaDiscoveryResponse`);
    else {
      const len = r.varint();
      if (tag === 18) {
        env.resources += 1;
        r.skip(len);
      } else if (tag === 34) env.typeUrl = r.string(len);
      else if (tag === 42) env.nonce = r.string(len);
      else r.skip(len);
    }
  }
  return env;
}

/**
 * A Delta ADS stream over node:http2 with gRPC's framing (a 5-byte prefix per message), handing
 * over each received message as the chunks it arrived in: a multi-MB first response is never
 * joined into one buffer (gRPC client libraries do that, which is most of their cost here).
 */
function openStream(
  node: string,
  onMessage: (chunks: Buffer[], length: number) => void,
): { write: (req: object) => void; close: () => void } {
  const session = http2.connect(`https://${target}`, { ca: root, servername: 'istiod.istio-system.svc' });
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': `/${DELTA_ADS_METHOD.replace(/^\//, '')}`,
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${tokenOf.get(node)}`,
  });
  stream.on('error', () => {});
  let head = Buffer.alloc(0);
  let need = -1; // body bytes still missing of the current message; -1 while reading its prefix
  let length = 0;
  let parts: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (need < 0) {
        const take = Math.min(5 - head.length, chunk.length - at);
        head = Buffer.concat([head, chunk.subarray(at, at + take)]);
        at += take;
        if (head.length < 5) return;
        length = head.readUInt32BE(1);
        need = length;
        head = Buffer.alloc(0);
        parts = [];
      }
      const take = Math.min(need, chunk.length - at);
      if (take > 0) parts.push(chunk.subarray(at, at + take));
      at += take;
      need -= take;
      if (need === 0) {
        need = -1;
        onMessage(parts, length);
      }
    }
  });
  return {
    write: (req) => {
      const body = request.encode(req).finish();
      const framed = Buffer.allocUnsafe(body.length + 5);
      framed.writeUInt8(0, 0);
      framed.writeUInt32BE(body.length, 1);
      framed.set(body, 5);
      stream.write(framed);
    },
    close: () => {
      stream.close();
      session.destroy();
    },
  };
}

function startClient(i: number, solo = false): void {
  const node = `node${i}`;
  const seen = new Set<string>();
  let addresses = 0;
  let bytes = 0;
  const call = openStream(node, (chunks, length) => {
    const synced = seen.size === TYPE_URLS.length;
    // After the first full config, responses are small: joined, and their resources looked at.
    const whole = synced && length < 1 << 20 ? Buffer.concat(chunks, length) : undefined;
    const env = whole ? readEnvelope(whole, true) : countEnvelope(chunks, length);
    call.write({ typeUrl: env.typeUrl, responseNonce: env.nonce });
    if (env.typeUrl === ADDRESS.typeUrl) {
      if (!synced) {
        addresses = env.resources;
        bytes = length;
      }
      for (const [start, end] of env.spans) {
        const res = readResource((whole as Buffer).subarray(start, end));
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
      call.close();
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
  if (!solo) closers.push(call.close);
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
