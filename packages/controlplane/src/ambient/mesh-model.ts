/**
 * Workload discovery computed from the cluster's objects, as istiod computes it for ztunnel:
 * - a Workload per running pod with an IP: HBONE when the pod or its namespace carries
 *   `istio.io/dataplane-mode=ambient` (the pod label wins; `none` opts out), the services selecting
 *   it with their target ports, the workload-scoped policies selecting it, its waypoint;
 * - a Service per Kubernetes Service: VIPs, ports, waypoint;
 * - an Authorization per policy ztunnel enforces, plus the policies STRICT mTLS turns into.
 * The builder keeps each output object while its inputs are the same objects, so a one-pod change
 * recomputes one workload and downstream encoders can cache by identity.
 */
import { type Always, type Problem, type Written, type WrittenFields, workloadapi } from '@ambient/shared';
import type {
  AuthorizationPolicyObject,
  GatewayObject,
  KubeObject,
  MtlsMode,
  NamespaceObject,
  PeerAuthenticationObject,
  PodObject,
  ServiceObject,
} from '../manifests/kube-objects.js';
import {
  convertedPeerAuthentication,
  ipBytes,
  STATIC_STRICT_NAME,
  staticStrictPolicy,
  translateAuthorizationPolicy,
  type WireAuthorization,
} from './authorization-translate.js';
import {
  type PolicyBinding,
  type StatusMessage,
  type WaypointBinding,
  waypointAttachmentDenied,
  waypointNotReady,
  waypointUnsupportedTrafficType,
} from './binding-status.js';
import { SnapshotMap } from './snapshot-map.js';
import { runToEnd } from './time-slicer.js';
import { canonicalService, workloadName, workloadTrustDomain } from './workload-naming.js';

export const DATAPLANE_MODE = 'istio.io/dataplane-mode';
export const USE_WAYPOINT = 'istio.io/use-waypoint';
export const USE_WAYPOINT_NAMESPACE = 'istio.io/use-waypoint-namespace';
export const WAYPOINT_FOR = 'istio.io/waypoint-for';
export const FOR_SERVICE_ACCOUNT = 'istio.io/for-service-account';
export const WAYPOINT_CLASS = 'istio-waypoint';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** On the Service the waypoint deployment controller makes for a waypoint: it never gets one. */
export const GATEWAY_MANAGED_LABEL = 'gateway.istio.io/managed';
export const MESH_CONTROLLER = 'istio.io-mesh-controller';
export const INGRESS_USE_WAYPOINT = 'istio.io/ingress-use-waypoint';
export const HBONE_PORT = 15008;

export interface MeshModelOptions {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly domainSuffix: string;
  /** Send dry-run AuthorizationPolicies to ztunnel marked dry_run; off, they are left out. */
  readonly sendDryRunPolicies?: boolean;
}

/** The waypoint the builder names: always by hostname, with its HBONE port. */
export type WireGatewayAddress = WrittenFields<workloadapi.GatewayAddress, 'hostname' | 'hboneMtlsPort'>;

/** A Workload as the builder writes it: the fields istiod sets for a pod, and its waypoint if any. */
export type WireWorkload = Written<
  workloadapi.Workload,
  Always<
    workloadapi.Workload,
    | 'uid'
    | 'name'
    | 'namespace'
    | 'addresses'
    | 'network'
    | 'tunnelProtocol'
    | 'trustDomain'
    | 'serviceAccount'
    | 'node'
    | 'canonicalName'
    | 'canonicalRevision'
    | 'workloadType'
    | 'workloadName'
    | 'services'
    | 'authorizationPolicies'
    | 'status'
    | 'clusterId'
  > & { waypoint?: WireGatewayAddress }
>;

/** A Service as the builder writes it, with its waypoint if any. */
export type WireService = Written<
  workloadapi.Service,
  Always<
    workloadapi.Service,
    'name' | 'namespace' | 'hostname' | 'addresses' | 'ports' | 'subjectAltNames'
  > & {
    waypoint?: WireGatewayAddress;
  }
>;

/** An Address resource: one of the two members of its oneof. */
export type WireAddress = { workload: WireWorkload } | { service: WireService };

export interface ModelProblem extends Problem {
  /** Kind, namespace and name of the object. */
  readonly ref: string;
}

