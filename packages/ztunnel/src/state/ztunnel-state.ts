/**
 * What the proxy reads: workloads by address, services by VIP, endpoints, identities and compiled
 * policies, built once per config; the config is never mutated, and a new config makes a new
 * state. Lookups made per connection are indexed or memoized here rather than recomputed.
 */
import { BlockList, isIPv6 } from 'node:net';
import { SpiffeId } from '@ambient/shared';
import { applicablePolicies, type CompiledPolicy, compilePolicy } from '../authz/authorization.js';
import type { LocalConfig } from '../config/local-config.js';
import type { CidrVip, Service } from './service.js';
import type { GatewayAddress, Workload } from './workload.js';

export interface Endpoint {
  readonly workload: Workload;
  readonly address: string;
  readonly port: number;
}

export class ZtunnelState {
  private readonly workloadsByIp = new Map<string, Workload>();
  /** Services per exact VIP, in config order (several namespaces may share one). */
  private readonly servicesByVip = new Map<string, Service[]>();
  /** Services reached by a whole prefix (a CIDR VIP), checked when no exact VIP matches. */
  private readonly cidrVips: Array<{
    readonly vip: CidrVip;
    readonly service: Service;
    readonly block: BlockList;
  }> = [];
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
      for (const vip of s.vips) {
        const list = this.servicesByVip.get(vip.address);
        if (list) list.push(s);
        else this.servicesByVip.set(vip.address, [s]);
      }
      for (const vip of s.cidrVips ?? []) {
        const block = new BlockList();
        block.addSubnet(vip.address, vip.length, isIPv6(vip.address) ? 'ipv6' : 'ipv4');
        this.cidrVips.push({ vip, service: s, block });
      }
      const named = this.servicesByHostname.get(s.hostname.toLowerCase());
      if (named) named.push(s);
      else this.servicesByHostname.set(s.hostname.toLowerCase(), [s]);
    }
    this.policies = config.policies.map(compilePolicy);
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.workloadsByIp.get(ip);
  }

  /**
   * The service at a VIP, as upstream ztunnel's `ServiceStore::get_best_by_vip`
   * (src/state/service.rs): services not visible to the client's namespace are skipped (when one
   * is given); of several, the one in the client's namespace, else the last canonical one, else
   * the first. An address no exact VIP and no workload names falls back to the CIDR VIPs that
   * contain it, ranked by (in the client's namespace, longest prefix, canonical).
   */
  serviceByVip(ip: string, clientNamespace?: string): Service | undefined {
    const visible = (s: Service) =>
      clientNamespace === undefined || s.visibility !== 'Namespace' || s.namespace === clientNamespace;
    let best: Service | undefined;
    for (const s of this.servicesByVip.get(ip) ?? []) {
      if (!visible(s)) continue;
      if (clientNamespace !== undefined && s.namespace === clientNamespace) return s;
      if (s.canonical || !best) best = s;
    }
    // A workload's own address is that workload, never a prefix's: upstream's find_address
    // (src/state.rs) looks workloads up first.
    if (best || this.cidrVips.length === 0 || this.workloadsByIp.has(ip)) return best;
    const family = isIPv6(ip) ? 'ipv6' : 'ipv4';
    let bestRank: readonly [number, number, number] | undefined;
    for (const { vip, service, block } of this.cidrVips) {
      if (!visible(service) || !block.check(ip, family)) continue;
      const rank = [
        service.namespace === clientNamespace ? 1 : 0,
        vip.length,
        service.canonical ? 1 : 0,
      ] as const;
      if (!bestRank || rankAbove(rank, bestRank)) {
        best = service;
        bestRank = rank;
      }
    }
    return best;
  }

  /**
   * The waypoint for a connection to `service`: with weighted waypoints, one drawn in proportion
   * to its weight, as upstream ztunnel's `sample_weighted_waypoint` (src/state.rs); when there
   * are none, or every weight is 0, the single `waypoint`.
   */
  serviceWaypoint(service: Service, random: () => number = Math.random): GatewayAddress | undefined {
    const weighted = service.weightedWaypoints ?? [];
    const total = weighted.reduce((sum, w) => sum + w.weight, 0);
    if (total <= 0) return service.waypoint;
    let point = random() * total;
    for (const w of weighted) {
      if (w.weight > 0 && point < w.weight) return w.destination;
      point -= w.weight;
    }
    // Rounding can leave the point just past the end: the last waypoint with weight.
    return weighted.findLast((w) => w.weight > 0)?.destination;
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
      // Exact VIPs only: an address inside some service's CIDR VIP is still the waypoint's own.
      svc = this.servicesByVip.get(gw.address)?.[0];
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

/** Lexicographic comparison of CIDR match ranks. */
function rankAbove(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return false;
}
