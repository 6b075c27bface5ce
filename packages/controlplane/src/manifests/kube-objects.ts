/**
 * The Kubernetes and Istio kinds the control plane reads, decoded from parsed manifests into typed,
 * frozen objects. Each decoder returns every problem with its field path; an invalid object is
 * reported with its kind and name and left out, and the rest keeps working.
 */
import type { Problem } from '@ambient/shared';
import { type DestinationRuleObject, decodeDestinationRule } from './destination-rule-decoder.js';
import { decodeHttpRoute, type HttpRouteObject } from './http-route-decoder.js';
import { decodeMeta, ManifestFields as Fields, type Obj, type ObjectMeta } from './manifest-fields.js';
import { decodeVirtualService, type VirtualServiceObject } from './virtual-service-decoder.js';

export type * from './destination-rule-decoder.js';
export type * from './http-route-decoder.js';
export type { ObjectMeta } from './manifest-fields.js';
export type * from './traffic-fields.js';
export type * from './virtual-service-decoder.js';

export interface NamespaceObject {
  readonly kind: 'Namespace';
  readonly metadata: ObjectMeta;
}

/** A `metadata.ownerReferences` entry: what created the object (a ReplicaSet, a Job, ...). */
export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** Whether this owner is the managing controller (at most one is). */
  readonly controller: boolean;
}

export interface PodObject {
  readonly kind: 'Pod';
  readonly metadata: ObjectMeta;
  /** `metadata.generateName`: set when a controller named the pod. */
  readonly generateName?: string;
  /** `metadata.ownerReferences`, absent when there are none. */
  readonly ownerReferences?: readonly OwnerReference[];
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
  /**
   * `source.serviceAccounts` / `notServiceAccounts`, each `<namespace>/<name>` or `<name>`; a bare
   * name is resolved here to the policy's namespace, as istiod does.
   */
  readonly serviceAccounts?: readonly ServiceAccountRef[];
  readonly notServiceAccounts?: readonly ServiceAccountRef[];
  /** Fields only an L7 proxy can check, by name (requestPrincipals, remoteIpBlocks, ...). */
  readonly l7Fields: readonly string[];
}

/** A Kubernetes service account named by an AuthorizationPolicy source. */
export interface ServiceAccountRef {
  readonly namespace: string;
  readonly serviceAccount: string;
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

/** Which namespaces may attach to a waypoint (Gateway API `allowedRoutes.namespaces`). */
export interface GatewayAllowedRoutes {
  readonly from: 'All' | 'Same' | 'Selector';
  /** With `Selector`: the labels a namespace must carry (`selector.matchLabels`). */
  readonly selector?: Readonly<Record<string, string>>;
}

export interface GatewayObject {
  readonly kind: 'Gateway';
  readonly metadata: ObjectMeta;
  readonly gatewayClassName: string;
  /** From the HBONE listener on 15008, as istiod reads it for waypoints; `Same` when absent. */
  readonly allowedRoutes: GatewayAllowedRoutes;
}

/** The port of a waypoint's HBONE listener. */
const HBONE_LISTENER_PORT = 15008;

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
  const meta = (f.obj(o.metadata, 'metadata') ?? {}) as Obj;
  const generateName = f.optStr(meta.generateName, 'metadata.generateName');
  const ownerReferences = (f.list(meta.ownerReferences, 'metadata.ownerReferences') ?? []).flatMap((r, i) => {
    const path = `metadata.ownerReferences[${i}]`;
    const ref = f.obj(r, path, false);
    if (!ref) return [];
    return [
      {
        apiVersion: f.str(ref.apiVersion, `${path}.apiVersion`),
        kind: f.str(ref.kind, `${path}.kind`),
        name: f.str(ref.name, `${path}.name`),
        controller: f.bool(ref.controller, `${path}.controller`) ?? false,
      },
    ];
  });
  return {
    kind: 'Pod',
    metadata,
    ...(generateName && { generateName }),
    ...(ownerReferences.length > 0 && { ownerReferences }),
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

const SOURCE_L4 = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
];
const SOURCE_L7 = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'];
const OPERATION_L4 = ['ports', 'notPorts'];
const OPERATION_L7 = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];

const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * A service account as AuthorizationPolicy names it (`source.serviceAccounts`, condition
 * `source.serviceAccount`): `<namespace>/<name>`, or `<name>` in the policy's namespace
 * (istio/istio pilot/pkg/serviceregistry/kube/controller/ambient/authorization.go
 * stringToServiceAccountMatch). Istio matches them exactly, so a wildcard or any other character a
 * Kubernetes name cannot hold gives undefined, for the decoder to refuse rather than silently
 * never match.
 */
