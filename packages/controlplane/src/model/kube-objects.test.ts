import type { Problem } from '@ambient/shared';
import { describe, expect, it } from 'vitest';
import { decodeManifest, type KubeKind, type KubeObject, objectKey } from './kube-objects.js';

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
    });
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
  it.each(['Deployment', 'ConfigMap', 'VirtualService'])('ignores %s without validating it', (kind) => {
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
