import type { Problem } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MANIFEST_LIMITS,
  decodeManifest,
  type KubeKind,
  type KubeObject,
  objectKey,
} from './kube-objects.js';

type Of<K extends KubeKind> = Extract<KubeObject, { kind: K }>;

/** Decodes a manifest that must be valid, narrowed to the expected kind. */
function decodeAs<K extends KubeKind>(kind: K, doc: unknown): Of<K> {
  const r = decodeManifest(doc);
  if (r.ok !== true) throw new Error(`expected a valid ${kind}: ${JSON.stringify(r)}`);
  expect(r.value.kind).toBe(kind);
  return r.value as Of<K>;
}

/** Decodes a manifest that must be refused, returning its ref and every problem. */
function refused(doc: unknown): { ref: string; problems: readonly Problem[] } {
  const r = decodeManifest(doc);
  if (r.ok !== false) throw new Error(`expected problems: ${JSON.stringify(r)}`);
  return { ref: r.ref, problems: r.problems };
}

const notAPort = (v: unknown) => `${JSON.stringify(v)} is not a port from 1 to 65535`;
const notAnIp = (v: string) => `${JSON.stringify(v)} is not an IP address`;
const notACidr = (v: string) => `${JSON.stringify(v)} is not an IP or CIDR`;

const meta = (name: string, namespace = 'demo') => ({ name, namespace });
const pod = (extra: Record<string, unknown>) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: meta('web'),
  ...extra,
});
const service = (spec: Record<string, unknown>) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: meta('web'),
  spec,
});
const authz = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: meta('policy'),
  spec,
});
const peerAuth = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: meta('mtls'),
  spec,
});

