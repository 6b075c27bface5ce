/**
 * What the proxy reads: workloads by address, services by VIP, endpoints, identities and compiled
 * policies, built once per config; the config is never mutated, and a new config makes a new
 * state. Lookups made per connection are indexed or memoized here rather than recomputed.
 */
import { SpiffeId } from '@ambient/shared';
import { applicablePolicies, type CompiledPolicy, compilePolicy } from '../authz/authorization.js';
import type { LocalConfig } from '../config/local-config.js';
import type { Service } from './service.js';
import type { GatewayAddress, Workload } from './workload.js';

export interface Endpoint {
  readonly workload: Workload;
  readonly address: string;
  readonly port: number;
}

export class ZtunnelState {
  private readonly workloadsByIp = new Map<string, Workload>();
  private readonly servicesByVip = new Map<string, Service>();
  private readonly servicesByKey = new Map<string, Service>();
  /** Services by host name, in config order (one host name may exist in several namespaces). */
  private readonly servicesByHostname = new Map<string, Service[]>();
  private readonly policies: CompiledPolicy[];
  private readonly policiesByWorkload = new Map<Workload, CompiledPolicy[]>();
  private readonly identities = new Map<Workload, SpiffeId>();
  /** Workloads listing each service key (`namespace/hostname`), in config order. */
  private readonly workloadsByService = new Map<string, Workload[]>();
  private readonly endpointsByPort = new Map<string, Endpoint[]>();
  /** Round-robin position per service port. */
  private readonly cursor = new Map<string, number>();

  constructor(
    readonly config: LocalConfig,
    readonly trustDomain = 'cluster.local',
  ) {
    for (const w of config.workloads) {
      for (const ip of w.ips) this.workloadsByIp.set(ip, w);
      for (const key of w.services.keys()) {
        const list = this.workloadsByService.get(key);
        if (list) list.push(w);
        else this.workloadsByService.set(key, [w]);
      }
    }
    for (const s of config.services) {
      this.servicesByKey.set(`${s.namespace}/${s.hostname}`, s);
      const named = this.servicesByHostname.get(s.hostname.toLowerCase());
      if (named) named.push(s);
      else this.servicesByHostname.set(s.hostname.toLowerCase(), [s]);
      for (const vip of s.vips) this.servicesByVip.set(vip.address, s);
    }
    this.policies = config.policies.map(compilePolicy);
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.workloadsByIp.get(ip);
  }

  serviceByVip(ip: string): Service | undefined {
    return this.servicesByVip.get(ip);
  }

  /**
   * The service with this host name, the one in `namespace` first when several namespaces have
   * one (as upstream's `get_best_by_host` ranks by the client's namespace).
   */
  serviceByHostname(hostname: string, namespace?: string): Service | undefined {
    const list = this.servicesByHostname.get(hostname.toLowerCase());
    return list?.find((s) => s.namespace === namespace) ?? list?.[0];
  }

  /**
   * A waypoint pod to send to: a workload of the waypoint's service (hostname form) or the
   * workload or service at its address, round robin over the waypoint's pods. Undefined when no
   * waypoint pod is known: traffic that must go through a waypoint then fails, as Istio's does.
   */
  waypointWorkload(gw: GatewayAddress): Workload | undefined {
    const pods = this.waypointPods(gw);
    if (pods.length === 0) return undefined;
    const cursorKey = `waypoint:${gw.namespace ?? ''}/${gw.hostname ?? gw.address ?? ''}`;
    const n = this.cursor.get(cursorKey) ?? 0;
    this.cursor.set(cursorKey, n + 1);
    return pods[n % pods.length];
  }

  /** Every pod of a waypoint. */
  waypointPods(gw: GatewayAddress): Workload[] {
    let svc: Service | undefined;
    if (gw.hostname) svc = this.servicesByKey.get(`${gw.namespace ?? ''}/${gw.hostname}`);
    else if (gw.address) {
      svc = this.servicesByVip.get(gw.address);
      if (!svc) {
        const w = this.workloadsByIp.get(gw.address);
        return w ? [w] : [];
      }
    }
    if (!svc) return [];
    return (this.workloadsByService.get(`${svc.namespace}/${svc.hostname}`) ?? []).filter(
      (w) => w.ips.length > 0,
    );
  }

  /** The services a workload is an endpoint of. */
  servicesOf(w: Workload): Service[] {
    return [...w.services.keys()].flatMap((k) => this.servicesByKey.get(k) ?? []);
  }

  /**
   * The workload's SPIFFE identity, in its own trust domain (as upstream ztunnel's
   * `Workload::identity`), or the node's when the control plane names none.
   */
  identity(w: Workload): SpiffeId {
    let id = this.identities.get(w);
    if (!id) {
      id = SpiffeId.of(w.trustDomain || this.trustDomain, w.namespace, w.serviceAccount);
      this.identities.set(w, id);
    }
    return id;
  }

  workloadsOnNode(node: string): Workload[] {
    return this.config.workloads.filter((w) => w.node === node);
  }

  /** Endpoints of `service` for service port `port`: workload IP and target port. */
  endpoints(service: Service, port: number): Endpoint[] {
    const key = `${service.namespace}/${service.hostname}`;
    const portKey = `${key}:${port}`;
    let eps = this.endpointsByPort.get(portKey);
    if (!eps) {
      eps = (this.workloadsByService.get(key) ?? []).flatMap((w) => {
        const target = w.services.get(key)?.get(port) ?? service.ports.get(port);
        const address = w.ips[0];
        return target !== undefined && address ? [{ workload: w, address, port: target }] : [];
      });
      this.endpointsByPort.set(portKey, eps);
    }
    return eps;
  }

  /** Round robin over a service port's endpoints (per state: a new config starts over). */
  pickEndpoint(service: Service, port: number): Endpoint | undefined {
    const eps = this.endpoints(service, port);
    if (eps.length === 0) return undefined;
    const key = `${service.namespace}/${service.hostname}:${port}`;
    const n = this.cursor.get(key) ?? 0;
    this.cursor.set(key, n + 1);
    return eps[n % eps.length];
  }

  policiesFor(w: Workload): CompiledPolicy[] {
    let list = this.policiesByWorkload.get(w);
    if (!list) {
      list = applicablePolicies(this.policies, { namespace: w.namespace, policies: w.authorizationPolicies });
      this.policiesByWorkload.set(w, list);
    }
    return list;
  }
}
