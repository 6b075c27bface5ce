import { describe, expect, it } from 'vitest';
import type { Service } from '../state/service.js';
import type { Workload } from '../state/workload.js';
import { ZtunnelState } from '../state/ztunnel-state.js';
import { resolveInboundTarget } from './inbound-target.js';

const svc = (name: string, namespace: string, ports: Array<[number, number]>): Service => ({
  name,
  namespace,
  hostname: `${name}.${namespace}.svc.cluster.local`,
  vips: [{ network: '', address: `198.19.0.${ports.length + name.length}` }],
  ports: new Map(ports),
  subjectAltNames: [],
});

const echoSvc = svc('echo', 'demo', [[80, 8080]]);
const namedSvc = svc('named', 'demo', [[443, 0]]);
const badSvc = svc('bad', 'demo', [[81, 15006]]);
const echo: Workload = {
  uid: 'Kubernetes//Pod/demo/echo',
  name: 'echo',
  namespace: 'demo',
  serviceAccount: 'echo',
  ips: ['198.18.1.2'],
  protocol: 'HBONE',
  node: 'node1',
  network: '',
  services: new Map([
    ['demo/echo.demo.svc.cluster.local', new Map([[80, 8080]])],
    ['demo/named.demo.svc.cluster.local', new Map([[443, 8443]])],
  ]),
  authorizationPolicies: [],
};
const st = new ZtunnelState({ workloads: [echo], services: [echoSvc, namedSvc, badSvc], policies: [] });

describe('resolveInboundTarget', () => {
  it('keeps the port of an address authority, for any service of the pod', () => {
    const r = resolveInboundTarget(st, echo, { host: '198.18.1.2', port: 8080 });
    expect(r.port).toBe(8080);
    expect(r.services.map((s) => s.name)).toEqual(['echo', 'named']);
  });

  it("delivers a service host name to this pod's target port for the service port", () => {
    const r = resolveInboundTarget(st, echo, {
      host: 'echo.demo.svc.cluster.local',
      port: 80,
      hostname: true,
    });
    expect(r).toEqual({ port: 8080, services: [echoSvc] });
    // A named target port: the pod's endpoint port.
    expect(
      resolveInboundTarget(st, echo, { host: 'named.demo.svc.cluster.local', port: 443, hostname: true })
        .port,
    ).toBe(8443);
  });

  it('refuses an unknown host name and a service port with no target port (503, as upstream)', () => {
    expect(() =>
      resolveInboundTarget(st, echo, { host: 'nope.demo.svc.cluster.local', port: 80, hostname: true }),
    ).toThrow(expect.objectContaining({ code: 'ZT_ERR_UNKNOWN_HOSTNAME' }));
    expect(() =>
      resolveInboundTarget(st, echo, { host: 'echo.demo.svc.cluster.local', port: 81, hostname: true }),
    ).toThrow(expect.objectContaining({ code: 'ZT_ERR_NO_TARGET_PORT' }));
  });

  it('refuses a capture port however it was reached', () => {
    expect(() =>
      resolveInboundTarget(st, echo, { host: 'bad.demo.svc.cluster.local', port: 81, hostname: true }),
    ).toThrow(expect.objectContaining({ code: 'MESH_ERR_HBONE_FORBIDDEN_PORT' }));
    expect(() => resolveInboundTarget(st, echo, { host: '198.18.1.2', port: 15008 })).toThrow(
      expect.objectContaining({ code: 'MESH_ERR_HBONE_FORBIDDEN_PORT' }),
    );
  });

  it("prefers the service in the pod's namespace when several namespaces have the host name", () => {
    const other = { ...svc('echo', 'demo', [[80, 9999]]), namespace: 'other' };
    const both = new ZtunnelState({ workloads: [echo], services: [other, echoSvc], policies: [] });
    expect(both.serviceByHostname('ECHO.demo.svc.cluster.local', 'demo')).toBe(echoSvc);
    expect(both.serviceByHostname('echo.demo.svc.cluster.local', 'x')).toBe(other);
  });
});