describe('decodeManifest: valid objects', () => {
  it('decodes a Namespace as cluster-scoped, keeping labels and annotations', () => {
    const ns = decodeAs('Namespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'demo',
        namespace: 'ignored',
        labels: { 'istio.io/dataplane-mode': 'ambient' },
        annotations: { note: 'x' },
      },
    });
    expect(ns.metadata).toEqual({
      name: 'demo',
      namespace: '',
      labels: { 'istio.io/dataplane-mode': 'ambient' },
      annotations: { note: 'x' },
    });
    expect(objectKey(ns)).toBe('Namespace//demo');
  });

  it('returns frozen objects', () => {
    const ns = decodeAs('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
    expect(Object.isFrozen(ns)).toBe(true);
  });

  it('turns numeric and boolean label values into strings', () => {
    const ns = decodeAs('Namespace', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'demo', labels: { replicas: 3, enabled: true } },
    });
    expect(ns.metadata.labels).toEqual({ replicas: '3', enabled: 'true' });
  });

  it('decodes a Pod with node, service account, uid, podIP and podIPs, and named container ports', () => {
    const p = decodeAs(
      'Pod',
      pod({
        metadata: { ...meta('web'), uid: 'abc-123', labels: { app: 'web' } },
        spec: {
          nodeName: 'node-a',
          serviceAccountName: 'web-sa',
          containers: [
            { name: 'app', ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9090 }] },
            { name: 'sidecar', ports: [{ name: 'metrics', containerPort: 15020 }] },
          ],
        },
        status: {
          phase: 'Running',
          podIP: '10.0.0.5',
          podIPs: [{ ip: '10.0.0.5' }, { ip: 'fd00::5' }],
        },
      }),
    );
    expect(p).toEqual({
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'demo', labels: { app: 'web' }, annotations: {}, uid: 'abc-123' },
      nodeName: 'node-a',
      serviceAccountName: 'web-sa',
      podIps: ['10.0.0.5', 'fd00::5'],
      namedPorts: { http: 8080, metrics: 15020 },
      running: true,
    });
    expect(objectKey(p)).toBe('Pod/demo/web');
  });

  it('defaults a Pod to namespace default, service account default, running, and no IPs', () => {
    const p = decodeAs('Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bare' } });
    expect(p.metadata.namespace).toBe('default');
    expect(p.metadata.uid).toBeUndefined();
    expect(p.serviceAccountName).toBe('default');
    expect(p.nodeName).toBe('');
    expect(p.podIps).toEqual([]);
    expect(p.namedPorts).toEqual({});
    expect(p.running).toBe(true);
  });

  it('treats an empty podIP as no address yet', () => {
    const p = decodeAs('Pod', pod({ status: { phase: 'Pending', podIP: '' } }));
    expect(p.podIps).toEqual([]);
  });

  it.each([
    ['Running', true],
    ['Pending', true],
    ['Succeeded', false],
    ['Failed', false],
  ])('marks a pod in phase %s as running=%s', (phase, running) => {
    expect(decodeAs('Pod', pod({ status: { phase, podIP: '10.0.0.5' } })).running).toBe(running);
  });

  it('decodes generateName and ownerReferences, a missing controller being false', () => {
    const p = decodeAs(
      'Pod',
      pod({
        metadata: {
          ...meta('web-7d4-x2'),
          generateName: 'web-7d4-',
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4', uid: 'u1', controller: true },
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'u2' },
          ],
        },
      }),
    );
    expect(p.generateName).toBe('web-7d4-');
    expect(p.ownerReferences).toEqual([
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4', controller: true },
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', controller: false },
    ]);
  });

  it('refuses malformed ownerReferences with the field path of each problem', () => {
    const r = refused(
      pod({
        metadata: {
          ...meta('web'),
          generateName: 7,
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', controller: 'yes' }, 'x'],
        },
      }),
    );
    expect(r.problems).toEqual(
      expect.arrayContaining([
        { path: 'metadata.generateName', message: 'must be a string' },
        { path: 'metadata.ownerReferences[0].name', message: 'is required' },
        { path: 'metadata.ownerReferences[0].controller', message: 'must be true or false' },
        { path: 'metadata.ownerReferences[1]', message: 'must be a map' },
      ]),
    );
    expect(refused(pod({ metadata: { ...meta('web'), ownerReferences: {} } })).problems).toContainEqual({
      path: 'metadata.ownerReferences',
      message: 'must be a list',
    });
  });

  it('marks a hostNetwork pod as not running in the mesh', () => {
    const p = decodeAs('Pod', pod({ spec: { hostNetwork: true }, status: { podIP: '192.168.1.10' } }));
    expect(p.running).toBe(false);
    expect(p.podIps).toEqual(['192.168.1.10']);
  });

  it('decodes a Service with dual-stack VIPs, selector, and numeric, numeric-string and named target ports', () => {
    const s = decodeAs(
      'Service',
      service({
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10', 'fd00:96::10'],
        selector: { app: 'web' },
        ports: [
          { name: 'http', port: 80, targetPort: 'http', appProtocol: 'http' },
          { name: 'grpc', port: 9000, targetPort: '9001' },
          { port: 443, targetPort: 8443 },
          { name: 'plain', port: 8080 },
        ],
      }),
    );
    expect(s).toEqual({
      kind: 'Service',
      metadata: { name: 'web', namespace: 'demo', labels: {}, annotations: {} },
      clusterIps: ['10.96.0.10', 'fd00:96::10'],
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http', appProtocol: 'http' },
        { name: 'grpc', port: 9000, targetPort: 9001 },
        { name: '', port: 443, targetPort: 8443 },
        { name: 'plain', port: 8080, targetPort: 8080 },
      ],
    });
    expect(s.ports[1]).not.toHaveProperty('appProtocol');
  });

  it('gives a headless Service (clusterIP None) no VIP', () => {
    const s = decodeAs(
      'Service',
      service({ clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 80 }] }),
    );
    expect(s.clusterIps).toEqual([]);
  });

  it('leaves the selector undefined on a Service without one', () => {
    const s = decodeAs('Service', service({ ports: [{ port: 80 }] }));
    expect(s.selector).toBeUndefined();
    expect(s).not.toHaveProperty('selector');
  });

  it('decodes a ServiceAccount', () => {
    const sa = decodeAs('ServiceAccount', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'web-sa', namespace: 'demo' },
    });
    expect(sa).toEqual({
      kind: 'ServiceAccount',
      metadata: { name: 'web-sa', namespace: 'demo', labels: {}, annotations: {} },
    });
    expect(objectKey(sa)).toBe('ServiceAccount/demo/web-sa');
  });

  it('decodes an AuthorizationPolicy with selector, L4 fields, when conditions and recorded L7 fields', () => {
    const p = decodeAs(
      'AuthorizationPolicy',
      authz({
        selector: { matchLabels: { app: 'web' } },
        action: 'DENY',
        rules: [
          {
            from: [
              {
                source: {
                  principals: ['cluster.local/ns/a/sa/b'],
                  notPrincipals: ['*'],
                  namespaces: ['a'],
                  notNamespaces: ['b'],
                  ipBlocks: ['10.0.0.0/8', 'fd00::1'],
                  notIpBlocks: ['10.1.0.0/16'],
                  requestPrincipals: ['issuer/subject'],
                  remoteIpBlocks: ['1.2.3.4'],
                },
              },
            ],
            to: [
              {
                operation: {
                  ports: ['8080'],
                  notPorts: ['9090'],
                  hosts: ['web.demo'],
                  methods: ['GET'],
                  notPaths: ['/admin'],
                },
              },
            ],
            when: [
              { key: 'source.namespace', values: ['a'] },
              { key: 'request.headers[x-user]', notValues: ['bob'] },
            ],
          },
        ],
      }),
    );
    expect(p.selector).toEqual({ app: 'web' });
    expect(p.action).toBe('DENY');
    expect(p.targetRefs).toEqual([]);
    expect(p.rules).toHaveLength(1);
    const rule = p.rules![0]!;
    expect(rule.from).toEqual([
      {
        principals: ['cluster.local/ns/a/sa/b'],
        notPrincipals: ['*'],
        namespaces: ['a'],
        notNamespaces: ['b'],
        ipBlocks: ['10.0.0.0/8', 'fd00::1'],
        notIpBlocks: ['10.1.0.0/16'],
        l7Fields: ['requestPrincipals', 'remoteIpBlocks'],
      },
    ]);
    expect(rule.to).toEqual([
      {
        ports: ['8080'],
        notPorts: ['9090'],
        hosts: ['web.demo'],
        methods: ['GET'],
        notPaths: ['/admin'],
        l7Fields: ['hosts', 'methods', 'notPaths'],
      },
    ]);
    expect(rule.when).toEqual([
      { key: 'source.namespace', values: ['a'] },
      { key: 'request.headers[x-user]', notValues: ['bob'] },
    ]);
  });

  it('records no L7 fields for a purely L4 source and operation', () => {
    const p = decodeAs(
      'AuthorizationPolicy',
      authz({
        rules: [{ from: [{ source: { namespaces: ['a'] } }], to: [{ operation: { ports: ['80'] } }] }],
      }),
    );
    expect(p.rules![0]!.from![0]!.l7Fields).toEqual([]);
    expect(p.rules![0]!.to![0]!.l7Fields).toEqual([]);
  });

  it('defaults the action to ALLOW and tells an absent rules key from an empty rule', () => {
    const none = decodeAs('AuthorizationPolicy', authz({}));
    expect(none.action).toBe('ALLOW');
    expect(none.rules).toBeUndefined();
    expect(none.selector).toBeUndefined();

    const empty = decodeAs('AuthorizationPolicy', authz({ rules: [{}] }));
    expect(empty.rules).toEqual([{}]);

    const noSpec = decodeAs('AuthorizationPolicy', { ...authz({}), spec: undefined });
    expect(noSpec.rules).toBeUndefined();
    expect(noSpec.action).toBe('ALLOW');
  });

  it.each(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const)('accepts action %s', (action) => {
    expect(decodeAs('AuthorizationPolicy', authz({ action })).action).toBe(action);
  });

  it('collects targetRef and targetRefs, the group defaulting to empty', () => {
    const p = decodeAs(
      'AuthorizationPolicy',
      authz({
        targetRef: { kind: 'Service', name: 'web' },
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
      }),
    );
    expect(p.targetRefs).toEqual([
      { group: '', kind: 'Service', name: 'web' },
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' },
    ]);
  });

  it('decodes a PeerAuthentication with selector, mode and port-level modes', () => {
    const pa = decodeAs(
      'PeerAuthentication',
      peerAuth({
        selector: { matchLabels: { app: 'web' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '8080': { mode: 'PERMISSIVE' }, 9090: { mode: 'DISABLE' }, 7070: {} },
      }),
    );
    expect(pa.selector).toEqual({ app: 'web' });
    expect(pa.mode).toBe('STRICT');
    expect(pa.portLevel).toEqual({ 7070: 'UNSET', 8080: 'PERMISSIVE', 9090: 'DISABLE' });
  });

  it('gives a PeerAuthentication without mtls mode UNSET and no selector', () => {
    const pa = decodeAs('PeerAuthentication', peerAuth({}));
    expect(pa.mode).toBe('UNSET');
    expect(pa.portLevel).toEqual({});
    expect(pa.selector).toBeUndefined();
  });

  it('decodes a Gateway with its class and labels', () => {
    const gw = decodeAs('Gateway', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { ...meta('waypoint'), labels: { 'istio.io/waypoint-for': 'all' } },
      spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008 }] },
    });
    expect(gw).toEqual({
      kind: 'Gateway',
      metadata: {
        name: 'waypoint',
        namespace: 'demo',
        labels: { 'istio.io/waypoint-for': 'all' },
        annotations: {},
      },
      gatewayClassName: 'istio-waypoint',
      allowedRoutes: { from: 'Same' },
    });
  });

  it("reads which namespaces may attach from the Gateway's HBONE listener on 15008 only", () => {
    const gw = (listeners: unknown[]) =>
      decodeAs('Gateway', {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: meta('waypoint'),
        spec: { gatewayClassName: 'istio-waypoint', listeners },
      }).allowedRoutes;
    const all = { allowedRoutes: { namespaces: { from: 'All' } } };
    expect(gw([{ name: 'mesh', port: 15008, protocol: 'HBONE', ...all }])).toEqual({ from: 'All' });
    expect(gw([{ name: 'http', port: 80, protocol: 'HTTP', ...all }])).toEqual({ from: 'Same' });
    expect(
      gw([
        {
          name: 'mesh',
          port: 15008,
          protocol: 'HBONE',
          allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'a' } } } },
        },
      ]),
    ).toEqual({ from: 'Selector', selector: { team: 'a' } });
  });

  it('refuses a Gateway whose HBONE listener names an unknown allowedRoutes source, with the field path', () => {
    const r = refused({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: meta('waypoint'),
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [
          { name: 'x', port: 80, protocol: 'HTTP' },
          {
            name: 'mesh',
            port: 15008,
            protocol: 'HBONE',
            allowedRoutes: { namespaces: { from: 'Anywhere' } },
          },
        ],
      },
    });
    expect(r.problems).toEqual([
      {
        path: 'spec.listeners[1].allowedRoutes.namespaces.from',
        message: 'must be one of All, Same, Selector',
      },
    ]);
  });

  it.each([
    ['AuthorizationPolicy', 'security.istio.io/v1beta1', {}],
    ['PeerAuthentication', 'security.istio.io/v1beta1', {}],
    ['Gateway', 'gateway.networking.k8s.io/v1beta1', { gatewayClassName: 'istio-waypoint' }],
  ])('accepts %s under %s', (kind, apiVersion, spec) => {
    expect(decodeManifest({ apiVersion, kind, metadata: meta('x'), spec }).ok).toBe(true);
  });
});

