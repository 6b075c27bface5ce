/**
 * The Kubernetes and Istio kinds the control plane reads, decoded from parsed manifests into typed,
 * frozen objects. Each decoder returns every problem with its field path; an invalid object is
 * reported with its kind and name and left out, and the rest keeps working.
 */
import type { Problem } from '@ambient/shared';
import { decodeMeta, ManifestFields as Fields, type Obj, type ObjectMeta } from './manifest-fields.js';
import {
  type DestinationRuleObject,
  decodeDestinationRule,
  decodeHttpRoute,
  decodeVirtualService,
  type HttpRouteObject,
  type VirtualServiceObject,
} from './traffic-objects.js';

export type { ObjectMeta } from './manifest-fields.js';
export type * from './traffic-objects.js';

export interface NamespaceObject {
  readonly kind: 'Namespace';
  readonly metadata: ObjectMeta;
}

export interface PodObject {
  readonly kind: 'Pod';
  readonly metadata: ObjectMeta;
  readonly nodeName: string;
  readonly serviceAccountName: string;
  readonly podIps: readonly string[];
  /** Named container ports, for Services whose targetPort is a name. */
  readonly namedPorts: Readonly<Record<string, number>>;
  readonly running: boolean;
}

export interface ServicePort {
  readonly name: string;
  readonly port: number;
  /** A number, or a container port name resolved per pod. */
  readonly targetPort: number | string;
  readonly appProtocol?: string;
}

export interface ServiceObject {
  readonly kind: 'Service';
  readonly metadata: ObjectMeta;
  readonly clusterIps: readonly string[];
  readonly ports: readonly ServicePort[];
  /** Undefined: no selector (endpoints managed elsewhere). */
  readonly selector?: Readonly<Record<string, string>>;
}

export interface ServiceAccountObject {
  readonly kind: 'ServiceAccount';
  readonly metadata: ObjectMeta;
}

export interface PolicySource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  /** Fields only an L7 proxy can check, by name (requestPrincipals, remoteIpBlocks, ...). */
  readonly l7Fields: readonly string[];
}

export interface PolicyOperation {
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  /** Fields only an L7 proxy can check (hosts, methods, paths, ...). */
  readonly l7Fields: readonly string[];
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface PolicyCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface PolicyRuleSpec {
  readonly from?: readonly PolicySource[];
  readonly to?: readonly PolicyOperation[];
  readonly when?: readonly PolicyCondition[];
}

export interface TargetRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
}

export interface AuthorizationPolicyObject {
  readonly kind: 'AuthorizationPolicy';
  readonly metadata: ObjectMeta;
  readonly selector?: Readonly<Record<string, string>>;
  readonly targetRefs: readonly TargetRef[];
  readonly action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  /** Undefined: no `rules` key (for ALLOW, matches nothing). */
  readonly rules?: readonly PolicyRuleSpec[];
}

export type MtlsMode = 'UNSET' | 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthenticationObject {
  readonly kind: 'PeerAuthentication';
  readonly metadata: ObjectMeta;
  readonly selector?: Readonly<Record<string, string>>;
  readonly mode: MtlsMode;
  readonly portLevel: Readonly<Record<number, MtlsMode>>;
}

export interface GatewayObject {
  readonly kind: 'Gateway';
  readonly metadata: ObjectMeta;
  readonly gatewayClassName: string;
}

export type KubeObject =
  | NamespaceObject
  | PodObject
  | ServiceObject
  | ServiceAccountObject
  | AuthorizationPolicyObject
  | PeerAuthenticationObject
  | GatewayObject
  | HttpRouteObject
  | VirtualServiceObject
  | DestinationRuleObject;

export type KubeKind = KubeObject['kind'];

/** apiVersion each kind is accepted under. */
const API_VERSIONS: Record<KubeKind, readonly string[]> = {
  Namespace: ['v1'],
  Pod: ['v1'],
  Service: ['v1'],
  ServiceAccount: ['v1'],
  AuthorizationPolicy: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  PeerAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  Gateway: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  HTTPRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  VirtualService: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  DestinationRule: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
};

