/**
 * What the waypoint deployment controller writes for one `istio-waypoint` Gateway: a
 * ServiceAccount, a Deployment and a Service, named after the Gateway and owned by it, in the
 * shape of istiod's waypoint template (istio/istio
 * manifests/charts/istio-control/istio-discovery/files/waypoint.yaml, and
 * pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go for labels and Service ports).
 * Pure: the same Gateway and settings always give the same objects.
 */

export const WAYPOINT_GATEWAY_CLASS = 'istio-waypoint';
/** The controllerName of the `istio-waypoint` GatewayClass (constants.ManagedGatewayMeshController). */
export const MESH_CONTROLLER_NAME = 'istio.io/mesh-controller';
/** The same, with `/` replaced by `-`, as the value of the managed label. */
export const MESH_CONTROLLER_LABEL = 'istio.io-mesh-controller';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const GATEWAY_CLASS_NAME_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
export const GATEWAY_MANAGED_LABEL = 'gateway.istio.io/managed';
/** The field manager of every apply, istiod's PILOT_GATEWAY_API_CONTROLLER_NAME default. */
export const FIELD_MANAGER = 'istio.io/gateway-controller';

export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';

/** The parts of a Gateway the controller reads. */
export interface GatewayObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly generation?: number;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: {
    readonly gatewayClassName?: string;
    readonly listeners?: ReadonlyArray<{ name?: string; port?: number; protocol?: string }>;
  };
  readonly status?: GatewayStatus;
}

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

export interface GatewayStatus {
  readonly conditions?: readonly Condition[];
  readonly addresses?: ReadonlyArray<{ type: string; value: string }>;
}

/** Settings for the waypoint pods: image and what the waypoint needs to reach the control plane. */
export interface WaypointTemplateSettings {
  readonly image: string;
  /** `host:port` of the control plane's xDS and CA, as the pods resolve it. */
  readonly xdsAddress: string;
  /** The name the control plane's certificate is checked against. */
  readonly controlPlaneName: string;
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domainSuffix: string;
  /** ConfigMap with `root-cert.pem`, mounted at /var/run/secrets/istio (istiod's istio-ca-root-cert). */
  readonly rootCertConfigMap: string;
}

export type KubeJson = Record<string, unknown>;

export interface WaypointObjects {
  readonly serviceAccount: KubeJson;
  readonly deployment: KubeJson;
  readonly service: KubeJson;
}

export function isWaypointGateway(gw: GatewayObject): boolean {
  return gw.spec?.gatewayClassName === WAYPOINT_GATEWAY_CLASS;
}

/**
 * The Gateway's labels as istiod's infrastructure labels (with the feature that copies them on,
 * its default): every label except the reserved `gateway.networking.k8s.io/` prefix.
 */
export function infrastructureLabels(gw: GatewayObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(gw.metadata.labels ?? {})) {
    if (!k.startsWith('gateway.networking.k8s.io/')) out[k] = v;
  }
  return out;
}

function ownerReferences(gw: GatewayObject): KubeJson[] {
  return [
    {
      apiVersion: GATEWAY_API_VERSION,
      kind: 'Gateway',
      name: gw.metadata.name,
      uid: gw.metadata.uid,
      controller: true,
    },
  ];
}