describe('decodeManifest: invalid objects report every problem with its field path', () => {
  it('reports bad pod IPs and container ports together, with the ref of the pod', () => {
    const r = refused(
      pod({
        metadata: meta('broken'),
        spec: {
          containers: [
            {
              ports: [
                { name: 'http', containerPort: 8080 },
                { name: 'bad', containerPort: 0 },
              ],
            },
          ],
        },
        status: { podIP: 'nope', podIPs: [{ ip: '10.0.0.1' }, { ip: '300.1.1.1' }] },
      }),
    );
    expect(r.ref).toBe('Pod demo/broken');
    expect(r.problems).toEqual([
      { path: 'status.podIP', message: notAnIp('nope') },
      { path: 'status.podIPs[1].ip', message: notAnIp('300.1.1.1') },
      { path: 'spec.containers[0].ports[1].containerPort', message: notAPort(0) },
    ]);
  });

  it('reports bad service VIPs, ports and target ports', () => {
    const r = refused(
      service({
        clusterIP: '10.96.0.256',
        clusterIPs: ['fd00::1', 'x'],
        ports: [
          { port: 70000 },
          { port: 80, targetPort: 0 },
          { port: 81, targetPort: '99999' },
          { port: 82.5 },
          'http',
        ],
      }),
    );
    expect(r.problems).toEqual([
      { path: 'spec.clusterIP', message: notAnIp('10.96.0.256') },
      { path: 'spec.clusterIPs[1]', message: notAnIp('x') },
      { path: 'spec.ports[0].port', message: notAPort(70000) },
      { path: 'spec.ports[1].targetPort', message: notAPort(0) },
      { path: 'spec.ports[2].targetPort', message: notAPort(99999) },
      { path: 'spec.ports[3].port', message: notAPort(82.5) },
      { path: 'spec.ports[4]', message: 'must be a map' },
    ]);
  });

  it('requires a Service spec', () => {
    expect(refused({ apiVersion: 'v1', kind: 'Service', metadata: meta('web') }).problems).toEqual([
      { path: 'spec', message: 'is required' },
    ]);
  });

  it('reports unknown fields in a source and an operation, bad CIDRs and bad ports', () => {
    const r = refused(
      authz({
        rules: [
          {
            from: [
              { source: { principal: ['typo'], ipBlocks: ['10.0.0.0/33', '1.2.3.4', 'fd00::/129', 'nope'] } },
            ],
            to: [{ operation: { port: ['80'], ports: ['0', '80', 'http', '65536'] } }],
          },
        ],
      }),
    );
    expect(r.ref).toBe('AuthorizationPolicy demo/policy');
    expect(r.problems).toEqual([
      { path: 'spec.rules[0].from[0].source.principal', message: 'unknown field' },
      { path: 'spec.rules[0].from[0].source.ipBlocks[0]', message: notACidr('10.0.0.0/33') },
      { path: 'spec.rules[0].from[0].source.ipBlocks[2]', message: notACidr('fd00::/129') },
      { path: 'spec.rules[0].from[0].source.ipBlocks[3]', message: notACidr('nope') },
      { path: 'spec.rules[0].to[0].operation.port', message: 'unknown field' },
      { path: 'spec.rules[0].to[0].operation.ports[0]', message: notAPort('0') },
      { path: 'spec.rules[0].to[0].operation.ports[2]', message: notAPort('http') },
      { path: 'spec.rules[0].to[0].operation.ports[3]', message: notAPort('65536') },
    ]);
  });

  it('reports non-string list items, a missing condition key and a bad action', () => {
    const r = refused(
      authz({
        action: 'REJECT',
        rules: [
          { from: [{ source: { namespaces: ['a', 7] } }], when: [{ values: ['x'] }] },
          { to: 'everything' },
        ],
      }),
    );
    expect(r.problems).toEqual([
      { path: 'spec.action', message: '"REJECT" must be ALLOW, DENY, AUDIT or CUSTOM' },
      { path: 'spec.rules[0].from[0].source.namespaces[1]', message: 'must be a string' },
      { path: 'spec.rules[0].when[0].key', message: 'is required' },
      { path: 'spec.rules[1].to', message: 'must be a list' },
    ]);
  });

  it('refuses a selector together with targetRefs', () => {
    const r = refused(
      authz({
        selector: { matchLabels: { app: 'web' } },
        targetRefs: [{ kind: 'Service', name: 'web' }],
      }),
    );
    expect(r.problems).toEqual([
      { path: 'spec.selector', message: 'cannot be set together with targetRefs' },
    ]);
  });

  it('requires kind and name in a targetRef', () => {
    expect(refused(authz({ targetRefs: [{ group: 'g' }] })).problems).toEqual([
      { path: 'spec.targetRefs[0].kind', message: 'is required' },
      { path: 'spec.targetRefs[0].name', message: 'is required' },
    ]);
  });

  it('reports an invalid mTLS mode and bad port-level entries', () => {
    const r = refused(
      peerAuth({
        mtls: { mode: 'STRICTER' },
        portLevelMtls: { '0': { mode: 'STRICT' }, '8080': { mode: 'OFF' } },
      }),
    );
    const modes = 'must be one of UNSET, STRICT, PERMISSIVE, DISABLE';
    expect(r.ref).toBe('PeerAuthentication demo/mtls');
    expect(r.problems).toEqual([
      { path: 'spec.portLevelMtls.0', message: notAPort(0) },
      { path: 'spec.portLevelMtls.8080.mode', message: `"OFF" ${modes}` },
      { path: 'spec.mtls.mode', message: `"STRICTER" ${modes}` },
    ]);
  });

  it('requires a Gateway class', () => {
    const r = refused({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: meta('waypoint'),
      spec: {},
    });
    expect(r.problems).toEqual([{ path: 'spec.gatewayClassName', message: 'is required' }]);
  });

  it.each([
    ['Pod', 'apps/v1', '"apps/v1" must be one of v1'],
    [
      'AuthorizationPolicy',
      'security.istio.io/v2',
      '"security.istio.io/v2" must be one of security.istio.io/v1, security.istio.io/v1beta1',
    ],
    [
      'Gateway',
      'networking.istio.io/v1',
      '"networking.istio.io/v1" must be one of gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1',
    ],
  ])('refuses %s under apiVersion %s', (kind, apiVersion, message) => {
    const r = refused({ apiVersion, kind, metadata: meta('x'), spec: { gatewayClassName: 'c' } });
    expect(r.problems).toEqual([{ path: 'apiVersion', message }]);
  });

  it('refuses a known kind without apiVersion', () => {
    const r = refused({ kind: 'Namespace', metadata: { name: 'demo' } });
    expect(r.problems.map((p) => p.path)).toEqual(['apiVersion']);
  });

  it('requires metadata.name, and metadata itself', () => {
    const noName = refused({ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'demo' } });
    expect(noName.ref).toBe('Pod demo/(no name)');
    expect(noName.problems).toEqual([{ path: 'metadata.name', message: 'is required' }]);

    const noMeta = refused({ apiVersion: 'v1', kind: 'ServiceAccount' });
    expect(noMeta.problems).toEqual([
      { path: 'metadata', message: 'is required' },
      { path: 'metadata.name', message: 'is required' },
    ]);
  });

  it('refuses names and namespaces that are not DNS labels, and label values that are not scalars', () => {
    const r = refused({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'Bad_Name', namespace: '-demo', labels: { app: { nested: true } } },
    });
    expect(r.problems).toEqual([
      { path: 'metadata.name', message: '"Bad_Name" is not a valid name' },
      { path: 'metadata.namespace', message: '"-demo" is not a valid namespace' },
      { path: 'metadata.labels.app', message: 'must be a string' },
    ]);
  });

  it('reports problems from several parts of a manifest at once', () => {
    const r = refused({
      apiVersion: 'v2',
      kind: 'Pod',
      metadata: { namespace: 'demo' },
      status: { podIP: 'x' },
    });
    expect(r.problems).toEqual([
      { path: 'apiVersion', message: '"v2" must be one of v1' },
      { path: 'metadata.name', message: 'is required' },
      { path: 'status.podIP', message: notAnIp('x') },
    ]);
  });

  it.each([
    ['a string', 'Pod'],
    ['a list', []],
  ])('refuses %s where a manifest map is expected', (_what, doc) => {
    expect(refused(doc)).toEqual({ ref: '(not a map)', problems: [{ path: '', message: 'must be a map' }] });
  });

  it('refuses an empty document', () => {
    expect(refused(null)).toEqual({ ref: '(not a map)', problems: [{ path: '', message: 'is required' }] });
  });

  it('requires a kind', () => {
    expect(refused({ apiVersion: 'v1', metadata: meta('web') })).toEqual({
      ref: '(no kind) demo/web',
      problems: [{ path: 'kind', message: 'is required' }],
    });
  });
});