export interface MeshModel {
  /** Address resources by name: workload uid, or `namespace/hostname` for services. */
  readonly addresses: ReadonlyMap<string, WireAddress>;
  /** Authorization resources by `namespace/name`. */
  readonly authorizations: ReadonlyMap<string, WireAuthorization>;
  /** `namespace/serviceAccount` of the running pods on each node, for the CA. */
  readonly identitiesByNode: ReadonlyMap<string, ReadonlySet<string>>;
  readonly problems: readonly ModelProblem[];
  /** Each AuthorizationPolicy's binding to ztunnel by `namespace/name` (none for a waypoint's). */
  readonly policyBindings: ReadonlyMap<string, PolicyBinding>;
  /** Each Service's waypoint binding by `namespace/name`. */
  readonly serviceBindings: ReadonlyMap<string, WaypointBinding>;
}

/**
 * Whether a pod is enrolled in ambient mode (its traffic carried over HBONE): the pod's own
 * `istio.io/dataplane-mode` label wins (`none` opts out), else its namespace's.
 */
export function isAmbientEnrolled(pod: PodObject, ns: NamespaceObject | undefined): boolean {
  const podMode = pod.metadata.labels[DATAPLANE_MODE];
  return podMode ? podMode === 'ambient' : ns?.metadata.labels[DATAPLANE_MODE] === 'ambient';
}

/** Whether a waypoint lets objects of `namespace` (with labels `nsLabels`) attach to it. */
export function allowsAttachment(
  gw: GatewayObject,
  namespace: string,
  nsLabels: Readonly<Record<string, string>>,
): boolean {
  const { from, selector } = gw.allowedRoutes;
  if (from === 'All') return true;
  if (from === 'Selector') return matchesSelector(selector ?? {}, nsLabels);
  return gw.metadata.namespace === namespace;
}

