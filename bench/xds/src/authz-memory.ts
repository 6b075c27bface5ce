/**
 * Memory of one AuthorizationPolicy per principal, on both sides of xDS, for policies of 1k, 10k
 * and 100k principals (BENCH_PRINCIPALS, comma-separated, to change):
 *   - control plane: what it holds for the policy (the manifest's canonical JSON and decoded
 *     object, the translated wire message, the encoded xDS Resource);
 *   - node agent: the decoded policy (ztunnel's authorization decoder) and its compiled form
 *     (compilePolicy), as ztunnel holds both.
 * Heap and external memory after full GCs, so run with --expose-gc (the npm script does).
 * Also prints the wire size and the time to decode+compile on the node agent.
 */
import {
  DEFAULT_MANIFEST_LIMITS,
  decodeManifest,
  ResourceEncoder,
  translateAuthorizationPolicy,
} from '@ambient/controlplane';
import { AUTHORIZATION_CODEC, type securityapi } from '@ambient/shared';
import { authorizationResourceType, compilePolicy } from '@ambient/ztunnel';

const SIZES = (process.env.BENCH_PRINCIPALS ?? '1000,10000,100000').split(',').map(Number);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc (npm run bench:authz-memory)');
  process.exit(2);
}

function used(): number {
  for (let i = 0; i < 4; i++) gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

function manifest(principals: number): string {
  return JSON.stringify({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'deny-many', namespace: 'demo' },
    spec: {
      selector: { matchLabels: { app: 'echo' } },
      action: 'DENY',
      rules: [
        {
          from: [
            {
              source: {
                principals: Array.from(
                  { length: principals },
                  (_, i) => `cluster.local/ns/ns${i % 100}/sa/sa${i}`,
                ),
              },
            },
          ],
        },
      ],
    },
  });
}

interface Row {
  principals: number;
  wireBytes: number;
  cpBytes: number;
  agentDecodedBytes: number;
  agentCompiledBytes: number;
  agentMs: number;
}

const encoder = new ResourceEncoder<securityapi.Authorization>(AUTHORIZATION_CODEC);
const decoder = authorizationResourceType();
const limits = { ...DEFAULT_MANIFEST_LIMITS, maxPolicyValues: Number.MAX_SAFE_INTEGER };

/** Memory of `copies` policies of `principals` each, per principal, so small sizes are not noise. */
function measure(principals: number): Row {
  const copies = Math.max(1, Math.floor(200_000 / principals));
  const base = used();
  // What the control plane holds: canonical JSON, decoded object, wire message, encoded resource.
  const cp = Array.from({ length: copies }, (_, c) => {
    const json = JSON.stringify(JSON.parse(manifest(principals)));
    const decoded = decodeManifest(JSON.parse(json), limits);
    if (decoded.ok !== true || decoded.value.kind !== 'AuthorizationPolicy') throw new Error('not decoded');
    const translated = translateAuthorizationPolicy(decoded.value, 'istio-system');
    if (translated.kind !== 'ztunnel') throw new Error('not a ztunnel policy');
    const entry = encoder.encode(`demo/deny-many-${c}`, translated.authorization);
    return { json, object: decoded.value, wire: translated.authorization, entry };
  });
  const cpBytes = used() - base;

  // What a node agent holds: the message as received, decoded, then compiled.
  const messages = cp.map((h) => AUTHORIZATION_CODEC.encode(h.wire));
  const wireBytes = messages.reduce((sum, m) => sum + m.byteLength, 0);
  const agentBase = used();
  let t0 = performance.now();
  const policies = messages.map((m) => {
    const policy = decoder.decode(m, 'demo/deny-many');
    if (!policy.ok) throw new Error('node agent refused the policy');
    return policy.value;
  });
  let agentMs = performance.now() - t0;
  const afterDecode = used();
  t0 = performance.now();
  const compiled = policies.map(compilePolicy);
  agentMs += performance.now() - t0;
  const agentCompiledBytes = used() - afterDecode;
  // The compiled policies work, and everything measured is alive until here.
  const hit = compiled.every((p) =>
    p.matches({
      principal: `cluster.local/ns/ns1/sa/sa${principals - 99}`,
      namespace: 'ns1',
      sourceIp: '198.18.16.10',
      destinationIp: '198.18.17.10',
      destinationPort: 8080,
    }),
  );
  if (!hit || cp.length !== copies) throw new Error('the compiled policies do not match');
  return {
    principals,
    wireBytes: wireBytes / copies,
    cpBytes: cpBytes / copies,
    agentDecodedBytes: (afterDecode - agentBase) / copies,
    agentCompiledBytes: agentCompiledBytes / copies,
    agentMs: agentMs / copies,
  };
}

const rows: Row[] = [];
measure(10_000); // warm-up: code, shapes and protobuf types loaded before measuring
for (const n of SIZES) rows.push(measure(n));

const per = (bytes: number, n: number) => (bytes / n).toFixed(0).padStart(8);
console.log('AuthorizationPolicy memory per principal (bytes; heap + external after full GC)');
console.log(
  `${'principals'.padStart(10)} | ${'wire B/p'.padStart(8)} | ${'cp B/p'.padStart(8)} | ${'agent decoded B/p'.padStart(17)} | ${'agent compiled B/p'.padStart(18)} | ${'agent total MB'.padStart(14)} | ${'decode+compile ms'.padStart(17)}`,
);
for (const r of rows) {
  console.log(
    `${String(r.principals).padStart(10)} | ${per(r.wireBytes, r.principals)} | ${per(r.cpBytes, r.principals)} | ${per(r.agentDecodedBytes, r.principals).padStart(17)} | ${per(r.agentCompiledBytes, r.principals).padStart(18)} | ${((r.agentDecodedBytes + r.agentCompiledBytes) / 2 ** 20).toFixed(1).padStart(14)} | ${r.agentMs.toFixed(1).padStart(17)}`,
  );
}
