import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenHttp } from '@ambient/shared';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LoopStats } from '../app/loop-stats.js';
import type { Workload } from '../state/workload.js';
import { ZtunnelState } from '../state/ztunnel-state.js';
import { type AdminInputs, adminHandler } from './admin-server.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function inputs(extra: Partial<AdminInputs> = {}): AdminInputs {
  return {
    nodeName: 'node0',
    trustDomain: 'cluster.local',
    settings: { nodeName: 'node0' },
    logger: pino({ level: 'info' }, pino.destination('/dev/null')),
    state: () => undefined,
    certs: () => undefined,
    enrolled: () => [],
    pending: () => [],
    staticConfig: () => undefined,
    configRejections: () => 0,
    lastConfigProblems: () => [],
    xds: () => undefined,
    ...extra,
  };
}

async function get(admin: AdminInputs, path: string): Promise<{ status: number; body: string }> {
  const server = await listenHttp('127.0.0.1', 0, adminHandler(admin));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('adminHandler', () => {
  it("/config_dump shows the state in force in upstream ztunnel's shape, our extras under agentState", async () => {
    const sleep: Workload = {
      uid: 'u1',
      name: 'sleep',
      namespace: 'demo',
      serviceAccount: 'sleep',
      ips: ['198.18.16.10'],
      protocol: 'HBONE',
      node: 'node0',
      network: '',
      services: new Map([['demo/sleep.demo.svc.cluster.local', new Map([[80, 8080]])]]),
      authorizationPolicies: [],
    };
    const state = new ZtunnelState({
      workloads: [sleep],
      services: [
        {
          name: 'sleep',
          namespace: 'demo',
          hostname: 'sleep.demo.svc.cluster.local',
          vips: [{ network: '', address: '198.19.0.10' }],
          ports: new Map([[80, 8080]]),
          subjectAltNames: [],
        },
      ],
      policies: [],
    });
    const res = await get(
      inputs({
        state: () => state,
        enrolled: () => [sleep],
        configRejections: () => 2,
        lastConfigProblems: () => [{ path: 'workloads[0].name', message: 'is required' }],
      }),
      '/config_dump',
    );
    expect(res.status).toBe(200);
    const dump = JSON.parse(res.body);
    expect(Object.keys(dump)).toEqual([
      'workloads',
      'services',
      'policies',
      'stagedServices',
      'staticConfig',
      'version',
      'config',
      'certificates',
      'workloadState',
      'agentState',
    ]);
    expect(dump.agentState.nodeName).toBe('node0');
    expect(dump.config).toEqual({ nodeName: 'node0' });
    expect(dump.workloads[0].services).toEqual(['demo/sleep.demo.svc.cluster.local']);
    expect(dump.services[0].ports).toEqual({ 80: 8080 });
    expect(dump.services[0].endpoints).toEqual({
      u1: { workloadUid: 'u1', port: { 80: 8080 }, status: 'Healthy' },
    });
    expect(dump.workloadState).toEqual({
      u1: { state: 'Up', info: { name: 'sleep', namespace: 'demo', serviceAccount: 'sleep' } },
    });
    expect(dump.agentState.configRejections).toBe(2);
    expect(dump.agentState.lastConfigProblems).toEqual([
      { path: 'workloads[0].name', message: 'is required' },
    ]);
    expect(dump.certificates).toEqual([]);
    expect(dump.agentState.certificates).toEqual([]);
    expect(dump.agentState.xds).toBeUndefined();
    expect(dump.staticConfig).toEqual({ workloads: [], policies: [], services: [] });
  });

  it('/logging sets a known level and refuses an unknown one', async () => {
    const admin = inputs();
    expect(await get(admin, '/logging?level=debug')).toEqual({
      status: 200,
      body: 'current log level is debug\n',
    });
    expect(admin.logger.level).toBe('debug');
    expect(await get(admin, '/logging?level=loud')).toEqual({ status: 400, body: 'unknown level loud\n' });
    expect(admin.logger.level).toBe('debug');
  });

  it('/debug/loop_stats answers 404 while off, and when on a snapshot that ?reset starts afresh', async () => {
    expect((await get(inputs(), '/debug/loop_stats')).status).toBe(404);
    let now = 0;
    const stats = new LoopStats({ now: () => now });
    const trim = stats.timeTrim(() => {
      now += 3;
      return true;
    });
    trim();
    const admin = inputs({ loopStats: () => stats });
    const first = await get(admin, '/debug/loop_stats?reset');
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body).trim).toEqual({ count: 1, totalMs: 3, maxMs: 3, over1Ms: 1, released: 1 });
    const second = JSON.parse((await get(admin, '/debug/loop_stats')).body);
    expect(second.trim.count).toBe(0);
    expect(second.gc).toEqual({});
  });

  it('other paths answer 404 with the list of endpoints', async () => {
    expect(await get(inputs(), '/nope')).toEqual({
      status: 404,
      body: 'endpoints: /config_dump /logging?level=\n',
    });
  });
});
