/**
 * The peer metadata ztunnel sends in the W3C `baggage` header of HBONE requests and answers, with
 * the keys of istio/ztunnel `src/baggage.rs` (OpenTelemetry's Kubernetes and cloud attributes).
 * It is telemetry only: what a peer wrote here is never used to authorize.
 */

/** What a workload says of itself; an empty or absent field is not sent. */
export interface Baggage {
  readonly clusterId?: string;
  readonly namespace?: string;
  /** The owner's name (a Deployment's, a Job's), else the pod's. */
  readonly workloadName?: string;
  /** The canonical service (`service.name`). */
  readonly serviceName?: string;
  /** The canonical revision (`service.version`). */
  readonly revision?: string;
  readonly region?: string;
  readonly zone?: string;
}

/** Workload kinds named in `k8s.<kind>.name`, as upstream reads them back. */
export const BAGGAGE_WORKLOAD_KINDS = ['deployment', 'cronjob', 'pod', 'job'] as const;
export type BaggageWorkloadKind = (typeof BAGGAGE_WORKLOAD_KINDS)[number];

/** W3C Baggage limits: a larger header is ignored whole, never cut to fit. */
export const BAGGAGE_MAX_BYTES = 8192;
export const BAGGAGE_MAX_MEMBERS = 64;

/** W3C baggage-octet: printable ASCII except space, `"`, `,`, `;`, `\`; `%` is escaped too. */
const PLAIN_OCTET = /[\x21\x23-\x24\x26-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A W3C baggage value: baggage-octets, `%` included (it starts an escape). */
const VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;

function encodeValue(value: string): string {
  let out = '';
  for (const ch of value) {
    if (PLAIN_OCTET.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent-decodes a value; undefined when the escapes are broken or not UTF-8. */
function decodeValue(value: string): string | undefined {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/**
 * The `baggage` value for a workload, in upstream's key order (`baggage_header_val`):
 * `k8s.cluster.name`, `k8s.namespace.name`, `k8s.<kind>.name`, `service.name`, `service.version`,
 * `cloud.region`, `cloud.availability_zone`. Values are percent-encoded where W3C requires.
 */
export function formatBaggage(b: Baggage, kind: BaggageWorkloadKind): string {
  const members: Array<[string, string | undefined]> = [
    ['k8s.cluster.name', b.clusterId],
    ['k8s.namespace.name', b.namespace],
    [`k8s.${kind}.name`, b.workloadName],
    ['service.name', b.serviceName],
    ['service.version', b.revision],
    ['cloud.region', b.region],
    ['cloud.availability_zone', b.zone],
  ];
  return members
    .filter((m): m is [string, string] => m[1] !== undefined && m[1] !== '')
    .map(([k, v]) => `${k}=${encodeValue(v)}`)
    .join(',');
}

const WORKLOAD_KEYS = new Set(BAGGAGE_WORKLOAD_KINDS.map((k) => `k8s.${k}.name`));
const FIELD_BY_KEY: Readonly<Record<string, keyof Baggage>> = {
  'k8s.cluster.name': 'clusterId',
  'k8s.namespace.name': 'namespace',
  'service.name': 'serviceName',
  'service.version': 'revision',
  'cloud.region': 'region',
  'cloud.availability_zone': 'zone',
};

/**
 * Reads the fields upstream reads (`parse_baggage_header`) from one or more `baggage` values
 * (repeated headers arrive joined with `, `). Malformed members (a key that is not a token, a value
 * with octets W3C does not allow or a broken escape), unknown keys and properties are skipped; an
 * empty value unsets its field; a later member wins. A header over BAGGAGE_MAX_BYTES or BAGGAGE_MAX_MEMBERS
 * gives nothing at all.
 */
export function parseBaggage(value: unknown): Baggage {
  const text = Array.isArray(value) ? value.join(',') : value;
  if (typeof text !== 'string' || text === '') return {};
  if (Buffer.byteLength(text) > BAGGAGE_MAX_BYTES) return {};
  const members = text.split(',');
  if (members.length > BAGGAGE_MAX_MEMBERS) return {};
  const out: { -readonly [K in keyof Baggage]: Baggage[K] } = {};
  for (const member of members) {
    // Properties (`;p=v`) carry nothing upstream reads.
    const pair = member.split(';', 1)[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    if (!TOKEN.test(key) || !VALUE.test(raw)) continue;
    const field = WORKLOAD_KEYS.has(key) ? 'workloadName' : FIELD_BY_KEY[key];
    if (!field) continue;
    const decoded = decodeValue(raw);
    if (decoded === undefined) continue;
    // An empty value unsets the field, as upstream's parser does.
    if (decoded === '') delete out[field];
    else out[field] = decoded;
  }
  return out;
}
