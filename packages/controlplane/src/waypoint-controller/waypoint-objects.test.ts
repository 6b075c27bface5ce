import { describe, expect, it } from 'vitest';
import {
  type GatewayObject,
  gatewayClassStatus,
  isWaypointGateway,
  servicePorts,
  statusChanged,
  waypointGatewayStatus,
  waypointObjects,
} from './waypoint-objects.js';

const settings = {
  image: 'registry.example/waypoint:1',
  xdsAddress: 'istiod.istio-system.svc:15012',
  controlPlaneName: 'istiod.istio-system.svc',
  clusterId: 'Kubernetes',
  trustDomain: 'cluster.local',
  domainSuffix: 'cluster.local',
  rootCertConfigMap: 'istio-ca-root-cert',
};

const gw = (over: Partial<GatewayObject['metadata']> = {}, className = 'istio-waypoint'): GatewayObject => ({
  metadata: { name: 'wp', namespace: 'demo', uid: 'u-1', generation: 2, ...over },
  spec: { gatewayClassName: className, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
});

type Container = {
  image: string;
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }>;
  ports: Array<{ containerPort: number }>;
};
type PodSpec = {
  serviceAccountName: string;
  containers: Container[];
  volumes: Array<{
    name: string;
    projected?: { sources: Array<{ serviceAccountToken?: { audience: string } }> };
  }>;
};
type Meta = { name: string; namespace: string; labels: Record<string, string>; ownerReferences: unknown[] };

describe('waypointObjects', () => {
  it('names every object after the Gateway, owned by it as controller, labelled as istiod', () => {
    const objs = waypointObjects(
      gw({ labels: { 'istio.io/waypoint-for': 'all', 'gateway.networking.k8s.io/x': 'y' } }),
      settings,
    );
    for (const o of [objs.serviceAccount, objs.deployment, objs.service]) {
      const m = o.metadata as Meta;
      expect(m.name).toBe('wp');
      expect(m.namespace).toBe('demo');
      expect(m.ownerReferences).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'wp',
          uid: 'u-1',
          controller: true,
        },
      ]);
      expect(m.labels).toEqual({
        'istio.io/waypoint-for': 'all',
        'gateway.networking.k8s.io/gateway-name': 'wp',
        'gateway.networking.k8s.io/gateway-class-name': 'istio-waypoint',
        'gateway.istio.io/managed': 'istio.io-mesh-controller',
      });
    }
  });

  it('runs the waypoint image as the Gateway’s service account, outside ambient capture, with its settings', () => {
    const d = waypointObjects(gw(), settings).deployment as {
      spec: { selector: unknown; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
    };
    expect(d.spec.selector).toEqual({ matchLabels: { 'gateway.networking.k8s.io/gateway-name': 'wp' } });
    const t = d.spec.template;
    expect(t.metadata.labels['istio.io/dataplane-mode']).toBe('none');
    expect(t.metadata.labels['gateway.networking.k8s.io/gateway-name']).toBe('wp');
    expect(t.spec.serviceAccountName).toBe('wp');
    const c = t.spec.containers[0] as Container;
    expect(c.image).toBe(settings.image);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef.fieldPath]));
    expect(env).toMatchObject({
      WP_XDS_ADDRESS: 'istiod.istio-system.svc:15012',
      WP_GATEWAY_NAME: 'wp',
      WP_NAMESPACE: 'metadata.namespace',
      WP_INSTANCE_IP: 'status.podIP',
      WP_TOKEN_FILE: '/var/run/secrets/tokens/istio-token',
    });
    expect(c.ports.map((p) => p.containerPort)).toEqual([15008, 15020, 15021]);
    const token = t.spec.volumes.find((v) => v.name === 'istio-token');
    expect(token?.projected?.sources[0]?.serviceAccountToken?.audience).toBe('istio-ca');
  });

  it('gives the Service status-port 15021 and one port per distinct listener, as istiod', () => {
    expect(servicePorts(gw())).toEqual([
      { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' },
      { name: 'mesh', port: 15008, protocol: 'TCP', appProtocol: 'hbone' },
    ]);
    const dup: GatewayObject = {
      ...gw(),
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [
          { name: 'mesh', port: 15008, protocol: 'HBONE' },
          { name: 'again', port: 15008, protocol: 'HBONE' },
          { name: 'Mesh.Two', port: 16008, protocol: 'HBONE' },
        ],
      },
    };
    expect(servicePorts(dup).map((p) => `${p.name}:${p.port}`)).toEqual([
      'status-port:15021',
      'mesh:15008',
      'mesh-two:16008',
    ]);
  });

  it('recognises only the istio-waypoint class', () => {
    expect(isWaypointGateway(gw())).toBe(true);
    expect(isWaypointGateway(gw({}, 'istio'))).toBe(false);
    expect(isWaypointGateway({ metadata: { name: 'x', namespace: 'y', uid: 'z' } })).toBe(false);
  });
});

describe('Gateway status', () => {
  it('is Accepted and Programmed with the cluster IP as its address, at the Gateway’s generation', () => {
    const s = waypointGatewayStatus(gw(), '10.96.0.10', 'cluster.local', 'T1');
    expect(s.addresses).toEqual([{ type: 'IPAddress', value: '10.96.0.10' }]);
    expect(s.conditions?.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([
      ['Accepted', 'True', 2],
      ['Programmed', 'True', 2],
    ]);
  });

  it('is not Programmed without a cluster IP', () => {
    const s = waypointGatewayStatus(gw(), undefined, 'cluster.local', 'T1');
    expect(s.conditions?.find((c) => c.type === 'Programmed')?.status).toBe('False');
    expect(s.addresses).toEqual([]);
  });

  it('keeps transition times of unchanged conditions, and reports no change when nothing changed', () => {
    const first = waypointGatewayStatus(gw(), '10.96.0.10', 'cluster.local', 'T1');
    const withStatus = { ...gw(), status: first };
    const again = waypointGatewayStatus(withStatus, '10.96.0.10', 'cluster.local', 'T2');
    expect(again.conditions?.map((c) => c.lastTransitionTime)).toEqual(['T1', 'T1']);
    expect(statusChanged(first, again)).toBe(false);
    const bumped = waypointGatewayStatus(
      { ...withStatus, metadata: { ...withStatus.metadata, generation: 3 } },
      '10.96.0.10',
      'cluster.local',
      'T2',
    );
    expect(statusChanged(first, bumped)).toBe(true);
  });

  it('accepts the GatewayClass at its generation', () => {
    const s = gatewayClassStatus(undefined, 1, 'T1');
    expect(s.conditions).toEqual([
      {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        message: 'Handled by Istio controller',
        observedGeneration: 1,
        lastTransitionTime: 'T1',
      },
    ]);
  });
});