describe('decodeManifest: authorization rules and conditions', () => {
  it('refuses unknown rule keys and unsupported condition keys with their paths', () => {
    const r = refused(
      authz({
        rules: [
          {
            form: [{ source: { principals: ['a'] } }],
            when: [{ key: 'source.color', values: ['blue'] }, { key: 'request.headers[x-id]' }],
          },
        ],
      }),
    );
    expect(r.ref).toBe('AuthorizationPolicy demo/policy');
    expect(r.problems).toEqual([
      { path: 'spec.rules[0].form', message: 'unknown field' },
      { path: 'spec.rules[0].when[0].key', message: '"source.color" is not a supported condition key' },
      { path: 'spec.rules[0].when[1]', message: 'must have values or notValues' },
    ]);
  });

  it('decodes source.serviceAccounts and notServiceAccounts, a bare name in the policy namespace', () => {
    const p = decodeAs(
      'AuthorizationPolicy',
      authz({
        rules: [
          {
            from: [
              { source: { serviceAccounts: ['sleep', 'other/curl', 'demo/a.b'] } },
              { source: { notServiceAccounts: ['istio-system/ztunnel'], ipBlocks: ['10.0.0.0/8'] } },
            ],
          },
        ],
      }),
    );
    expect(p.rules![0]!.from).toEqual([
      {
        serviceAccounts: [
          { namespace: 'demo', serviceAccount: 'sleep' },
          { namespace: 'other', serviceAccount: 'curl' },
          { namespace: 'demo', serviceAccount: 'a.b' },
        ],
        l7Fields: [],
      },
      {
        notServiceAccounts: [{ namespace: 'istio-system', serviceAccount: 'ztunnel' }],
        ipBlocks: ['10.0.0.0/8'],
        l7Fields: [],
      },
    ]);
  });

  it('refuses a malformed service account with its field path, and service accounts with namespaces or principals', () => {
    const bad = (v: string) =>
      `${JSON.stringify(v)} is not a service account: use <namespace>/<name> or <name> (Kubernetes names, no wildcards)`;
    const r = refused(
      authz({
        rules: [
          {
            from: [
              {
                source: {
                  serviceAccounts: ['ok', '', 'sleep*', '*', 'a/b/c', 'Upper', '/sa', 'ns/', 'a.b/sa', 7],
                },
              },
              { source: { notServiceAccounts: ['x'], principals: ['cluster.local/ns/a/sa/b'] } },
              { source: { serviceAccounts: ['x'], notNamespaces: ['a'] } },
            ],
          },
        ],
      }),
    );
    const sp = 'spec.rules[0].from[0].source.serviceAccounts';
    expect(r.problems).toEqual([
      { path: `${sp}[9]`, message: 'must be a string' },
      { path: `${sp}[1]`, message: bad('') },
      { path: `${sp}[2]`, message: bad('sleep*') },
      { path: `${sp}[3]`, message: bad('*') },
      { path: `${sp}[4]`, message: bad('a/b/c') },
      { path: `${sp}[5]`, message: bad('Upper') },
      { path: `${sp}[6]`, message: bad('/sa') },
      { path: `${sp}[7]`, message: bad('ns/') },
      { path: `${sp}[8]`, message: bad('a.b/sa') },
      {
        path: 'spec.rules[0].from[1].source',
        message: 'cannot set serviceAccounts or notServiceAccounts with namespaces or principals',
      },
      {
        path: 'spec.rules[0].from[2].source',
        message: 'cannot set serviceAccounts or notServiceAccounts with namespaces or principals',
      },
    ]);
  });

  it('accepts the source.serviceAccount condition and refuses a malformed value with its path', () => {
    const r = refused(
      authz({
        rules: [{ when: [{ key: 'source.serviceAccount', values: ['sleep', 'a/b'], notValues: ['x/*'] }] }],
      }),
    );
    expect(r.problems).toEqual([
      {
        path: 'spec.rules[0].when[0].notValues[0]',
        message:
          '"x/*" is not a service account: use <namespace>/<name> or <name> (Kubernetes names, no wildcards)',
      },
    ]);
    const ok = decodeAs(
      'AuthorizationPolicy',
      authz({ rules: [{ when: [{ key: 'source.serviceAccount', values: ['sleep', 'a/b'] }] }] }),
    );
    expect(ok.rules![0]!.when).toEqual([{ key: 'source.serviceAccount', values: ['sleep', 'a/b'] }]);
  });

  it('counts service accounts towards the policy value limit', () => {
    const r = decodeManifest(
      authz({ rules: [{ from: [{ source: { serviceAccounts: ['a', 'b', 'c'] } }] }] }),
      { ...DEFAULT_MANIFEST_LIMITS, maxPolicyValues: 2 },
    );
    expect(r.ok).toBe(false);
    expect(r.ok === false && r.problems.map((p) => p.path)).toEqual([
      'spec.rules[0].from[0].source.serviceAccounts',
    ]);
  });

  it('checks IP and port condition values', () => {
    const r = refused(
      authz({
        rules: [
          {
            when: [
              { key: 'source.ip', values: ['10.0.0.0/8', 'ten'] },
              { key: 'destination.port', notValues: ['80', '0', 'http'] },
            ],
          },
        ],
      }),
    );
    expect(r.problems).toEqual([
      { path: 'spec.rules[0].when[0].values[1]', message: notACidr('ten') },
      { path: 'spec.rules[0].when[1].notValues[1]', message: '"0" is not a port from 1 to 65535' },
      { path: 'spec.rules[0].when[1].notValues[2]', message: '"http" is not a port from 1 to 65535' },
    ]);
  });

  it('accepts header, claim and known keys', () => {
    const p = decodeAs(
      'AuthorizationPolicy',
      authz({
        rules: [
          {
            when: [
              { key: 'request.headers[x-user]', values: ['alice'] },
              { key: 'request.auth.claims[iss]', values: ['issuer'] },
              { key: 'destination.ip', values: ['fd00::/64'] },
              { key: 'destination.port', values: ['8080'] },
            ],
          },
        ],
      }),
    );
    expect(p.kind).toBe('AuthorizationPolicy');
  });
});

