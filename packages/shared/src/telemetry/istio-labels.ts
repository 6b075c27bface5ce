/**
 * Istio's standard metric labels, one home for every proxy that reports them: the names of
 * istio_requests_total / istio_request_duration_milliseconds / istio_request_bytes /
 * istio_response_bytes and of istio_tcp_*, and the workload part of a label set computed from a
 * peer description, "unknown" where a value is not known (as ztunnel's DefaultedUnknown and the
 * Envoy stats filter write it). Also the wire form istiod gives an endpoint's workload in Envoy
 * endpoint metadata, so the control plane and the waypoint share one codec.
 */
import { fail, ok, type Result } from '../result.js';

/**
 * The labels both kinds of metrics carry, in the order the Envoy stats filter lists its standard
 * tags (upstream istio_stats.cc); the HTTP-only labels follow request_protocol, as that filter
 * appends them.
 */
const SOURCE = [
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
] as const;

const DESTINATION = [
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
] as const;

/** Labels of istio_tcp_connections_opened/closed_total and istio_tcp_sent/received_bytes_total. */
export const ISTIO_TCP_LABELS = [
  'reporter',
  ...SOURCE,
  ...DESTINATION,
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

/** Labels of istio_requests_total and the request duration and size histograms. */
export const ISTIO_REQUEST_LABELS = [
  'reporter',
  ...SOURCE,
  ...DESTINATION,
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

export type IstioTcpLabelName = (typeof ISTIO_TCP_LABELS)[number];
export type IstioRequestLabelName = (typeof ISTIO_REQUEST_LABELS)[number];
export type IstioTcpLabels = Record<IstioTcpLabelName, string>;
export type IstioRequestLabels = Record<IstioRequestLabelName, string>;

/**
 * `source` on the client's proxy, `destination` on the server's, `waypoint` on a waypoint (the
 * stats filter's ServerGateway reporter).
 */
export type IstioReporter = 'source' | 'destination' | 'waypoint';

export type PeerSide = 'source' | 'destination';

/** The per-side labels a peer description fills. */
export type WorkloadLabelSuffix =
  | 'workload'
  | 'workload_namespace'
  | 'principal'
  | 'app'
  | 'version'
  | 'canonical_service'
  | 'canonical_revision'
  | 'cluster';

export type WorkloadLabels<S extends PeerSide> = Record<`${S}_${WorkloadLabelSuffix}`, string>;

/** What a proxy knows of one end of a connection; every field optional. */
export interface PeerDescription {
  /** The workload (the pod's owner, e.g. a Deployment's name), as the control plane names it. */
  readonly workloadName?: string;
  /** The instance (pod) name: the workload's name only when no workload name is known. */
  readonly name?: string;
  readonly namespace?: string;
  /** `service.istio.io/canonical-name`, as the control plane derives it. */
  readonly canonicalName?: string;
  /** `service.istio.io/canonical-revision`; a known workload without one is at "latest". */
  readonly canonicalRevision?: string;
  /** The `app` label; absent, the canonical name (as ztunnel and the waypoint's discovery report it). */
  readonly app?: string;
  /** The `version` label; absent, the canonical revision. */
  readonly version?: string;
  readonly clusterId?: string;
  /** The SPIFFE identity, only when verified (the TLS peer or the endpoint's expected identity). */
  readonly principal?: string;
}

export const UNKNOWN_LABEL_VALUE = 'unknown';
/** Istio's canonical revision for a workload that names none (kubelabels.CanonicalService). */
export const DEFAULT_CANONICAL_REVISION = 'latest';

const orUnknown = (v: string | undefined): string => (v ? v : UNKNOWN_LABEL_VALUE);

/**
 * The workload part of a label set for one side. Empty strings count as unknown. A peer whose
 * canonical name is known but not its revision is at "latest", as istiod defaults it; an
 * unknown peer is "unknown" throughout.
 */
export function workloadLabels<S extends PeerSide>(
  side: S,
  peer: PeerDescription | undefined,
): WorkloadLabels<S> {
  const p = peer ?? {};
  const canonicalName = p.canonicalName || undefined;
  const revision = p.canonicalRevision || (canonicalName ? DEFAULT_CANONICAL_REVISION : undefined);
  const values: Record<WorkloadLabelSuffix, string> = {
    workload: orUnknown(p.workloadName || p.name),
    workload_namespace: orUnknown(p.namespace),
    principal: orUnknown(p.principal),
    app: orUnknown(p.app || canonicalName),
    version: orUnknown(p.version || revision),
    canonical_service: orUnknown(canonicalName),
    canonical_revision: orUnknown(revision),
    cluster: orUnknown(p.clusterId),
  };
  const out: Record<string, string> = {};
  for (const [suffix, value] of Object.entries(values)) out[`${side}_${suffix}`] = value;
  return out as WorkloadLabels<S>;
}

export interface ServiceDescription {
  /** `name.namespace.svc.<domain>` */
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

export type DestinationServiceLabels = Record<
  'destination_service' | 'destination_service_name' | 'destination_service_namespace',
  string
>;

/** The destination service labels; "unknown" when the client did not address a service. */
export function serviceLabels(svc: Partial<ServiceDescription> | undefined): DestinationServiceLabels {
  return {
    destination_service: orUnknown(svc?.host),
    destination_service_name: orUnknown(svc?.name),
    destination_service_namespace: orUnknown(svc?.namespace),
  };
}

/** An endpoint's workload as istiod writes it into `filter_metadata.istio.workload`. */
export interface EndpointWorkload {
  readonly workloadName: string;
  readonly namespace: string;
  readonly canonicalName: string;
  /** "latest" when the wire leaves it empty. */
  readonly canonicalRevision: string;
  readonly clusterId: string;
}

/**
 * `workload-name;namespace;canonical-name;canonical-revision;cluster-id`, the revision left empty
 * when it is "latest" (istiod does not send the default), as istiod's AppendLbEndpointMetadata.
 */
export function formatEndpointWorkload(w: EndpointWorkload): string {
  const revision = w.canonicalRevision === DEFAULT_CANONICAL_REVISION ? '' : w.canonicalRevision;
  return [w.workloadName, w.namespace, w.canonicalName, revision, w.clusterId].join(';');
}

/**
 * The inverse of formatEndpointWorkload. Envoy's stats filter reads five fields or none; a value
 * with another number of fields, or without a workload name, is refused so a malformed update is
 * NACKed instead of labelling traffic with shifted values.
 */
export function parseEndpointWorkload(value: string): Result<EndpointWorkload> {
  const parts = value.split(';');
  if (parts.length !== 5)
    return fail({
      path: '',
      message: `${JSON.stringify(value)} is not name;namespace;canonical_name;canonical_revision;cluster_id`,
    });
  const [workloadName = '', namespace = '', canonicalName = '', revision = '', clusterId = ''] = parts;
  if (workloadName === '') return fail({ path: '', message: 'names no workload' });
  return ok({
    workloadName,
    namespace,
    canonicalName,
    canonicalRevision: revision || DEFAULT_CANONICAL_REVISION,
    clusterId,
  });
}
