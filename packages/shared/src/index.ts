// The public API of @ambient/shared: what the other packages, the end-to-end suites and the
// benchmarks use. Anything else is internal to the package.

export type { BackoffPolicy } from './backoff.js';
export { backoffDelay } from './backoff.js';
export type { EnvMap } from './config/env-settings.js';
export { EnvSettings, parseDurationMs } from './config/env-settings.js';
export type { HboneServerReply, MeshErrorCode } from './errors.js';
export {
  HBONE_CLIENT_REFUSAL_REASONS,
  HBONE_SERVER_DEFAULT_REPLY,
  HBONE_SERVER_REPLIES,
  hboneClientRefusalReason,
  hboneRefusalCode,
  hboneServerReplyFor,
  hboneStatusFor,
  isMeshError,
  MESH_ERRORS,
  MeshError,
} from './errors.js';
export type { Baggage, BaggageWorkloadKind } from './hbone/baggage.js';
export {
  BAGGAGE_MAX_BYTES,
  BAGGAGE_MAX_MEMBERS,
  BAGGAGE_WORKLOAD_KINDS,
  formatBaggage,
  parseBaggage,
} from './hbone/baggage.js';
export type { HboneClientTimings } from './hbone/hbone-client.js';
export { DEFAULT_HBONE_CLIENT_TIMINGS, HboneClient, HboneRefusedError } from './hbone/hbone-client.js';
export type { HboneAddress, HostPort } from './hbone/hbone-headers.js';
export {
  FORBIDDEN_TARGET_PORTS,
  formatAuthority,
  formatForwarded,
  newTraceparent,
  parseForwardedHost,
  parseHboneAddress,
  validTraceparent,
} from './hbone/hbone-headers.js';
export type { HboneRequest } from './hbone/hbone-server.js';
export { HboneServer } from './hbone/hbone-server.js';
export type { CaClient } from './identity/ca-client.js';
export { CertManager } from './identity/cert-manager.js';
export { CREATE_CERTIFICATE_METHOD, GrpcCaClient, IMPERSONATED_IDENTITY } from './identity/grpc-ca-client.js';
export { LocalCa } from './identity/local-ca.js';
export { certificateFacts, createCsr } from './identity/node-x509.js';
export { SpiffeId } from './identity/spiffe-id.js';
export { allFieldsHandled } from './istio-wire/all-fields-handled.js';
export * as securityapi from './istio-wire/istio-authorization.js';
export type { WireCodec } from './istio-wire/istio-codecs.js';
export {
  ADDRESS_CODEC,
  ADDRESS_TYPE_URL,
  AUTHORIZATION_CODEC,
  AUTHORIZATION_TYPE_URL,
} from './istio-wire/istio-codecs.js';
export * as workloadapi from './istio-wire/istio-workload.js';
export type { ZdsAck, ZdsHello, ZdsRequest, ZdsWorkloadInfo } from './istio-wire/istio-zds.js';
export {
  decodeZdsAck,
  decodeZdsHello,
  decodeZdsRequest,
  encodeZdsAck,
  encodeZdsHello,
  encodeZdsRequest,
  ZDS_MAX_MESSAGE_BYTES,
  ZdsVersion,
} from './istio-wire/istio-zds.js';
export type { Always, Input, Written, WrittenFields } from './istio-wire/wire-input.js';
export { dialTcp } from './net/dial-tcp.js';
export { FramedReads } from './net/framed-reads.js';
export type { HttpHandler } from './net/http-endpoint.js';
export { listenHttp, sendJson, sendText } from './net/http-endpoint.js';
export type { ReadinessReply } from './net/readiness-reply.js';
export { pathOf, readinessReply, sendReadinessReply } from './net/readiness-reply.js';
export type { SpliceStats } from './net/splice.js';
export { resetSocket, splice } from './net/splice.js';
export { runComponent } from './process/run-component.js';
export type { Problem, Result } from './result.js';
export { fail, formatProblems, ok } from './result.js';
export { HboneMetrics } from './telemetry/hbone-metrics.js';
export type {
  DestinationServiceLabels,
  EndpointWorkload,
  IstioReporter,
  IstioRequestLabelName,
  IstioRequestLabels,
  IstioTcpLabelName,
  IstioTcpLabels,
  PeerDescription,
  PeerSide,
  ServiceDescription,
  WorkloadLabelSuffix,
  WorkloadLabels,
} from './telemetry/istio-labels.js';
export {
  DEFAULT_CANONICAL_REVISION,
  formatEndpointWorkload,
  ISTIO_REQUEST_LABELS,
  ISTIO_TCP_LABELS,
  parseEndpointWorkload,
  serviceLabels,
  UNKNOWN_LABEL_VALUE,
  workloadLabels,
} from './telemetry/istio-labels.js';
export type { HandshakeLimits } from './tls/handshake-limits.js';
export { DEFAULT_HANDSHAKE_LIMITS } from './tls/handshake-limits.js';
export { secureContextOptions } from './tls/mesh-tls.js';
// The Envoy subset of the wire contract: every name in these two modules is public API.
export * from './wire/envoy-names.js';
export * from './wire/envoy-resources.js';
export type { XdsClientDump, XdsDelta, XdsResourceType, XdsSubscription } from './xds/delta-ads-client.js';
export { DELTA_ADS_METHOD, DeltaAdsClient } from './xds/delta-ads-client.js';
export { XdsClientMetrics } from './xds/xds-metrics.js';
export {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  ENVOY_WAYPOINT_FILES,
  envoyWaypointProtos,
  LISTENER_TYPE_URL,
  meshProtos,
  ROUTE_CONFIGURATION_TYPE_URL,
  WAYPOINT_TYPE_URLS,
} from './xds/xds-protos.js';