describe('decodeManifest: unknown kinds', () => {
  it.each(['Deployment', 'ConfigMap', 'ServiceEntry'])('ignores %s without validating it', (kind) => {
    expect(
      decodeManifest({ apiVersion: 'whatever/v9', kind, metadata: { name: 'Not Valid', namespace: 'demo' } }),
    ).toEqual({ ok: 'ignored', ref: `${kind} demo/Not Valid` });
  });

  // Kind names that are also properties every object inherits must not be mistaken for known kinds.
  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])('ignores kind %s', (kind) => {
    expect(decodeManifest({ apiVersion: 'v1', kind, metadata: { name: 'x' } })).toEqual({
      ok: 'ignored',
      ref: `${kind} x`,
    });
  });
});

const httpRoute = (spec: Record<string, unknown>, apiVersion = 'gateway.networking.k8s.io/v1') => ({
  apiVersion,
  kind: 'HTTPRoute',
  metadata: meta('route'),
  spec,
});
const virtualService = (spec: Record<string, unknown>, apiVersion = 'networking.istio.io/v1') => ({
  apiVersion,
  kind: 'VirtualService',
  metadata: meta('vs'),
  spec,
});
const destinationRule = (spec: Record<string, unknown>, apiVersion = 'networking.istio.io/v1') => ({
  apiVersion,
  kind: 'DestinationRule',
  metadata: meta('dr'),
  spec,
});