/** Whether every label of a selector is on the object. */
export function matchesSelector(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Whether a service selects a running pod of a service account in its namespace. */
function selectsPodOf(svc: ServiceObject, serviceAccount: string, ix: Indexes): boolean {
  const sel = svc.selector;
  if (!sel || Object.keys(sel).length === 0) return false;
  for (const p of ix.pods.values())
    if (
      p.running &&
      p.metadata.namespace === svc.metadata.namespace &&
      p.serviceAccountName === serviceAccount &&
      matchesSelector(sel, p.metadata.labels)
    )
      return true;
  return false;
}

interface Indexes {
  readonly namespaces: Map<string, NamespaceObject>;
  /** By `namespace/name`. */
  readonly pods: Map<string, PodObject>;
  readonly servicesByNs: Map<string, ServiceObject[]>;
  readonly policiesByNs: Map<string, AuthorizationPolicyObject[]>;
  readonly peerAuthByNs: Map<string, PeerAuthenticationObject[]>;
  readonly gateways: Map<string, GatewayObject>;
  /** Gateways of any other class: not ours to serve. */
  readonly otherGateways: GatewayObject[];
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function index(objects: ReadonlyMap<string, KubeObject>): Indexes {
  const ix: Indexes = {
    namespaces: new Map(),
    pods: new Map(),
    servicesByNs: new Map(),
    policiesByNs: new Map(),
    peerAuthByNs: new Map(),
    gateways: new Map(),
    otherGateways: [],
  };
  for (const o of objects.values()) {
    switch (o.kind) {
      case 'Namespace':
        ix.namespaces.set(o.metadata.name, o);
        break;
      case 'Pod':
        ix.pods.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
        break;
      case 'Service':
        push(ix.servicesByNs, o.metadata.namespace, o);
        break;
      case 'AuthorizationPolicy':
        push(ix.policiesByNs, o.metadata.namespace, o);
        break;
      case 'PeerAuthentication':
        push(ix.peerAuthByNs, o.metadata.namespace, o);
        break;
      case 'Gateway':
        if (o.gatewayClassName === WAYPOINT_CLASS)
          ix.gateways.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
        else ix.otherGateways.push(o);
        break;
    }
  }
  return ix;
}

/** Output cached while its inputs are the same objects and the shared inputs did not change. */
interface Cached<T> {
  readonly object: PodObject | ServiceObject;
  readonly ns: NamespaceObject | undefined;
  readonly generation: number;
  readonly value: T | undefined;
  /** The Address wrapper, kept so that encoders caching by identity hit while inputs are unchanged. */
  readonly address: WireAddress | undefined;
  /** A service's waypoint binding. */
  readonly binding?: WaypointBinding;
}

const SHARED_KINDS = new Set<KubeObject['kind']>([
  'Service',
  'AuthorizationPolicy',
  'PeerAuthentication',
  'Gateway',
]);

/** What a model update changed, beside the model itself. */
export interface MeshModelUpdate {
  readonly model: MeshModel;
  /** The model this one was derived from, when it was derived from one (absent: a full build). */
  readonly previous?: MeshModel;
  /**
   * With `previous`: the names of the Address resources that may differ from it (added, changed or
   * removed). Every other Address, and every other output, is the same object as in `previous`.
   */
  readonly changedAddresses?: ReadonlySet<string>;
}

/** What the last build left, for updating it in place of a full build. */
interface BuildState {
  readonly ix: Indexes;
  readonly model: MeshModel;
  /** The model's addresses, to update without copying them all. */
  readonly addresses: SnapshotMap<string, WireAddress>;
  /** Running pods per identity per node: a node loses an identity only when its last such pod goes. */
  readonly identityCounts: Map<string, Map<string, number>>;
  /** Whether a legacy service-account waypoint exists, which makes services depend on pods. */
  readonly legacy: boolean;
}

const POD_PREFIX = 'Pod/';

function kindOf(key: string): KubeObject['kind'] {
  return key.slice(0, key.indexOf('/')) as KubeObject['kind'];
}

function countIdentity(
  counts: Map<string, Map<string, number>>,
  node: string,
  id: string,
  by: number,
): number {
  let ids = counts.get(node);
  if (!ids) {
    ids = new Map();
    counts.set(node, ids);
  }
  const n = (ids.get(id) ?? 0) + by;
  if (n > 0) ids.set(id, n);
  else {
    ids.delete(id);
    if (ids.size === 0) counts.delete(node);
  }
  return n;
}

export class MeshModelBuilder {
  private generation = 0;
  private byKeyWorkload = new Map<string, Cached<WireWorkload>>();
  private byKeyService = new Map<string, Cached<WireService>>();
  /** Set by a completed build, cleared when one starts: an interrupted build leaves nothing to update. */
  private state?: BuildState;

  constructor(private readonly options: MeshModelOptions) {}

  /** Forgets the last build, so the next update is a full build. */
  reset(): void {
    this.state = undefined;
  }

  /**
   * The model after the objects of `changedKeys` (`kind/namespace/name`) changed; with none given,
   * after any change. When only pods changed (and no legacy service-account waypoint makes services
   * depend on pods), only those pods' workloads and node identities are recomputed on top of the
   * last build: nothing else a model holds reads a pod. Any other change is a full build.
   */
  *updateSteps(
    objects: ReadonlyMap<string, KubeObject>,
    changedKeys?: ReadonlySet<string>,
  ): Generator<void, MeshModelUpdate> {
    const state = this.state;
    if (!changedKeys || !state || state.legacy || ![...changedKeys].every((k) => k.startsWith(POD_PREFIX))) {
      const kinds = changedKeys && new Set([...changedKeys].map(kindOf));
      return { model: yield* this.buildSteps(objects, kinds) };
    }
    this.state = undefined;
    const prev = state.model;
    const addresses = state.addresses;
    const identitiesByNode = new Map(prev.identitiesByNode) as Map<string, ReadonlySet<string>>;
    // Copy on write: the previous model's sets stay as they were.
    const copied = new Set<string>();
    const ids = (node: string): Set<string> => {
      const held = identitiesByNode.get(node);
      if (held && copied.has(node)) return held as Set<string>;
      const set = new Set(held);
      identitiesByNode.set(node, set);
      copied.add(node);
      return set;
    };
    const changedAddresses = new Set<string>();
    const { ix, identityCounts } = state;
    const authorizations = prev.authorizations as Map<string, WireAuthorization>;
    for (const objectKey of changedKeys) {
      const key = objectKey.slice(POD_PREFIX.length);
      const next = objects.get(objectKey);
      const pod = next?.kind === 'Pod' ? next : undefined;
      const old = ix.pods.get(key);
      if (old?.running && old.nodeName) {
        const id = `${old.metadata.namespace}/${old.serviceAccountName}`;
        if (countIdentity(identityCounts, old.nodeName, id, -1) === 0) {
          const set = ids(old.nodeName);
          set.delete(id);
          if (set.size === 0) identitiesByNode.delete(old.nodeName);
        }
      }
      let cached = this.byKeyWorkload.get(key);
      if (cached?.value) {
        addresses.delete(cached.value.uid);
        changedAddresses.add(cached.value.uid);
      }
      if (!pod) {
        ix.pods.delete(key);
        this.byKeyWorkload.delete(key);
        yield;
        continue;
      }
      ix.pods.set(key, pod);
      if (pod.running && pod.nodeName) {
        const id = `${pod.metadata.namespace}/${pod.serviceAccountName}`;
        if (countIdentity(identityCounts, pod.nodeName, id, 1) === 1) ids(pod.nodeName).add(id);
      }
      cached = this.cachedWorkload(pod, ix, authorizations, cached);
      this.byKeyWorkload.set(key, cached);
      if (cached.value && cached.address) {
        addresses.set(cached.value.uid, cached.address);
        changedAddresses.add(cached.value.uid);
      }
      yield;
    }
    const model: MeshModel = { ...prev, addresses: addresses.snapshot(), identitiesByNode };
    this.state = { ...state, model };
    return { model, previous: prev, changedAddresses };
  }

  /** Computes the model; `changedKinds` of the objects changed since the last build (all on the first). */
  build(objects: ReadonlyMap<string, KubeObject>, changedKinds?: ReadonlySet<KubeObject['kind']>): MeshModel {
    return runToEnd(this.buildSteps(objects, changedKinds));
  }

  /**
   * The same computation as steps, one per policy, pod or service, so a caller can run it in
   * time slices (`TimeSlicer.run`). Builds must not overlap.
   */
  *buildSteps(
    objects: ReadonlyMap<string, KubeObject>,
    changedKinds?: ReadonlySet<KubeObject['kind']>,
  ): Generator<void, MeshModel> {
    this.state = undefined;
    const ix = index(objects);
    // A legacy service-account waypoint puts itself on the services selecting that account's
    // pods, so with one present a pod change can change a service too.
    const legacy = [...ix.gateways.values()].some((gw) => gw.metadata.annotations[FOR_SERVICE_ACCOUNT]);
    if (!changedKinds || [...changedKinds].some((k) => SHARED_KINDS.has(k) || (legacy && k === 'Pod')))
      this.generation += 1;
    const problems: ModelProblem[] = [];
    // Accepted by the API server, but of a class this control plane neither deploys nor configures.
    for (const gw of ix.otherGateways)
      problems.push({
        ref: `Gateway ${gw.metadata.namespace}/${gw.metadata.name}`,
        path: 'spec.gatewayClassName',
        message: `class ${JSON.stringify(gw.gatewayClassName)} is not served here (only ${WAYPOINT_CLASS}): the Gateway is ignored`,
      });
    const authorizations = new Map<string, WireAuthorization>();
    const policyBindings = new Map<string, PolicyBinding>();
    for (const list of ix.policiesByNs.values()) {
      for (const p of list) {
        const t = translateAuthorizationPolicy(p, this.options.rootNamespace, {
          sendDryRun: this.options.sendDryRunPolicies ?? false,
        });
        if (t.binding) policyBindings.set(`${p.metadata.namespace}/${p.metadata.name}`, t.binding);
        if (t.kind === 'skipped') {
          problems.push({
            ref: `AuthorizationPolicy ${p.metadata.namespace}/${p.metadata.name}`,
            path: 'spec',
            message: `not sent to ztunnel: ${t.reason}`,
          });
          continue;
        }
        // Accepted by the API server, but not what ztunnel can check: each field is named.
        for (const a of t.omitted)
          problems.push({
            ref: `AuthorizationPolicy ${p.metadata.namespace}/${p.metadata.name}`,
            path: a.path,
            message:
              p.action === 'ALLOW'
                ? `${a.name} is HTTP-only and ztunnel checks L4 only: this rule is left out (it allows nothing); attach the policy to a waypoint with targetRefs`
                : `${a.name} is HTTP-only and ztunnel checks L4 only: it is ignored, so the rule denies more than it says; attach the policy to a waypoint with targetRefs`,
          });
        if (t.notice)
          problems.push({
            ref: `AuthorizationPolicy ${p.metadata.namespace}/${p.metadata.name}`,
            path: 'metadata.annotations',
            message: t.notice,
          });
        authorizations.set(`${p.metadata.namespace}/${p.metadata.name}`, t.authorization);
        yield;
      }
    }
    for (const list of ix.peerAuthByNs.values()) {
      for (const pa of list) {
        const converted = this.converted(pa, ix);
        if (converted) authorizations.set(`${converted.namespace}/${converted.name}`, converted);
      }
    }
    const anyPeerAuth = ix.peerAuthByNs.size > 0;
    if (anyPeerAuth) {
      const strict = staticStrictPolicy(this.options.rootNamespace);
      authorizations.set(`${strict.namespace}/${strict.name}`, strict);
    }

    const addresses = new Map<string, WireAddress>();
    const identitiesByNode = new Map<string, Set<string>>();
    const identityCounts = new Map<string, Map<string, number>>();
    const nextWorkloads = new Map<string, Cached<WireWorkload>>();
    for (const [key, pod] of ix.pods) {
      if (pod.running && pod.nodeName) {
        const ids = identitiesByNode.get(pod.nodeName) ?? new Set<string>();
        identitiesByNode.set(pod.nodeName, ids);
        const id = `${pod.metadata.namespace}/${pod.serviceAccountName}`;
        ids.add(id);
        countIdentity(identityCounts, pod.nodeName, id, 1);
      }
      const cached = this.cachedWorkload(pod, ix, authorizations, this.byKeyWorkload.get(key));
      nextWorkloads.set(key, cached);
      if (cached.value && cached.address) addresses.set(cached.value.uid, cached.address);
      yield;
    }
    this.byKeyWorkload = nextWorkloads;

    const nextServices = new Map<string, Cached<WireService>>();
    const serviceBindings = new Map<string, WaypointBinding>();
    for (const list of ix.servicesByNs.values()) {
      for (const svc of list) {
        const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
        const ns = ix.namespaces.get(svc.metadata.namespace);
        let cached = this.byKeyService.get(key);
        if (!cached || cached.object !== svc || cached.ns !== ns || cached.generation !== this.generation) {
          const { value, binding } = this.service(svc, ns, ix);
          cached = {
            object: svc,
            ns,
            generation: this.generation,
            value,
            address: { service: value },
            binding,
          };
        }
        nextServices.set(key, cached);
        if (cached.binding) serviceBindings.set(key, cached.binding);
        const v = cached.value as WireService;
        addresses.set(`${v.namespace}/${v.hostname}`, cached.address as WireAddress);
        yield;
      }
    }
    this.byKeyService = nextServices;
    const model = { addresses, authorizations, identitiesByNode, problems, policyBindings, serviceBindings };
    this.state = { ix, model, addresses: new SnapshotMap(addresses), identityCounts, legacy };
    return model;
  }

  /** A pod's workload: the cached one while its pod, namespace and the shared inputs are unchanged. */
  private cachedWorkload(
    pod: PodObject,
    ix: Indexes,
    authorizations: Map<string, WireAuthorization>,
    cached: Cached<WireWorkload> | undefined,
  ): Cached<WireWorkload> {
    const ns = ix.namespaces.get(pod.metadata.namespace);
    if (cached && cached.object === pod && cached.ns === ns && cached.generation === this.generation)
      return cached;
    const value = this.workload(pod, ns, ix, authorizations);
    return { object: pod, ns, generation: this.generation, value, address: value && { workload: value } };
  }

  private hostname(name: string, namespace: string): string {
    return `${name}.${namespace}.svc.${this.options.domainSuffix}`;
  }

  /**
   * The waypoint a pod or service uses, as istiod picks it (pilot/pkg/serviceregistry/ambient/
   * waypoints.go): the object's own `istio.io/use-waypoint` label wins over its namespace's, and
   * `none` (on the object, or on its namespace when the object has none) opts it out; the Gateway is looked up in `istio.io/use-waypoint-namespace`
   * (else the object's namespace) and must let that namespace attach (`allowedRoutes` of its HBONE
   * listener, `Same` by default). A service gets it only when the Gateway's `istio.io/waypoint-for`
   * is service (the default) or all; a workload only when it is workload or all. A name that finds
   * no such Gateway gives no waypoint: the namespace label is not tried instead.
   */
  private waypointFor(
    labels: Readonly<Record<string, string>>,
    ns: NamespaceObject | undefined,
    namespace: string,
    forKind: 'service' | 'workload',
    ix: Indexes,
    servesLegacy?: (serviceAccount: string) => boolean,
  ): WireGatewayAddress | undefined {
    const gw = this.resolveWaypoint(labels, ns, namespace, forKind, ix, servesLegacy).gateway;
    return gw && this.gatewayAddress(gw);
  }

  /**
   * The waypoint an object binds to, or why it binds to none (istiod's fetchWaypointForTarget,
   * fetchWaypointForService and fetchWaypointForWorkload, whose StatusMessages become the
   * `istio.io/WaypointBound` condition).
   */
  private resolveWaypoint(
    labels: Readonly<Record<string, string>>,
    ns: NamespaceObject | undefined,
    namespace: string,
    forKind: 'service' | 'workload',
    ix: Indexes,
    servesLegacy?: (serviceAccount: string) => boolean,
  ): { gateway?: GatewayObject; error?: StatusMessage } {
    const nsLabels = ns?.metadata.labels ?? {};
    const from =
      labels[USE_WAYPOINT] !== undefined
        ? labels
        : nsLabels[USE_WAYPOINT] !== undefined
          ? nsLabels
          : undefined;
    if (from) {
      const name = from[USE_WAYPOINT] as string;
      if (name === 'none') return {};
      const gwNs = from[USE_WAYPOINT_NAMESPACE] ?? namespace;
      const ref = `${gwNs}/${name}`;
      const gw = ix.gateways.get(ref);
      if (!gw) return { error: waypointNotReady(ref) };
      if (!allowsAttachment(gw, namespace, nsLabels)) return { error: waypointAttachmentDenied(ref) };
      const target = gw.metadata.labels[WAYPOINT_FOR] ?? 'service';
      if (target === forKind || target === 'all') return { gateway: gw };
      // A workload inheriting its namespace's waypoint, which is for services, is no error.
      if (forKind === 'workload' && from !== labels) return {};
      return { error: waypointUnsupportedTrafficType(ref, forKind) };
    }
    // Legacy (Istio before 1.22): a Gateway annotated `istio.io/for-service-account` serves that
    // account's pods in its namespace, and the services selecting them (so VIP traffic reaches
    // it too, as it did then); only when no use-waypoint label applies.
    if (servesLegacy) {
      for (const gw of ix.gateways.values()) {
        const sa = gw.metadata.annotations[FOR_SERVICE_ACCOUNT];
        if (gw.metadata.namespace === namespace && sa !== undefined && servesLegacy(sa))
          return { gateway: gw };
      }
    }
    return {};
  }

  private gatewayAddress(gw: GatewayObject): WireGatewayAddress {
    return {
      hostname: {
        namespace: gw.metadata.namespace,
        hostname: this.hostname(gw.metadata.name, gw.metadata.namespace),
      },
      hboneMtlsPort: HBONE_PORT,
    };
  }

  /** The mTLS mode in force in a namespace, with an optional workload policy on top; UNSET inherits. */
  private effectiveMode(namespace: string, ix: Indexes, workloadPolicy?: PeerAuthenticationObject): MtlsMode {
    const mesh = (ix.peerAuthByNs.get(this.options.rootNamespace) ?? []).find((p) => !p.selector);
    const nsWide = (ix.peerAuthByNs.get(namespace) ?? []).find((p) => !p.selector);
    let mode: MtlsMode = 'PERMISSIVE';
    for (const p of [mesh, nsWide, workloadPolicy]) if (p && p.mode !== 'UNSET') mode = p.mode;
    return mode;
  }

  /** A workload PeerAuthentication with port-level modes, as the DENY it becomes. */
  private converted(pa: PeerAuthenticationObject, ix: Indexes): WireAuthorization | undefined {
    if (!pa.selector || Object.keys(pa.portLevel).length === 0) return undefined;
    return convertedPeerAuthentication(pa, this.effectiveMode(pa.metadata.namespace, ix, pa));
  }

  private workload(
    pod: PodObject,
    ns: NamespaceObject | undefined,
    ix: Indexes,
    authorizations: Map<string, WireAuthorization>,
  ): WireWorkload | undefined {
    if (!pod.running || pod.podIps.length === 0) return undefined;
    const { namespace, name, labels } = pod.metadata;
    const ambient = isAmbientEnrolled(pod, ns);
    const services: WireWorkload['services'] = {};
    for (const svc of ix.servicesByNs.get(namespace) ?? []) {
      if (!svc.selector || Object.keys(svc.selector).length === 0 || !matchesSelector(svc.selector, labels))
        continue;
      const ports = svc.ports.flatMap((p) => {
        const target = typeof p.targetPort === 'number' ? p.targetPort : pod.namedPorts[p.targetPort];
        return target === undefined ? [] : [{ servicePort: p.port, targetPort: target }];
      });
      services[`${namespace}/${this.hostname(svc.metadata.name, namespace)}`] = { ports };
    }
    const policies: string[] = [];
    for (const policyNs of new Set([namespace, this.options.rootNamespace])) {
      for (const p of ix.policiesByNs.get(policyNs) ?? []) {
        const key = `${policyNs}/${p.metadata.name}`;
        if (p.selector && authorizations.has(key) && matchesSelector(p.selector, labels)) policies.push(key);
      }
    }
    // The oldest matching workload policy wins in istiod; names stand in for creation order here.
    const workloadPa = (ix.peerAuthByNs.get(namespace) ?? [])
      .filter((p) => p.selector && matchesSelector(p.selector, labels))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
    const converted = workloadPa && this.converted(workloadPa, ix);
    if (converted) {
      policies.push(`${converted.namespace}/${converted.name}`);
    } else if (this.effectiveMode(namespace, ix, workloadPa) === 'STRICT') {
      policies.push(`${this.options.rootNamespace}/${STATIC_STRICT_NAME}`);
    }
    const isWaypoint = labels[GATEWAY_NAME_LABEL] !== undefined;
    const waypoint = isWaypoint
      ? undefined
      : this.waypointFor(labels, ns, namespace, 'workload', ix, (sa) => sa === pod.serviceAccountName);
    const wlName = workloadName(pod);
    const canonical = canonicalService(labels, wlName);
    return {
      uid: `${this.options.clusterId}//Pod/${namespace}/${name}`,
      name,
      namespace,
      addresses: pod.podIps.map(ipBytes),
      network: '',
      tunnelProtocol: ambient ? workloadapi.TunnelProtocol.HBONE : workloadapi.TunnelProtocol.NONE,
      trustDomain: workloadTrustDomain(this.options.trustDomain),
      serviceAccount: pod.serviceAccountName,
      ...(waypoint && { waypoint }),
      node: pod.nodeName,
      canonicalName: canonical.name,
      canonicalRevision: canonical.revision,
      // istiod writes POD for every workload since 1.25, whatever controls it.
      workloadType: workloadapi.WorkloadType.POD,
      workloadName: wlName,
      services,
      authorizationPolicies: policies.sort(),
      status: workloadapi.WorkloadStatus.HEALTHY,
      clusterId: this.options.clusterId,
    };
  }

  private service(
    svc: ServiceObject,
    ns: NamespaceObject | undefined,
    ix: Indexes,
  ): { value: WireService; binding: WaypointBinding } {
    const { namespace, name, labels } = svc.metadata;
    // A waypoint's own Service would otherwise point at itself through a namespace label.
    const resolved: { gateway?: GatewayObject; error?: StatusMessage } =
      labels[GATEWAY_MANAGED_LABEL] === MESH_CONTROLLER
        ? {}
        : this.resolveWaypoint(labels, ns, namespace, 'service', ix, (sa) => selectsPodOf(svc, sa, ix));
    const gw = resolved.gateway;
    const waypoint = gw && this.gatewayAddress(gw);
    // istiod's ingressUseWaypointFromLabels: the Service's label, else its namespace's.
    const ingress = labels[INGRESS_USE_WAYPOINT] ?? ns?.metadata.labels[INGRESS_USE_WAYPOINT];
    const binding: WaypointBinding = {
      ...(gw && { waypoint: `${gw.metadata.namespace}/${gw.metadata.name}` }),
      ingressLabelPresent: gw !== undefined && ingress !== undefined,
      ingressUseWaypoint: gw !== undefined && ingress !== undefined && GO_TRUE.has(ingress),
      ...(resolved.error && { error: resolved.error }),
    };
    return {
      binding,
      value: {
        name,
        namespace,
        hostname: this.hostname(name, namespace),
        addresses: svc.clusterIps.map((ip) => ({ network: '', address: ipBytes(ip) })),
        ports: svc.ports.map((p) => ({
          servicePort: p.port,
          targetPort: typeof p.targetPort === 'number' ? p.targetPort : 0,
        })),
        subjectAltNames: [],
        ...(waypoint && { waypoint }),
      },
    };
  }
}

/** Go's strconv.ParseBool true values. */
const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