function decodePod(f: Fields, o: Obj): PodObject {
  const metadata = decodeMeta(f, o.metadata, true);
  const spec = f.obj(o.spec, 'spec') ?? {};
  const status = f.obj(o.status, 'status') ?? {};
  const podIps: string[] = [];
  if (status.podIP !== undefined && status.podIP !== '') {
    const ip = f.ip(status.podIP, 'status.podIP');
    if (ip) podIps.push(ip);
  }
  (f.list(status.podIPs, 'status.podIPs') ?? []).forEach((entry, i) => {
    const e = f.obj(entry, `status.podIPs[${i}]`);
    const ip = f.ip(e?.ip, `status.podIPs[${i}].ip`);
    if (ip && !podIps.includes(ip)) podIps.push(ip);
  });
  const namedPorts: Record<string, number> = {};
  (f.list(spec.containers, 'spec.containers') ?? []).forEach((c, i) => {
    const container = f.obj(c, `spec.containers[${i}]`);
    (f.list(container?.ports, `spec.containers[${i}].ports`) ?? []).forEach((p, j) => {
      const port = f.obj(p, `spec.containers[${i}].ports[${j}]`);
      const n = f.port(port?.containerPort, `spec.containers[${i}].ports[${j}].containerPort`);
      if (typeof port?.name === 'string' && n !== undefined) namedPorts[port.name] = n;
    });
  });
  const phase = status.phase === undefined ? 'Running' : f.str(status.phase, 'status.phase');
  return {
    kind: 'Pod',
    metadata,
    nodeName: f.str(spec.nodeName, 'spec.nodeName', ''),
    serviceAccountName: f.str(spec.serviceAccountName, 'spec.serviceAccountName', 'default'),
    podIps,
    namedPorts,
    running: phase !== 'Succeeded' && phase !== 'Failed' && spec.hostNetwork !== true,
  };
}

function decodeService(f: Fields, o: Obj): ServiceObject {
  const metadata = decodeMeta(f, o.metadata, true);
  const spec = f.obj(o.spec, 'spec', false) ?? {};
  const clusterIps: string[] = [];
  for (const [key, v] of [
    ['clusterIP', spec.clusterIP],
    ...(f.list(spec.clusterIPs, 'spec.clusterIPs') ?? []).map((ip, i) => [`clusterIPs[${i}]`, ip] as const),
  ] as const) {
    if (v === undefined || v === '' || v === 'None') continue;
    const ip = f.ip(v, `spec.${key}`);
    if (ip && !clusterIps.includes(ip)) clusterIps.push(ip);
  }
  const ports: ServicePort[] = [];
  (f.list(spec.ports, 'spec.ports') ?? []).forEach((p, i) => {
    const path = `spec.ports[${i}]`;
    const po = f.obj(p, path);
    if (!po) return;
    const port = f.port(po.port, `${path}.port`);
    let targetPort: number | string | undefined = port;
    if (typeof po.targetPort === 'string' && !/^\d+$/.test(po.targetPort)) targetPort = po.targetPort;
    else if (po.targetPort !== undefined) targetPort = f.port(Number(po.targetPort), `${path}.targetPort`);
    if (port !== undefined && targetPort !== undefined) {
      ports.push({
        name: typeof po.name === 'string' ? po.name : '',
        port,
        targetPort,
        ...(typeof po.appProtocol === 'string' && { appProtocol: po.appProtocol }),
      });
    }
  });
  const selector = spec.selector === undefined ? undefined : f.labels(spec.selector, 'spec.selector');
  return { kind: 'Service', metadata, clusterIps, ports, ...(selector && { selector }) };
}

const SOURCE_L4 = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks'];
const SOURCE_L7 = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'];
const OPERATION_L4 = ['ports', 'notPorts'];
const OPERATION_L7 = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];

function decodeSelector(f: Fields, spec: Obj): Record<string, string> | undefined {
  const sel = f.obj(spec.selector, 'spec.selector');
  if (!sel) return undefined;
  return f.labels(sel.matchLabels, 'spec.selector.matchLabels');
}

function decodePortList(f: Fields, v: unknown, path: string): string[] | undefined {
  const l = f.strings(v, path);
  return l?.filter((p, i) => {
    const valid = /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;
    if (!valid) f.add(`${path}[${i}]`, `${JSON.stringify(p)} is not a port from 1 to 65535`);
    return valid;
  });
}

/** Condition keys Istio accepts: exact names, and families by prefix. */
const CONDITION_KEYS = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
  'connection.sni',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
]);
const CONDITION_PREFIXES = ['request.headers[', 'request.auth.claims[', 'experimental.envoy.filters.'];

/** Validates a condition key; returns the check for its values, if they have a format. */
function conditionCheck(f: Fields, key: string, path: string): ((v: string, p: string) => void) | undefined {
  if (!key) return undefined;
  if (!CONDITION_KEYS.has(key) && !CONDITION_PREFIXES.some((prefix) => key.startsWith(prefix))) {
    f.add(path, `${JSON.stringify(key)} is not a supported condition key`);
    return undefined;
  }
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') {
    return (v, p) => {
      f.cidr(v, p);
    };
  }
  if (key === 'destination.port') {
    return (v, p) => {
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535)
        f.add(p, `${JSON.stringify(v)} is not a port from 1 to 65535`);
    };
  }
  return undefined;
}