describe('decodeManifest: HTTPRoute', () => {
  it('decodes parentRefs to a Service, matches, weighted backends, every filter and timeouts', () => {
    const r = decodeAs(
      'HTTPRoute',
      httpRoute({
        parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
        rules: [
          {
            name: 'canary',
            matches: [
              {
                path: { type: 'Exact', value: '/login' },
                headers: [
                  { name: 'x-user', value: 'alice' },
                  { type: 'RegularExpression', name: 'x-id', value: '^[0-9]+$' },
                ],
                queryParams: [{ name: 'debug', value: '1' }],
                method: 'POST',
              },
              { path: { type: 'RegularExpression', value: '^/v[0-9]+/' } },
            ],
            filters: [
              {
                type: 'RequestHeaderModifier',
                requestHeaderModifier: {
                  set: [{ name: 'x-a', value: '1' }],
                  add: [{ name: 'x-b', value: '2' }],
                  remove: ['x-c'],
                },
              },
              { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['server'] } },
              {
                type: 'URLRewrite',
                urlRewrite: {
                  hostname: 'echo.internal',
                  path: { type: 'ReplaceFullPath', replaceFullPath: '/auth' },
                },
              },
              {
                type: 'RequestMirror',
                requestMirror: { backendRef: { name: 'shadow', port: 80 }, percent: 25 },
              },
              {
                type: 'RequestMirror',
                requestMirror: {
                  backendRef: { name: 'shadow', port: 81 },
                  fraction: { numerator: 1, denominator: 8 },
                },
              },
            ],
            backendRefs: [
              { name: 'echo-v1', port: 80, weight: 90 },
              { kind: 'Service', name: 'echo-v2', namespace: 'demo', port: 80, weight: 10 },
            ],
            timeouts: { request: '1m30s', backendRequest: '500ms' },
          },
          {
            matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
            filters: [
              {
                type: 'RequestRedirect',
                requestRedirect: {
                  scheme: 'https',
                  hostname: 'new',
                  port: 8443,
                  statusCode: 301,
                  path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
                },
              },
            ],
          },
        ],
      }),
    );
    expect(r.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'echo', port: 80 }]);
    expect(r.rules[0]).toEqual({
      name: 'canary',
      matches: [
        {
          path: { type: 'Exact', value: '/login' },
          headers: [
            { type: 'Exact', name: 'x-user', value: 'alice' },
            { type: 'RegularExpression', name: 'x-id', value: '^[0-9]+$' },
          ],
          queryParams: [{ type: 'Exact', name: 'debug', value: '1' }],
          method: 'POST',
        },
        { path: { type: 'RegularExpression', value: '^/v[0-9]+/' }, headers: [], queryParams: [] },
      ],
      filters: [
        {
          type: 'RequestHeaderModifier',
          modifier: {
            set: [{ name: 'x-a', value: '1' }],
            add: [{ name: 'x-b', value: '2' }],
            remove: ['x-c'],
          },
        },
        { type: 'ResponseHeaderModifier', modifier: { set: [], add: [], remove: ['server'] } },
        { type: 'URLRewrite', hostname: 'echo.internal', path: { type: 'ReplaceFullPath', value: '/auth' } },
        {
          type: 'RequestMirror',
          backendRef: { group: '', kind: 'Service', name: 'shadow', port: 80 },
          percent: 25,
        },
        {
          type: 'RequestMirror',
          backendRef: { group: '', kind: 'Service', name: 'shadow', port: 81 },
          percent: 12.5,
        },
      ],
      backendRefs: [
        { group: '', kind: 'Service', name: 'echo-v1', port: 80, weight: 90 },
        { group: '', kind: 'Service', name: 'echo-v2', namespace: 'demo', port: 80, weight: 10 },
      ],
      timeouts: { requestMs: 90_000, backendRequestMs: 500 },
    });
    expect(r.rules[1]?.filters).toEqual([
      {
        type: 'RequestRedirect',
        scheme: 'https',
        hostname: 'new',
        port: 8443,
        statusCode: 301,
        path: { type: 'ReplacePrefixMatch', value: '/new' },
      },
    ]);
  });

  it('fills Gateway API defaults: PathPrefix / match, weight 1, Gateway parent kind, redirect 302, one default rule', () => {
    const r = decodeAs(
      'HTTPRoute',
      httpRoute(
        {
          parentRefs: [{ name: 'ingress' }],
          rules: [
            { backendRefs: [{ name: 'echo', port: 80 }] },
            {
              matches: [{ path: { value: '/x' } }],
              filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'y' } }],
            },
          ],
        },
        'gateway.networking.k8s.io/v1beta1',
      ),
    );
    expect(r.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ingress' }]);
    expect(r.rules[0]?.matches).toEqual([
      { path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] },
    ]);
    expect(r.rules[0]?.backendRefs[0]?.weight).toBe(1);
    expect(r.rules[1]?.matches[0]?.path).toEqual({ type: 'PathPrefix', value: '/x' });
    expect(r.rules[1]?.filters[0]).toEqual({ type: 'RequestRedirect', hostname: 'y', statusCode: 302 });
    const bare = decodeAs(
      'HTTPRoute',
      httpRoute({ parentRefs: [{ kind: 'Service', group: '', name: 'echo' }] }),
    );
    expect(bare.rules).toEqual([
      {
        matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
        filters: [],
        backendRefs: [],
        timeouts: {},
      },
    ]);
  });

  it('reports bad matches, filters, backends and timeouts with their paths', () => {
    const r = refused(
      httpRoute({
        parentRefs: [{ kind: 'Service', name: 'Echo', port: 0 }],
        rules: [
          {
            matches: [
              {
                path: { type: 'Glob', value: 'no-slash' },
                headers: [{ name: 'bad header', value: 'x' }],
                queryParams: [{ type: 'RegularExpression', name: 'q', value: '(' }],
                method: 'FETCH',
                hostname: 'x',
              },
            ],
            filters: [
              { type: 'CORS', cors: {} },
              { type: 'RequestRedirect', requestRedirect: { statusCode: 404, scheme: 'ftp' } },
              { type: 'URLRewrite', urlRewrite: {} },
              { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow' }, percent: 101 } },
            ],
            backendRefs: [{ name: 'echo', weight: -1, filters: [] }],
            timeouts: { request: '10 seconds' },
            retry: { attempts: 3 },
          },
        ],
      }),
    );
    expect(r.ref).toBe('HTTPRoute demo/route');
    expect(r.problems).toEqual([
      { path: 'spec.parentRefs[0].port', message: notAPort(0) },
      { path: 'spec.parentRefs[0].name', message: '"Echo" is not a valid name' },
      { path: 'spec.rules[0].retry', message: 'is not supported' },
      { path: 'spec.rules[0].matches[0].hostname', message: 'unknown field' },
      {
        path: 'spec.rules[0].matches[0].path.type',
        message: '"Glob" must be one of Exact, PathPrefix, RegularExpression',
      },
      { path: 'spec.rules[0].matches[0].path.value', message: '"no-slash" must start with /' },
      {
        path: 'spec.rules[0].matches[0].method',
        message: '"FETCH" must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH',
      },
      {
        path: 'spec.rules[0].matches[0].headers[0].name',
        message: '"bad header" is not a valid header name',
      },
      {
        path: 'spec.rules[0].matches[0].queryParams[0].value',
        message: expect.stringContaining('"(" is not a valid regular expression'),
      },
      {
        path: 'spec.rules[0].filters[0].type',
        message:
          '"CORS" is not supported (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror)',
      },
      {
        path: 'spec.rules[0].filters[1].requestRedirect.scheme',
        message: '"ftp" must be one of http, https',
      },
      {
        path: 'spec.rules[0].filters[1].requestRedirect.statusCode',
        message: '404 must be one of 301, 302, 303, 307, 308',
      },
      { path: 'spec.rules[0].filters[2].urlRewrite', message: 'must set hostname or path' },
      {
        path: 'spec.rules[0].filters[3].requestMirror.backendRef.port',
        message: 'is required for a Service',
      },
      {
        path: 'spec.rules[0].filters[3].requestMirror.percent',
        message: '101 is not an integer from 0 to 100',
      },
      { path: 'spec.rules[0].backendRefs[0].filters', message: 'is not supported' },
      { path: 'spec.rules[0].backendRefs[0].port', message: 'is required for a Service' },
      { path: 'spec.rules[0].backendRefs[0].weight', message: '-1 is not an integer from 0 to 1000000' },
      {
        path: 'spec.rules[0].timeouts.request',
        message: '"10 seconds" is not a duration such as 10s, 250ms or 1m30s',
      },
      {
        path: 'spec.rules[0].filters[1].type',
        message: 'RequestRedirect cannot be combined with URLRewrite',
      },
      {
        path: 'spec.rules[0].filters[1].type',
        message: 'RequestRedirect cannot be combined with backendRefs',
      },
    ]);
  });

  it('refuses ReplacePrefixMatch unless every match is a PathPrefix, and repeated filters', () => {
    const r = refused(
      httpRoute({
        rules: [
          {
            matches: [{ path: { type: 'Exact', value: '/a' } }],
            filters: [
              {
                type: 'URLRewrite',
                urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } },
              },
              { type: 'URLRewrite', urlRewrite: { hostname: 'x' } },
            ],
            backendRefs: [{ name: 'echo', port: 80 }],
          },
        ],
      }),
    );
    expect(r.problems).toEqual([
      {
        path: 'spec.rules[0].filters[0].urlRewrite.path.type',
        message: 'ReplacePrefixMatch needs every match to be a PathPrefix',
      },
      { path: 'spec.rules[0].filters[1].type', message: 'URLRewrite may appear only once in a rule' },
    ]);
  });
});

