/**
 * How istioctl (`istioctl ztunnel-config ...`) decodes a ztunnel's `/config_dump`: a transcription
 * of the Go structs and json tags of istio/istio istioctl/pkg/writer/ztunnel/configdump/api.go and
 * configdump.go (rawDump, unmarshalListOrMap) at commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c,
 * and a decoder with encoding/json's rules, so a test can tell what istioctl would reject or
 * silently read as empty. Also transcribed: the few computations istioctl's summaries make on
 * what it decoded (workload.go waypointName, services.go endpoint health, certificates.go
 * serial and validity parsing).
 */

export type GoType =
  | { readonly kind: 'string' | 'bool' | 'int' | 'uint16' | 'uint32' | 'any' }
  | { readonly kind: 'slice'; readonly elem: GoType }
  | { readonly kind: 'map'; readonly key: 'string' | 'uint16'; readonly elem: GoType }
  | { readonly kind: 'ptr'; readonly elem: GoType }
  | { readonly kind: 'struct'; readonly name: string; readonly fields: readonly GoField[] }
  /** A type with its own UnmarshalJSON: returns a problem, or undefined when it accepts. */
  | { readonly kind: 'custom'; readonly name: string; readonly decode: (v: unknown) => string | undefined };

export interface GoField {
  readonly go: string;
  readonly json: string;
  readonly type: GoType;
}

const string: GoType = { kind: 'string' };
const bool: GoType = { kind: 'bool' };
const int: GoType = { kind: 'int' };
const uint16: GoType = { kind: 'uint16' };
const uint32: GoType = { kind: 'uint32' };
const any: GoType = { kind: 'any' };
const slice = (elem: GoType): GoType => ({ kind: 'slice', elem });
const ptr = (elem: GoType): GoType => ({ kind: 'ptr', elem });
const map = (key: 'string' | 'uint16', elem: GoType): GoType => ({ kind: 'map', key, elem });
const struct = (name: string, fields: Array<[go: string, json: string, type: GoType]>): GoType => ({
  kind: 'struct',
  name,
  fields: fields.map(([go, json, type]) => ({ go, json, type })),
});

