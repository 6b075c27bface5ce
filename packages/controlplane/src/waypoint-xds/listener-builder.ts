/**
 * The waypoint's Listener: one filter chain per served service port, matched on the service's VIPs
 * and port. TCP ports get a TCP proxy; HTTP ports an HTTP connection manager with the RBAC filters
 * of the AuthorizationPolicies attached to the gateway or the service, fault injection and the
 * router, routes from RDS.
 */
import {
  type EnvoyInput,
  FAULT_FILTER,
  FAULT_TYPE,
  HCM_FILTER,
  HCM_TYPE,
  RBAC_FILTER,
  RBAC_TYPE,
  ROUTER_FILTER,
  ROUTER_TYPE,
  TCP_PROXY_FILTER,
  TCP_PROXY_TYPE,
  type WireFilterChain,
  type WireHttpFilter,
  type WireListener,
} from '@ambient/shared';
import { HBONE_PORT } from '../ambient/mesh-model.js';
import type { AuthorizationPolicyObject, GatewayObject, ServiceObject } from '../manifests/kube-objects.js';
import { type BuildContext, byName, type SvcPort, WAYPOINT_LISTENER_NAME } from './build-context.js';
import { type RbacRulesPlain, waypointRbac } from './waypoint-rbac.js';

export class ListenerBuilder {
  private readonly rbacCache = new Map<string, { deny?: RbacRulesPlain; allow?: RbacRulesPlain }>();

  constructor(
    private readonly b: BuildContext,
    private readonly gw: GatewayObject,
  ) {}

  /** The AuthorizationPolicies targeting this gateway or the service, by namespace and name. */
  policies(svc: ServiceObject): AuthorizationPolicyObject[] {
    const { namespace, name } = this.gw.metadata;
    const out = new Set<AuthorizationPolicyObject>();
    for (const p of this.b.ix.policiesByNs.get(namespace) ?? [])
      if (
        p.targetRefs.some(
          (r) =>
            r.kind === 'Gateway' &&
            (r.group === 'gateway.networking.k8s.io' || r.group === '') &&
            r.name === name,
        )
      )
        out.add(p);
    for (const p of this.b.ix.policiesByNs.get(svc.metadata.namespace) ?? [])
      if (
        p.targetRefs.some(
          (r) =>
            r.kind === 'Service' && (r.group === '' || r.group === 'core') && r.name === svc.metadata.name,
        )
      )
        out.add(p);
    return [...out].sort(byName);
  }

  rbac(svc: ServiceObject): { deny?: RbacRulesPlain; allow?: RbacRulesPlain } {
    const policies = this.policies(svc);
    const key = policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(',');
    let r = this.rbacCache.get(key);
    if (!r) {
      r = waypointRbac(policies, (ref, path, message) => this.b.notice(ref, path, message));
      this.rbacCache.set(key, r);
    }
    return r;
  }

  filterChain(sp: SvcPort): EnvoyInput<WireFilterChain> {
    const match = {
      prefixRanges: (sp.pod?.podIps ?? sp.svc.clusterIps).map((ip) => ({
        addressPrefix: ip,
        prefixLen: { value: ip.includes(':') ? 128 : 32 },
      })),
      destinationPort: { value: sp.port.port },
    };
    const enc = this.b.encoder;
    if (sp.proto === 'tcp') {
      return {
        name: sp.name,
        filterChainMatch: match,
        filters: [
          {
            name: TCP_PROXY_FILTER,
            typedConfig: enc.any(TCP_PROXY_TYPE, { statPrefix: sp.name, cluster: sp.name }),
          },
        ],
      };
    }
    const rbac = this.rbac(sp.svc);
    const httpFilters: EnvoyInput<WireHttpFilter>[] = [];
    for (const rules of [rbac.deny, rbac.allow]) {
      if (rules) httpFilters.push({ name: RBAC_FILTER, typedConfig: enc.any(RBAC_TYPE, { rules }) });
    }
    httpFilters.push({ name: FAULT_FILTER, typedConfig: enc.any(FAULT_TYPE, {}) });
    httpFilters.push({ name: ROUTER_FILTER, typedConfig: enc.any(ROUTER_TYPE, {}) });
    return {
      name: sp.name,
      filterChainMatch: match,
      filters: [
        {
          name: HCM_FILTER,
          typedConfig: enc.any(HCM_TYPE, {
            statPrefix: sp.name,
            codecType: sp.proto === 'http' ? 'AUTO' : 'HTTP2',
            rds: { routeConfigName: sp.name, configSource: { ads: {}, resourceApiVersion: 'V3' } },
            httpFilters,
          }),
        },
      ],
    };
  }

  listener(chains: readonly EnvoyInput<WireFilterChain>[]): EnvoyInput<WireListener> {
    return {
      name: WAYPOINT_LISTENER_NAME,
      address: { socketAddress: { address: '0.0.0.0', portValue: HBONE_PORT } },
      filterChains: chains,
    };
  }
}