export function parseServiceAccount(value: string, policyNamespace: string): ServiceAccountRef | undefined {
  const parts = value.split('/');
  if (parts.length > 2) return undefined;
  const [ns, sa] = parts.length === 1 ? [policyNamespace, parts[0]] : parts;
  if (ns === undefined || sa === undefined || !NAMESPACE_NAME.test(ns) || !SERVICE_ACCOUNT_NAME.test(sa))
    return undefined;
  return { namespace: ns, serviceAccount: sa };
}

const notAServiceAccount = (value: string) =>
  `${JSON.stringify(value)} is not a service account: use <namespace>/<name> or <name> (Kubernetes names, no wildcards)`;

function decodeServiceAccounts(
  f: Fields,
  v: unknown,
  path: string,
  policyNamespace: string,
): ServiceAccountRef[] | undefined {
  return f.strings(v, path)?.flatMap((value, i) => {
    const sa = parseServiceAccount(value, policyNamespace);
    if (!sa) f.add(`${path}[${i}]`, notAServiceAccount(value));
    return sa ? [sa] : [];
  });
}

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
  'source.serviceAccount',
  'destination.ip',
  'destination.port',
  'connection.sni',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
]);
const CONDITION_PREFIXES = ['request.headers[', 'request.auth.claims[', 'experimental.envoy.filters.'];