/** Service ports as istiod: `status-port` 15021 first, then one per distinct listener port. */
export function servicePorts(gw: GatewayObject): KubeJson[] {
  const ports: KubeJson[] = [{ name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' }];
  const seen = new Set<number>([15021]);
  const names = new Set<string>(['status-port']);
  (gw.spec?.listeners ?? []).forEach((l, i) => {
    if (typeof l.port !== 'number' || seen.has(l.port)) return;
    seen.add(l.port);
    const proto = (l.protocol ?? 'tcp').toLowerCase();
    let name =
      (l.name ?? '')
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 63) || `${proto}-${i}`;
    if (names.has(name)) name = `${name.slice(0, 57)}-${l.port}`;
    names.add(name);
    ports.push({ name, port: l.port, protocol: 'TCP', appProtocol: proto });
  });
  return ports;
}

export function waypointObjects(gw: GatewayObject, s: WaypointTemplateSettings): WaypointObjects {
  const { name, namespace } = gw.metadata;
  const className = gw.spec?.gatewayClassName ?? WAYPOINT_GATEWAY_CLASS;
  const infra = infrastructureLabels(gw);
  const base = { ...infra, [GATEWAY_NAME_LABEL]: name, [GATEWAY_CLASS_NAME_LABEL]: className };
  const managed = { ...base, [GATEWAY_MANAGED_LABEL]: MESH_CONTROLLER_LABEL };
  const meta = (labels: Record<string, string>) => ({
    name,
    namespace,
    labels,
    ownerReferences: ownerReferences(gw),
  });
  const fieldEnv = (envName: string, fieldPath: string) => ({
    name: envName,
    valueFrom: { fieldRef: { fieldPath } },
  });
  const serviceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(managed) };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(managed),
    spec: {
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: name } },
      template: {
        metadata: {
          annotations: {
            'istio.io/rev': 'default',
            'prometheus.io/path': '/stats/prometheus',
            'prometheus.io/port': '15020',
            'prometheus.io/scrape': 'true',
          },
          labels: {
            'sidecar.istio.io/inject': 'false',
            'istio.io/dataplane-mode': 'none',
            'service.istio.io/canonical-name': name,
            'service.istio.io/canonical-revision': 'latest',
            ...managed,
          },
        },
        spec: {
          serviceAccountName: name,
          containers: [
            {
              name: 'istio-proxy',
              image: s.image,
              ports: [
                { containerPort: 15008, name: 'mesh', protocol: 'TCP' },
                { containerPort: 15020, name: 'metrics', protocol: 'TCP' },
                { containerPort: 15021, name: 'status-port', protocol: 'TCP' },
              ],
              env: [
                { name: 'WP_XDS_ADDRESS', value: s.xdsAddress },
                { name: 'WP_CONTROL_PLANE_NAME', value: s.controlPlaneName },
                { name: 'WP_ROOT_CERT', value: '/var/run/secrets/istio/root-cert.pem' },
                { name: 'WP_TOKEN_FILE', value: '/var/run/secrets/tokens/istio-token' },
                { name: 'WP_GATEWAY_NAME', value: name },
                fieldEnv('WP_NAMESPACE', 'metadata.namespace'),
                fieldEnv('WP_SERVICE_ACCOUNT', 'spec.serviceAccountName'),
                fieldEnv('WP_POD_NAME', 'metadata.name'),
                fieldEnv('WP_INSTANCE_IP', 'status.podIP'),
                { name: 'WP_CLUSTER_ID', value: s.clusterId },
                { name: 'WP_TRUST_DOMAIN', value: s.trustDomain },
              ],
              readinessProbe: {
                httpGet: { path: '/healthz/ready', port: 15021, scheme: 'HTTP' },
                periodSeconds: 15,
                failureThreshold: 4,
                timeoutSeconds: 1,
              },
              securityContext: {
                privileged: false,
                runAsUser: 1337,
                runAsGroup: 1337,
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { mountPath: '/var/run/secrets/istio', name: 'istiod-ca-cert' },
                { mountPath: '/var/run/secrets/tokens', name: 'istio-token' },
              ],
            },
          ],
          volumes: [
            {
              name: 'istio-token',
              projected: {
                sources: [
                  {
                    serviceAccountToken: {
                      audience: 'istio-ca',
                      expirationSeconds: 43200,
                      path: 'istio-token',
                    },
                  },
                ],
              },
            },
            { name: 'istiod-ca-cert', configMap: { name: s.rootCertConfigMap } },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(managed),
    spec: {
      type: 'ClusterIP',
      selector: { [GATEWAY_NAME_LABEL]: name },
      ports: servicePorts(gw),
    },
  };
  return { serviceAccount, deployment, service };
}

/** The `istio-waypoint` GatewayClass istiod creates when it is missing. */
export function waypointGatewayClass(): KubeJson {
  return {
    apiVersion: GATEWAY_API_VERSION,
    kind: 'GatewayClass',
    metadata: { name: WAYPOINT_GATEWAY_CLASS },
    spec: {
      controllerName: MESH_CONTROLLER_NAME,
      description: 'The default Istio waypoint GatewayClass',
    },
  };
}

/**
 * The conditions after setting `next`: a condition whose status is unchanged keeps its
 * lastTransitionTime (as Kubernetes' meta.SetStatusCondition), others are replaced or added.
 */
export function mergeConditions(
  existing: readonly Condition[] | undefined,
  next: readonly Condition[],
): Condition[] {
  const out = [...(existing ?? [])];
  for (const c of next) {
    const i = out.findIndex((o) => o.type === c.type);
    if (i < 0) out.push(c);
    else {
      const old = out[i] as Condition;
      out[i] = old.status === c.status ? { ...c, lastTransitionTime: old.lastTransitionTime } : c;
    }
  }
  return out;
}

/** Whether two condition lists say the same thing (transition times aside). */
export function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[]): boolean {
  const key = (cs: readonly Condition[]) =>
    JSON.stringify(
      [...cs]
        .map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration])
        .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
  return key(a ?? []) === key(b);
}

/** The GatewayClass status istiod writes for a class it handles (gatewaycommon/gatewayclass.go). */
export function gatewayClassStatus(
  existing: GatewayStatus | undefined,
  generation: number,
  now: string,
): GatewayStatus {
  return {
    conditions: mergeConditions(existing?.conditions, [
      {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        message: 'Handled by Istio controller',
        observedGeneration: generation,
        lastTransitionTime: now,
      },
    ]),
  };
}

/**
 * A waypoint Gateway's status: Accepted always (it is ours), Programmed once its Service has a
 * cluster IP, which is then its address.
 */
export function waypointGatewayStatus(
  gw: GatewayObject,
  clusterIP: string | undefined,
  domainSuffix: string,
  now: string,
): GatewayStatus {
  const gen = gw.metadata.generation ?? 0;
  const host = `${gw.metadata.name}.${gw.metadata.namespace}.svc.${domainSuffix}`;
  const hasIp = clusterIP !== undefined && clusterIP !== '' && clusterIP !== 'None';
  const conditions = mergeConditions(gw.status?.conditions, [
    {
      type: 'Accepted',
      status: 'True',
      reason: 'Accepted',
      message: 'Resource accepted',
      observedGeneration: gen,
      lastTransitionTime: now,
    },
    hasIp
      ? {
          type: 'Programmed',
          status: 'True',
          reason: 'Programmed',
          message: `Resource programmed, assigned to service(s) ${host}:15008`,
          observedGeneration: gen,
          lastTransitionTime: now,
        }
      : {
          type: 'Programmed',
          status: 'False',
          reason: 'AddressNotAssigned',
          message: `Service ${host} has no cluster IP yet`,
          observedGeneration: gen,
          lastTransitionTime: now,
        },
  ]);
  return { conditions, addresses: hasIp ? [{ type: 'IPAddress', value: clusterIP }] : [] };
}

/** Whether writing `next` would change the Gateway's status. */
export function statusChanged(current: GatewayStatus | undefined, next: GatewayStatus): boolean {
  if (!sameConditions(current?.conditions, next.conditions ?? [])) return true;
  return JSON.stringify(current?.addresses ?? []) !== JSON.stringify(next.addresses ?? []);
}