// `json:"name,omitempty"`: omitempty changes only encoding, so it is left out here.
export const Locality = struct('Locality', [
  ['Region', 'region', string],
  ['Zone', 'zone', string],
  ['Subzone', 'subzone', string],
]);
export const GatewayAddress = struct('GatewayAddress', [['Destination', 'destination', string]]);
export const ApplicationTunnel = struct('ApplicationTunnel', [
  ['Protocol', 'protocol', string],
  ['Port', 'port', ptr(uint16)],
]);
export const ZtunnelWorkload = struct('ZtunnelWorkload', [
  ['UID', 'uid', string],
  ['WorkloadIPs', 'workloadIps', slice(string)],
  ['Waypoint', 'waypoint', ptr(GatewayAddress)],
  ['NetworkGateway', 'networkGateway', ptr(GatewayAddress)],
  ['Protocol', 'protocol', string],
  ['Name', 'name', string],
  ['Namespace', 'namespace', string],
  ['ServiceAccount', 'serviceAccount', string],
  ['WorkloadName', 'workloadName', string],
  ['WorkloadType', 'workloadType', string],
  ['CanonicalName', 'canonicalName', string],
  ['CanonicalRevision', 'canonicalRevision', string],
  ['ClusterID', 'clusterId', string],
  ['TrustDomain', 'trustDomain', string],
  ['Locality', 'locality', Locality],
  ['Node', 'node', string],
  ['Network', 'network', string],
  ['Status', 'status', string],
  ['Hostname', 'hostname', string],
  ['Capacity', 'capacity', uint32],
  ['ApplicationTunnel', 'applicationTunnel', ApplicationTunnel],
  ['AuthorizationPolicies', 'authorizationPolicies', slice(string)],
]);
export const LoadBalancer = struct('LoadBalancer', [
  ['Mode', 'mode', string],
  ['RoutingPreferences', 'routingPreferences', slice(string)],
  ['HealthPolicy', 'healthPolicy', string],
]);
export const ZtunnelEndpoint = struct('ZtunnelEndpoint', [
  ['WorkloadUID', 'workloadUid', string],
  ['Service', 'service', string],
  ['Address', 'address', string],
  ['Port', 'port', map('uint16', uint16)],
]);
/** CIDRVIP.UnmarshalJSON: the struct form, else a "network/cidr" string. */
export const CIDRVIP: GoType = {
  kind: 'custom',
  name: 'CIDRVIP',
  decode: (v) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      for (const k of ['cidr', 'network'])
        if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') return `${k} is not a string`;
      return undefined;
    }
    if (typeof v !== 'string') return 'is neither an object nor a string';
    return v.includes('/') ? undefined : `invalid cidrVip "${v}"`;
  },
};
export const ZtunnelService = struct('ZtunnelService', [
  ['Name', 'name', string],
  ['Namespace', 'namespace', string],
  ['Hostname', 'hostname', string],
  ['Addresses', 'vips', slice(string)],
  ['CIDRVIPs', 'cidrVips', slice(CIDRVIP)],
  ['Ports', 'ports', map('string', int)],
  ['LoadBalancer', 'loadBalancer', ptr(LoadBalancer)],
  ['Waypoint', 'waypoint', ptr(GatewayAddress)],
  ['Endpoints', 'endpoints', map('string', ptr(ZtunnelEndpoint))],
  ['SubjectAltNames', 'subjectAltNames', slice(string)],
  ['IPFamilies', 'ipFamilies', string],
  ['Canonical', 'canonical', bool],
  ['Visibility', 'visibility', string],
]);
export const StringMatch = struct('StringMatch', [
  ['Exact', 'Exact', string],
  ['Suffix', 'Suffix', string],
  ['Prefix', 'Prefix', string],
  ['Presence', 'Presence', any],
]);
export const ServiceAccountMatch = struct('ServiceAccountMatch', [
  ['Namespace', 'namespace', string],
  ['ServiceAccount', 'serviceAccount', string],
]);
export const PolicyMatch = struct('PolicyMatch', [
  ['Namespaces', 'namespaces', slice(StringMatch)],
  ['NotNamespaces', 'notNamespaces', slice(StringMatch)],
  ['Principals', 'principals', slice(StringMatch)],
  ['NotPrincipals', 'notPrincipals', slice(StringMatch)],
  ['SourceIps', 'sourceIps', slice(string)],
  ['NotSourceIps', 'notSourceIps', slice(string)],
  ['DestinationIps', 'destinationIps', slice(string)],
  ['NotDestinationIps', 'notDestinationIps', slice(string)],
  ['DestinationPorts', 'destinationPorts', slice(uint16)],
  ['NotDestinationPorts', 'notDestinationPorts', slice(uint16)],
  ['ServiceAccounts', 'serviceAccounts', slice(ServiceAccountMatch)],
  ['NotServiceAccounts', 'notServiceAccounts', slice(ServiceAccountMatch)],
]);
export const ZtunnelPolicy = struct('ZtunnelPolicy', [
  ['Name', 'name', string],
  ['Namespace', 'namespace', string],
  ['Scope', 'scope', string],
  ['Action', 'action', string],
  ['Rules', 'rules', slice(slice(slice(ptr(PolicyMatch))))],
]);
export const Cert = struct('Cert', [
  ['Pem', 'pem', string],
  ['SerialNumber', 'serialNumber', string],
  ['ValidFrom', 'validFrom', string],
  ['ExpirationTime', 'expirationTime', string],
]);
export const CertsDump = struct('CertsDump', [
  ['Identity', 'identity', string],
  ['State', 'state', string],
  ['CertChain', 'certChain', slice(ptr(Cert))],
  ['RootCert', 'rootCerts', slice(ptr(Cert))],
]);
const Connection = struct('Connection', [
  ['Src', 'src', string],
  ['OriginalDst', 'originalDst', string],
  ['ActualDst', 'actualDst', string],
  ['Protocol', 'protocol', string],
]);
export const WorkloadState = struct('WorkloadState', [
  ['State', 'state', string],
  [
    'Connections',
    'connections',
    struct('WorkloadConnections', [
      ['Inbound', 'inbound', slice(Connection)],
      ['Outbound', 'outbound', slice(Connection)],
    ]),
  ],
  [
    'Info',
    'info',
    struct('WorkloadInfo', [
      ['Name', 'name', string],
      ['Namespace', 'namespace', string],
      ['TrustDomain', 'trustDomain', string],
      ['ServiceAccount', 'serviceAccount', string],
    ]),
  ],
]);

/** configdump.go rawDump: the four lists as json.RawMessage, and `json:"workloadstate"`. */
export const RAW_DUMP_KEYS = {
  services: ZtunnelService,
  workloads: ZtunnelWorkload,
  policies: ZtunnelPolicy,
  certificates: CertsDump,
} as const;

/**
 * encoding/json matches a key to a field by its tag exactly, else case-insensitively (so
 * rawDump's `workloadstate` finds `workloadState`). Returns the key used, if any.
 */
function matchKey(o: Record<string, unknown>, json: string): string | undefined {
  if (json in o) return json;
  return Object.keys(o).find((k) => k.toLowerCase() === json.toLowerCase());
}

/**
 * Decodes `v` into `t` as encoding/json.Unmarshal would, returning every type error with its
 * path (Go stops at none of them: it reports the first and leaves the field zero). JSON null is
 * accepted everywhere, as Go does; unknown keys are ignored, as Go does.
 */