/** Validates a condition key; returns the check for its values, if they have a format. */
function conditionCheck(
  f: Fields,
  key: string,
  path: string,
  policyNamespace: string,
): ((v: string, p: string) => void) | undefined {
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
  if (key === 'source.serviceAccount') {
    return (v, p) => {
      if (!parseServiceAccount(v, policyNamespace)) f.add(p, notAServiceAccount(v));
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

/** Size limits on what the control plane accepts, each refusal reported with its field path. */
export interface ManifestLimits {
  /** Largest manifest file read; larger ones are refused unread. */
  readonly maxFileBytes: number;
  /** Largest object (as JSON), as a Kubernetes API server refuses objects over etcd's request limit. */
  readonly maxObjectBytes: number;
  /**
   * Most values (principals, namespaces, IP blocks, ports, hosts, methods, paths, condition
   * values) in one AuthorizationPolicy: every node agent holds and compiles each policy.
   */
  readonly maxPolicyValues: number;
}

export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = Object.freeze({
  maxFileBytes: 16 * 1024 * 1024,
  maxObjectBytes: 1.5 * 1024 * 1024,
  maxPolicyValues: 10_000,
});

function decodeAuthorizationPolicy(f: Fields, o: Obj, limits: ManifestLimits): AuthorizationPolicyObject {
  const metadata = decodeMeta(f, o.metadata, true);
  let valueCount = 0;
  /** Counts a list's values towards the policy's limit, refusing at the list that passes it. */
  const counted = <T>(list: T[] | undefined, path: string): T[] | undefined => {
    const before = valueCount;
    valueCount += list?.length ?? 0;
    if (before <= limits.maxPolicyValues && valueCount > limits.maxPolicyValues)
      f.add(
        path,
        `takes the policy over ${limits.maxPolicyValues} values (principals, namespaces, IP blocks, ports and other values of its rules, counted together)`,
      );
    return list;
  };
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
      // As Istio's validation: a service account already names a namespace and a principal.
      const identityKeys = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'];
      if (
        (src.serviceAccounts !== undefined || src.notServiceAccounts !== undefined) &&
        identityKeys.some((k) => src[k] !== undefined)
      )
        f.add(sp, 'cannot set serviceAccounts or notServiceAccounts with namespaces or principals');
      const serviceAccounts = (key: 'serviceAccounts' | 'notServiceAccounts') =>
        counted(decodeServiceAccounts(f, src[key], `${sp}.${key}`, metadata.namespace), `${sp}.${key}`);
      return {
        principals: counted(f.strings(src.principals, `${sp}.principals`), `${sp}.principals`),
        notPrincipals: counted(f.strings(src.notPrincipals, `${sp}.notPrincipals`), `${sp}.notPrincipals`),
        namespaces: counted(f.strings(src.namespaces, `${sp}.namespaces`), `${sp}.namespaces`),
        notNamespaces: counted(f.strings(src.notNamespaces, `${sp}.notNamespaces`), `${sp}.notNamespaces`),
        ipBlocks: counted(f.cidrs(src.ipBlocks, `${sp}.ipBlocks`), `${sp}.ipBlocks`),
        notIpBlocks: counted(f.cidrs(src.notIpBlocks, `${sp}.notIpBlocks`), `${sp}.notIpBlocks`),
        serviceAccounts: serviceAccounts('serviceAccounts'),
        notServiceAccounts: serviceAccounts('notServiceAccounts'),
        l7Fields: SOURCE_L7.filter((k) => src[k] !== undefined),
      };
    });
    const to = f.list(rule.to, `${path}.to`)?.map((t, j): PolicyOperation => {
      const op = `${path}.to[${j}].operation`;
      const o2 = f.obj(f.obj(t, `${path}.to[${j}]`)?.operation, op) ?? {};
      for (const k of Object.keys(o2))
        if (!OPERATION_L4.includes(k) && !OPERATION_L7.includes(k)) f.add(`${op}.${k}`, 'unknown field');
      return {
        ports: counted(decodePortList(f, o2.ports, `${op}.ports`), `${op}.ports`),
        notPorts: counted(decodePortList(f, o2.notPorts, `${op}.notPorts`), `${op}.notPorts`),
        hosts: counted(f.strings(o2.hosts, `${op}.hosts`), `${op}.hosts`),
        notHosts: counted(f.strings(o2.notHosts, `${op}.notHosts`), `${op}.notHosts`),
        methods: counted(f.strings(o2.methods, `${op}.methods`), `${op}.methods`),
        notMethods: counted(f.strings(o2.notMethods, `${op}.notMethods`), `${op}.notMethods`),
        paths: counted(f.strings(o2.paths, `${op}.paths`), `${op}.paths`),
        notPaths: counted(f.strings(o2.notPaths, `${op}.notPaths`), `${op}.notPaths`),
        l7Fields: OPERATION_L7.filter((k) => o2[k] !== undefined),
      };
    });
    const when = f.list(rule.when, `${path}.when`)?.map((c, j): PolicyCondition => {
      const cp = `${path}.when[${j}]`;
      const cond = f.obj(c, cp) ?? {};
      for (const k of Object.keys(cond))
        if (!['key', 'values', 'notValues'].includes(k)) f.add(`${cp}.${k}`, 'unknown field');
      const key = f.str(cond.key, `${cp}.key`);
      const check = conditionCheck(f, key, `${cp}.key`, metadata.namespace);
      const values = counted(f.strings(cond.values, `${cp}.values`), `${cp}.values`);
      const notValues = counted(f.strings(cond.notValues, `${cp}.notValues`), `${cp}.notValues`);
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
    allowedRoutes: decodeAllowedRoutes(f, spec),
  };
}

const ALLOWED_FROM = ['All', 'Same', 'Selector'] as const;

/**
 * The namespaces allowed to attach, read from the listener istiod reads for a waypoint (protocol
 * HBONE, port 15008); `Same` when there is none or it says nothing.
 */
function decodeAllowedRoutes(f: Fields, spec: Obj): GatewayAllowedRoutes {
  const listeners = f.list(spec.listeners, 'spec.listeners') ?? [];
  const i = listeners.findIndex((l) => {
    const o = l as Obj | null;
    return o !== null && typeof o === 'object' && o.protocol === 'HBONE' && o.port === HBONE_LISTENER_PORT;
  });
  if (i < 0) return { from: 'Same' };
  const path = `spec.listeners[${i}].allowedRoutes.namespaces`;
  const ar = f.obj((listeners[i] as Obj).allowedRoutes, `spec.listeners[${i}].allowedRoutes`);
  const ns = f.obj(ar?.namespaces, path);
  if (!ns) return { from: 'Same' };
  const from = f.str(ns.from, `${path}.from`, 'Same');
  if (!(ALLOWED_FROM as readonly string[]).includes(from)) {
    f.add(`${path}.from`, `must be one of ${ALLOWED_FROM.join(', ')}`);
    return { from: 'Same' };
  }
  if (from !== 'Selector') return { from: from as 'All' | 'Same' };
  const sel = f.obj(ns.selector, `${path}.selector`, false);
  if (sel?.matchExpressions !== undefined)
    f.add(`${path}.selector.matchExpressions`, 'is not supported; use matchLabels');
  return { from: 'Selector', selector: f.labels(sel?.matchLabels, `${path}.selector.matchLabels`) };
}

/**
 * The identity a parsed manifest claims, read before (and whatever the outcome of) decoding it:
 * `kind/namespace/name`, or undefined when its kind is not one the mesh reads or its name or
 * namespace cannot be read. An invalid edit of an object is matched to its last good version by it.
 */
export function manifestKey(doc: unknown): string | undefined {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const o = doc as Obj;
  if (typeof o.kind !== 'string' || !Object.hasOwn(API_VERSIONS, o.kind)) return undefined;
  const meta = o.metadata;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return undefined;
  const { name, namespace } = meta as Obj;
  if (typeof name !== 'string' || name === '') return undefined;
  if (o.kind === 'Namespace') return `Namespace//${name}`;
  if (namespace !== undefined && namespace !== null && namespace !== '' && typeof namespace !== 'string')
    return undefined;
  return `${o.kind}/${(namespace as string | undefined) || 'default'}/${name}`;
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
export function decodeManifest(
  doc: unknown,
  limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS,
): DecodedManifest {
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
      value = decodeAuthorizationPolicy(f, o, limits);
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