describe('decodeManifest: VirtualService', () => {
  it('decodes matches, weighted destinations with subsets, retries, fault, mirror, rewrite and headers', () => {
    const vs = decodeAs(
      'VirtualService',
      virtualService({
        hosts: ['echo'],
        http: [
          {
            name: 'v2-for-testers',
            match: [
              {
                uri: { prefix: '/api' },
                ignoreUriCase: true,
                headers: { 'x-tester': { exact: 'yes' }, 'x-trace': {} },
                withoutHeaders: { 'x-skip': { regex: '.+' } },
                method: { exact: 'GET' },
                queryParams: { debug: { exact: '1' } },
                authority: { prefix: 'echo' },
                port: 80,
              },
            ],
            route: [
              { destination: { host: 'echo', subset: 'v2', port: { number: 80 } }, weight: 80 },
              { destination: { host: 'echo.demo.svc.cluster.local', subset: 'v1' }, weight: 20 },
            ],
            timeout: '2.5s',
            retries: { attempts: 3, perTryTimeout: '500ms', retryOn: '5xx,reset,503,504', backoff: '25ms' },
            fault: {
              delay: { fixedDelay: '1s', percentage: { value: 12.5 } },
              abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 1 } },
            },
            mirror: { host: 'shadow' },
            mirrorPercentage: { value: 5 },
            rewrite: { uri: '/v2/api', authority: 'echo-v2' },
            headers: {
              request: { set: { 'x-a': '1' }, add: { 'x-b': '2' }, remove: ['x-c'] },
              response: { remove: ['server'] },
            },
          },
          { redirect: { uri: '/new', authority: 'other', port: 8080, scheme: 'https', redirectCode: 308 } },
          { directResponse: { status: 418, body: { string: 'teapot' } } },
        ],
      }),
    );
    expect(vs.hosts).toEqual(['echo']);
    expect(vs.gateways).toEqual([]);
    expect(vs.http[0]).toEqual({
      name: 'v2-for-testers',
      match: [
        {
          uri: { prefix: '/api' },
          ignoreUriCase: true,
          headers: [
            { name: 'x-tester', match: { exact: 'yes' }, invert: false },
            { name: 'x-trace', invert: false },
            { name: 'x-skip', match: { regex: '.+' }, invert: true },
          ],
          queryParams: [{ name: 'debug', match: { exact: '1' }, invert: false }],
          method: { exact: 'GET' },
          authority: { prefix: 'echo' },
          port: 80,
        },
      ],
      route: [
        { destination: { host: 'echo', subset: 'v2', port: 80 }, weight: 80 },
        { destination: { host: 'echo.demo.svc.cluster.local', subset: 'v1' }, weight: 20 },
      ],
      timeoutMs: 2500,
      retries: {
        attempts: 3,
        perTryTimeoutMs: 500,
        retryOn: ['5xx', 'reset', 'retriable-status-codes'],
        retriableStatusCodes: [503, 504],
        backoffMs: 25,
      },
      fault: { delay: { fixedDelayMs: 1000, percent: 12.5 }, abort: { grpcStatus: 14, percent: 1 } },
      mirror: { host: 'shadow' },
      mirrorPercent: 5,
      rewrite: { uri: '/v2/api', authority: 'echo-v2' },
      headers: {
        request: { set: [{ name: 'x-a', value: '1' }], add: [{ name: 'x-b', value: '2' }], remove: ['x-c'] },
        response: { set: [], add: [], remove: ['server'] },
      },
    });
    expect(vs.http[1]?.redirect).toEqual({
      uri: '/new',
      authority: 'other',
      port: 8080,
      scheme: 'https',
      redirectCode: 308,
    });
    expect(vs.http[2]?.directResponse).toEqual({ status: 418, body: 'teapot' });
  });

  it.each(['networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'])(
    'accepts %s, with a 301 redirect by default',
    (v) => {
      const vs = decodeAs(
        'VirtualService',
        virtualService({ hosts: ['echo'], http: [{ redirect: { uri: '/x' } }] }, v),
      );
      expect(vs.http[0]?.redirect).toEqual({ uri: '/x', redirectCode: 301 });
    },
  );

  it('reports unsupported fields, bad matches, conflicting actions and bad fault and retry values', () => {
    const r = refused(
      virtualService({
        hosts: [],
        tcp: [{}],
        http: [
          {
            match: [{ uri: {}, sourceLabels: { app: 'x' }, headers: { 'x-a': { exact: 'a', prefix: 'b' } } }],
            route: [{ destination: { host: 'echo' }, headers: {} }],
            redirect: { uri: '/x', redirectCode: 200 },
            corsPolicy: {},
            retries: { retryOn: 'deadline-exceeded,5xx' },
            fault: { abort: { httpStatus: 700, grpcStatus: 'NOPE' }, delay: { percent: 50 } },
            timeout: 10,
          },
          { mirror: { port: { number: 80 } } },
        ],
      }),
    );
    expect(r.problems).toEqual([
      { path: 'spec.tcp', message: 'is not supported' },
      { path: 'spec.hosts', message: 'must name at least one host' },
      { path: 'spec.http[0].corsPolicy', message: 'is not supported' },
      { path: 'spec.http[0].match[0].sourceLabels', message: 'is not supported' },
      { path: 'spec.http[0].match[0].uri', message: 'must have one of exact, prefix or regex' },
      {
        path: 'spec.http[0].match[0].headers.x-a',
        message: 'must have only one of exact, prefix or regex, not exact and prefix',
      },
      { path: 'spec.http[0].route[0].headers', message: 'is not supported' },
      { path: 'spec.http[0].redirect.redirectCode', message: '200 must be one of 301, 302, 303, 307, 308' },
      {
        path: 'spec.http[0]',
        message: 'must have only one of route, redirect or directResponse, not route and redirect',
      },
      { path: 'spec.http[0].timeout', message: '10 is not a duration such as 10s, 250ms or 1m30s' },
      { path: 'spec.http[0].retries.attempts', message: 'is required' },
      {
        path: 'spec.http[0].retries.retryOn',
        message:
          '"deadline-exceeded" is not supported (supported: 5xx, gateway-error, connect-failure, reset, refused-stream, retriable-status-codes, unavailable, cancelled, or a status code)',
      },
      { path: 'spec.http[0].fault.delay.fixedDelay', message: 'is required' },
      { path: 'spec.http[0].fault.abort.httpStatus', message: '700 is not an integer from 200 to 599' },
      { path: 'spec.http[0].fault.abort.grpcStatus', message: '"NOPE" is not a gRPC status name' },
      { path: 'spec.http[0].fault.abort', message: 'must have exactly one of httpStatus or grpcStatus' },
      { path: 'spec.http[1]', message: 'must have route, redirect or directResponse' },
      { path: 'spec.http[1].mirror.host', message: 'is required' },
    ]);
  });
});