function decodeAuthorizationPolicy(f: Fields, o: Obj): AuthorizationPolicyObject {
  const metadata = decodeMeta(f, o.metadata, true);
  const spec = f.obj(o.spec, 'spec') ?? {};
  const action = spec.action === undefined ? 'ALLOW' : f.str(spec.action, 'spec.action');
  if (!['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'].includes(action))
    f.add('spec.action', `${JSON.stringify(action)} must be ALLOW, DENY, AUDIT or CUSTOM`);
  const targetRefs: TargetRef[] = [];
  const refs = [
    ...(spec.targetRef !== undefined ? [['spec.targetRef', spec.targetRef] as const] : []),
    ...(f.list(spec.targetRefs, 'spec.targetRefs') ?? []).map(
      (r, i) => [`spec.targetRefs[${i}]`, r] as const,
    ),
  ];
  for (const [path, r] of refs) {
    const ref = f.obj(r, path);
    if (ref)
      targetRefs.push({
        group: f.str(ref.group, `${path}.group`, ''),
        kind: f.str(ref.kind, `${path}.kind`),
        name: f.str(ref.name, `${path}.name`),
      });
  }
  const selector = decodeSelector(f, spec);
  if (selector && targetRefs.length) f.add('spec.selector', 'cannot be set together with targetRefs');
  const rules = f.list(spec.rules, 'spec.rules')?.map((r, i): PolicyRuleSpec => {
    const path = `spec.rules[${i}]`;
    const rule = f.obj(r, path) ?? {};
    // A misspelt key would leave a rule that matches everything: refuse it.
    for (const k of Object.keys(rule))
      if (!['from', 'to', 'when'].includes(k)) f.add(`${path}.${k}`, 'unknown field');
    const from = f.list(rule.from, `${path}.from`)?.map((s, j): PolicySource => {
      const sp = `${path}.from[${j}].source`;
      const src = f.obj(f.obj(s, `${path}.from[${j}]`)?.source, sp) ?? {};
      for (const k of Object.keys(src))
        if (!SOURCE_L4.includes(k) && !SOURCE_L7.includes(k)) f.add(`${sp}.${k}`, 'unknown field');
      return {
        principals: f.strings(src.principals, `${sp}.principals`),
        notPrincipals: f.strings(src.notPrincipals, `${sp}.notPrincipals`),
        namespaces: f.strings(src.namespaces, `${sp}.namespaces`),
        notNamespaces: f.strings(src.notNamespaces, `${sp}.notNamespaces`),
        ipBlocks: f.cidrs(src.ipBlocks, `${sp}.ipBlocks`),
        notIpBlocks: f.cidrs(src.notIpBlocks, `${sp}.notIpBlocks`),
        l7Fields: SOURCE_L7.filter((k) => src[k] !== undefined),
      };
    });
    const to = f.list(rule.to, `${path}.to`)?.map((t, j): PolicyOperation => {
      const op = `${path}.to[${j}].operation`;
      const o2 = f.obj(f.obj(t, `${path}.to[${j}]`)?.operation, op) ?? {};
      for (const k of Object.keys(o2))
        if (!OPERATION_L4.includes(k) && !OPERATION_L7.includes(k)) f.add(`${op}.${k}`, 'unknown field');
      return {
        ports: decodePortList(f, o2.ports, `${op}.ports`),
        notPorts: decodePortList(f, o2.notPorts, `${op}.notPorts`),
        hosts: f.strings(o2.hosts, `${op}.hosts`),
        notHosts: f.strings(o2.notHosts, `${op}.notHosts`),
        methods: f.strings(o2.methods, `${op}.methods`),
        notMethods: f.strings(o2.notMethods, `${op}.notMethods`),
        paths: f.strings(o2.paths, `${op}.paths`),
        notPaths: f.strings(o2.notPaths, `${op}.notPaths`),
        l7Fields: OPERATION_L7.filter((k) => o2[k] !== undefined),
      };
    });
    const when = f.list(rule.when, `${path}.when`)?.map((c, j): PolicyCondition => {
      const cp = `${path}.when[${j}]`;
      const cond = f.obj(c, cp) ?? {};
      for (const k of Object.keys(cond))
        if (!['key', 'values', 'notValues'].includes(k)) f.add(`${cp}.${k}`, 'unknown field');
      const key = f.str(cond.key, `${cp}.key`);
      const check = conditionCheck(f, key, `${cp}.key`);
      const values = f.strings(cond.values, `${cp}.values`);
      const notValues = f.strings(cond.notValues, `${cp}.notValues`);
      if (!values?.length && !notValues?.length) f.add(cp, 'must have values or notValues');
      values?.forEach((v, k) => {
        check?.(v, `${cp}.values[${k}]`);
      });
      notValues?.forEach((v, k) => {
        check?.(v, `${cp}.notValues[${k}]`);
      });
      return { key, values, notValues };
    });
    return { ...(from && { from }), ...(to && { to }), ...(when && { when }) };
  });
  return {
    kind: 'AuthorizationPolicy',
    metadata,
    ...(selector && { selector }),
    targetRefs,
    action: action as AuthorizationPolicyObject['action'],
    ...(rules && { rules }),
  };
}