export function goDecode(v: unknown, t: GoType, path: string, problems: string[]): void {
  if (v === null || v === undefined) return;
  const bad = (what: string) => problems.push(`${path}: ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  switch (t.kind) {
    case 'any':
      return;
    case 'string':
      if (typeof v !== 'string') bad('want a JSON string');
      return;
    case 'bool':
      if (typeof v !== 'boolean') bad('want a JSON bool');
      return;
    case 'int':
    case 'uint16':
    case 'uint32': {
      const max = t.kind === 'uint16' ? 0xffff : t.kind === 'uint32' ? 0xffffffff : Number.MAX_SAFE_INTEGER;
      const min = t.kind === 'int' ? Number.MIN_SAFE_INTEGER : 0;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        bad(`want a JSON number fitting ${t.kind}`);
      return;
    }
    case 'ptr':
      goDecode(v, t.elem, path, problems);
      return;
    case 'custom': {
      const p = t.decode(v);
      if (p) problems.push(`${path}: ${t.name}: ${p}`);
      return;
    }
    case 'slice':
      if (!Array.isArray(v)) {
        bad('want a JSON array');
        return;
      }
      v.forEach((e, i) => {
        goDecode(e, t.elem, `${path}[${i}]`, problems);
      });
      return;
    case 'map':
      if (typeof v !== 'object' || Array.isArray(v)) {
        bad('want a JSON object');
        return;
      }
      for (const [k, e] of Object.entries(v as Record<string, unknown>)) {
        // strconv.ParseUint(key, 10, 16) for map[uint16]T.
        if (t.key === 'uint16' && !(/^\d+$/.test(k) && Number(k) <= 0xffff))
          problems.push(`${path}: key ${JSON.stringify(k)} is not a uint16`);
        goDecode(e, t.elem, `${path}.${k}`, problems);
      }
      return;
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v)) {
        bad(`want a JSON object for ${t.name}`);
        return;
      }
      const o = v as Record<string, unknown>;
      for (const f of t.fields) {
        const key = matchKey(o, f.json);
        if (key !== undefined) goDecode(o[key], f.type, `${path}.${f.json}`, problems);
      }
      return;
    }
  }
}

/** configdump.go Prime: every problem json.Unmarshal would meet, by path. */
export function primeProblems(dump: unknown): string[] {
  const problems: string[] = [];
  if (typeof dump !== 'object' || dump === null || Array.isArray(dump)) return ['dump: not a JSON object'];
  const o = dump as Record<string, unknown>;
  for (const [json, elem] of Object.entries(RAW_DUMP_KEYS)) {
    const key = matchKey(o, json);
    if (key === undefined) continue;
    // unmarshalListOrMap: a list, else a map whose values are the elements.
    const v = o[key];
    goDecode(v, Array.isArray(v) ? slice(ptr(elem)) : map('string', ptr(elem)), json, problems);
  }
  const ws = matchKey(o, 'workloadstate');
  if (ws !== undefined) goDecode(o[ws], map('string', WorkloadState), 'workloadState', problems);
  return problems;
}

/**
 * The fields istioctl's summaries read (workload.go, services.go, policies.go, certificates.go,
 * connections.go): a key missing or misspelt here decodes as an empty value and prints wrong.
 */
export const ISTIOCTL_READS = {
  ZtunnelWorkload: ['uid', 'workloadIps', 'protocol', 'name', 'namespace', 'node', 'status'],
  GatewayAddress: ['destination'],
  ZtunnelService: ['name', 'namespace', 'hostname', 'vips', 'endpoints'],
  ZtunnelEndpoint: ['workloadUid'],
  ZtunnelPolicy: ['name', 'namespace', 'action', 'scope'],
  CertsDump: ['identity', 'state', 'certChain', 'rootCerts'],
  Cert: ['serialNumber', 'validFrom', 'expirationTime'],
  WorkloadState: ['state', 'info'],
  WorkloadInfo: ['name', 'namespace'],
} as const;

/** Keys of `o` among `read` that are absent or null under their exact spelling. */
export function missing(o: unknown, read: readonly string[]): string[] {
  const rec = (o ?? {}) as Record<string, unknown>;
  return read.filter((k) => rec[k] === undefined || rec[k] === null);
}

interface Named {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips?: readonly string[];
}

/** workload.go waypointName / serviceWaypointName: "NA" when the destination matches no service. */
export function waypointName(destination: string | undefined, services: readonly Named[]): string {
  if (destination === undefined) return 'None';
  for (const svc of services) {
    if (`${svc.namespace}/${svc.hostname}` === destination) return svc.name;
    for (const addr of svc.vips ?? []) if (addr === destination) return svc.name;
  }
  return 'NA';
}

/** certificates.go: `big.Int.SetString(serial, 10)`, and certNotExpired's time.Parse(RFC3339). */
export function certReadable(c: {
  serialNumber: string;
  validFrom: string;
  expirationTime: string;
}): string[] {
  const problems: string[] = [];
  if (!/^\d+$/.test(c.serialNumber)) problems.push(`serialNumber ${c.serialNumber} is not base 10`);
  const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
  for (const k of ['validFrom', 'expirationTime'] as const)
    if (!rfc3339.test(c[k])) problems.push(`${k} ${c[k]} is not RFC 3339`);
  return problems;
}