describe('decodeManifest: DestinationRule', () => {
  it('decodes subsets, load balancers, connection pool and outlier detection, with durations in ms', () => {
    const dr = decodeAs(
      'DestinationRule',
      destinationRule({
        host: 'echo.demo.svc.cluster.local',
        trafficPolicy: {
          loadBalancer: { simple: 'LEAST_REQUEST' },
          connectionPool: {
            tcp: {
              maxConnections: 100,
              connectTimeout: '250ms',
              idleTimeout: '10m',
              maxConnectionDuration: '1h',
            },
            http: {
              http1MaxPendingRequests: 10,
              http2MaxRequests: 1000,
              maxRetries: 3,
              idleTimeout: '30s',
              maxRequestsPerConnection: 20,
            },
          },
          outlierDetection: {
            consecutive5xxErrors: 7,
            interval: '5s',
            baseEjectionTime: '1m',
            maxEjectionPercent: 50,
          },
          tls: { mode: 'ISTIO_MUTUAL' },
        },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          {
            name: 'v2',
            labels: { version: 'v2' },
            trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
          },
          {
            name: 'v3',
            labels: { version: 'v3' },
            trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } },
          },
        ],
      }),
    );
    expect(dr).toEqual({
      kind: 'DestinationRule',
      metadata: { name: 'dr', namespace: 'demo', labels: {}, annotations: {} },
      host: 'echo.demo.svc.cluster.local',
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST' },
        connectionPool: {
          tcp: {
            maxConnections: 100,
            connectTimeoutMs: 250,
            idleTimeoutMs: 600_000,
            maxConnectionDurationMs: 3_600_000,
          },
          http: {
            http1MaxPendingRequests: 10,
            http2MaxRequests: 1000,
            maxRetries: 3,
            idleTimeoutMs: 30_000,
            maxRequestsPerConnection: 20,
          },
        },
        outlierDetection: {
          consecutive5xxErrors: 7,
          intervalMs: 5000,
          baseEjectionTimeMs: 60_000,
          maxEjectionPercent: 50,
        },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        {
          name: 'v2',
          labels: { version: 'v2' },
          trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
        },
        {
          name: 'v3',
          labels: { version: 'v3' },
          trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } },
        },
      ],
    });
  });

  it('maps LEAST_CONN to LEAST_REQUEST and UNSPECIFIED to ROUND_ROBIN, under every apiVersion', () => {
    for (const [v, simple, want] of [
      ['networking.istio.io/v1beta1', 'LEAST_CONN', 'LEAST_REQUEST'],
      ['networking.istio.io/v1alpha3', 'UNSPECIFIED', 'ROUND_ROBIN'],
      ['networking.istio.io/v1', 'RANDOM', 'RANDOM'],
    ] as const) {
      const dr = decodeAs(
        'DestinationRule',
        destinationRule({ host: 'echo', trafficPolicy: { loadBalancer: { simple } } }, v),
      );
      expect(dr.trafficPolicy?.loadBalancer).toEqual({ simple: want });
    }
  });

  it('reports unsupported settings, bad limits and durations, and duplicate subsets', () => {
    const r = refused(
      destinationRule({
        trafficPolicy: {
          portLevelSettings: [],
          loadBalancer: { simple: 'PASSTHROUGH', consistentHash: { httpCookie: { name: 'c' } } },
          connectionPool: {
            tcp: { maxConnections: 0, connectTimeout: 'soon', maxConnectionDuration: '0s' },
            http: { useClientProtocol: true, maxRequestsPerConnection: -1 },
          },
          outlierDetection: { maxEjectionPercent: 150 },
        },
        subsets: [{ name: 'v1' }, { name: 'v1' }, { name: 'V_2' }],
      }),
    );
    expect(r.problems).toEqual([
      { path: 'spec.trafficPolicy.portLevelSettings', message: 'is not supported' },
      {
        path: 'spec.trafficPolicy.loadBalancer',
        message: 'must have exactly one of simple or consistentHash',
      },
      {
        path: 'spec.trafficPolicy.loadBalancer.simple',
        message: '"PASSTHROUGH" must be one of UNSPECIFIED, ROUND_ROBIN, LEAST_REQUEST, LEAST_CONN, RANDOM',
      },
      { path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie', message: 'is not supported' },
      {
        path: 'spec.trafficPolicy.loadBalancer.consistentHash',
        message: 'must have httpHeaderName or useSourceIp: true',
      },
      { path: 'spec.trafficPolicy.connectionPool.http.useClientProtocol', message: 'is not supported' },
      {
        path: 'spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration',
        message: 'must be at least 1ms',
      },
      {
        path: 'spec.trafficPolicy.connectionPool.tcp.maxConnections',
        message: '0 is not an integer from 1 to 2147483647',
      },
      {
        path: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout',
        message: '"soon" is not a duration such as 10s, 250ms or 1m30s',
      },
      {
        path: 'spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection',
        message: '-1 is not an integer from 0 to 2147483647',
      },
      {
        path: 'spec.trafficPolicy.outlierDetection.maxEjectionPercent',
        message: '150 is not an integer from 0 to 100',
      },
      { path: 'spec.subsets[1].name', message: '"v1" is defined twice' },
      { path: 'spec.subsets[2].name', message: '"V_2" is not a valid subset name' },
      { path: 'spec.host', message: 'is required' },
    ]);
  });
});