const MODES: readonly MtlsMode[] = ['UNSET', 'STRICT', 'PERMISSIVE', 'DISABLE'];

function decodeMode(f: Fields, v: unknown, path: string): MtlsMode {
  const m = f.obj(v, path);
  if (!m || m.mode === undefined) return 'UNSET';
  const mode = f.str(m.mode, `${path}.mode`);
  if (!MODES.includes(mode as MtlsMode)) {
    f.add(`${path}.mode`, `${JSON.stringify(mode)} must be one of ${MODES.join(', ')}`);
    return 'UNSET';
  }
  return mode as MtlsMode;
}

function decodePeerAuthentication(f: Fields, o: Obj): PeerAuthenticationObject {
  const metadata = decodeMeta(f, o.metadata, true);
  const spec = f.obj(o.spec, 'spec') ?? {};
  const portLevel: Record<number, MtlsMode> = {};
  for (const [k, v] of Object.entries(f.obj(spec.portLevelMtls, 'spec.portLevelMtls') ?? {})) {
    const port = f.port(Number(k), `spec.portLevelMtls.${k}`);
    if (port !== undefined) portLevel[port] = decodeMode(f, v, `spec.portLevelMtls.${k}`);
  }
  const selector = decodeSelector(f, spec);
  return {
    kind: 'PeerAuthentication',
    metadata,
    ...(selector && { selector }),
    mode: decodeMode(f, spec.mtls, 'spec.mtls'),
    portLevel,
  };
}

function decodeGateway(f: Fields, o: Obj): GatewayObject {
  const metadata = decodeMeta(f, o.metadata, true);
  const spec = f.obj(o.spec, 'spec', false) ?? {};
  return {
    kind: 'Gateway',
    metadata,
    gatewayClassName: f.str(spec.gatewayClassName, 'spec.gatewayClassName'),
  };
}

/** The identity of a manifest: kind, namespace and name. */
export function objectKey(o: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
}

export type DecodedManifest =
  | { readonly ok: true; readonly value: KubeObject }
  | { readonly ok: false; readonly problems: readonly Problem[]; readonly ref: string }
  | { readonly ok: 'ignored'; readonly ref: string };

/**
 * Decodes one manifest. Unknown kinds are ignored (as a cluster would hold them without meaning to
 * the mesh); a known kind under an unknown apiVersion is an error.
 */
export function decodeManifest(doc: unknown): DecodedManifest {
  const f = new Fields();
  const o = f.obj(doc, '', false);
  if (!o) return { ok: false, problems: f.problems, ref: '(not a map)' };
  const kind = typeof o.kind === 'string' ? o.kind : '';
  const meta = (o.metadata ?? {}) as Obj;
  const ref = `${kind || '(no kind)'} ${meta.namespace ? `${String(meta.namespace)}/` : ''}${String(meta.name ?? '(no name)')}`;
  // Own keys only: `constructor`, `toString` and the like are unknown kinds, not inherited properties.
  if (!Object.hasOwn(API_VERSIONS, kind)) {
    if (!kind) return { ok: false, problems: [{ path: 'kind', message: 'is required' }], ref };
    return { ok: 'ignored', ref };
  }
  const accepted = API_VERSIONS[kind as KubeKind];
  if (!accepted.includes(String(o.apiVersion))) {
    f.add('apiVersion', `${JSON.stringify(o.apiVersion)} must be one of ${accepted.join(', ')}`);
  }
  let value: KubeObject;
  switch (kind as KubeKind) {
    case 'Namespace':
      value = { kind: 'Namespace', metadata: decodeMeta(f, o.metadata, false) };
      break;
    case 'Pod':
      value = decodePod(f, o);
      break;
    case 'Service':
      value = decodeService(f, o);
      break;
    case 'ServiceAccount':
      value = { kind: 'ServiceAccount', metadata: decodeMeta(f, o.metadata, true) };
      break;
    case 'AuthorizationPolicy':
      value = decodeAuthorizationPolicy(f, o);
      break;
    case 'PeerAuthentication':
      value = decodePeerAuthentication(f, o);
      break;
    case 'Gateway':
      value = decodeGateway(f, o);
      break;
    case 'HTTPRoute':
      value = decodeHttpRoute(f, o, decodeMeta(f, o.metadata, true));
      break;
    case 'VirtualService':
      value = decodeVirtualService(f, o, decodeMeta(f, o.metadata, true));
      break;
    case 'DestinationRule':
      value = decodeDestinationRule(f, o, decodeMeta(f, o.metadata, true));
      break;
  }
  if (f.problems.length) return { ok: false, problems: f.problems, ref };
  return { ok: true, value: Object.freeze(value) };
}
