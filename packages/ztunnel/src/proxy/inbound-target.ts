/**
 * Where an inbound HBONE request goes in this pod, as upstream's find_inbound_upstream
 * (istio/ztunnel src/proxy/inbound.rs): an address authority keeps its port and may be for any
 * service of the pod; a service `hostname:port` is resolved to this pod's target port for that
 * service port (the pod's endpoint port for it, else the service's target port). The resolved
 * port is checked against the capture ports afterwards, as upstream checks `illegal_ports`.
 */
import { FORBIDDEN_TARGET_PORTS, type HboneAddress, MeshError } from '@ambient/shared';
import { ZtunnelError } from '../errors/ztunnel-error.js';
import type { Service } from '../state/service.js';
import type { Workload } from '../state/workload.js';
import type { ZtunnelState } from '../state/ztunnel-state.js';

export interface InboundTarget {
  /** The port of this pod to deliver to. */
  readonly port: number;
  /** The services the request may be for: the named one, or every service of the pod. */
  readonly services: readonly Service[];
}

/** Throws ZT_ERR_UNKNOWN_HOSTNAME, ZT_ERR_NO_TARGET_PORT or MESH_ERR_HBONE_FORBIDDEN_PORT (all 503). */
export function resolveInboundTarget(st: ZtunnelState, local: Workload, target: HboneAddress): InboundTarget {
  let resolved: InboundTarget;
  if (target.hostname) {
    const svc = st.serviceByHostname(target.host, local.namespace);
    if (!svc) throw new ZtunnelError('ZT_ERR_UNKNOWN_HOSTNAME', target.host);
    const port =
      local.services.get(`${svc.namespace}/${svc.hostname}`)?.get(target.port) ?? svc.ports.get(target.port);
    if (!port) throw new ZtunnelError('ZT_ERR_NO_TARGET_PORT', `${target.host}:${target.port}`);
    resolved = { port, services: [svc] };
  } else {
    resolved = { port: target.port, services: st.servicesOf(local) };
  }
  if (FORBIDDEN_TARGET_PORTS.has(resolved.port))
    throw new MeshError('MESH_ERR_HBONE_FORBIDDEN_PORT', `port ${resolved.port}`);
  return resolved;
}
