// The public API of @ambient/ztunnel: what the end-to-end suites and the benchmarks use. The node
// agent runs from main.ts; anything else is internal to the package.

export type { ZdsWorkloadInfo } from '@ambient/shared';
export { ZTUNNEL_V8_FLAGS } from './app/v8-flags.js';
export { type ZtunnelAddresses, ZtunnelApp } from './app/ztunnel-app.js';
export type { ZtunnelConfig } from './app/ztunnel-config.js';
export { parseZtunnelConfig } from './app/ztunnel-config.js';
export { compilePolicy } from './authz/authorization.js';
export { installCapture, removeCapture } from './capture/inpod-capture.js';
export { NetnsSockets, ZTUNNEL_MARK } from './capture/netns-sockets.js';
export type { LocalConfig } from './config/local-config.js';
export { decodeLocalConfig } from './config/local-config.js';
export { InpodProxy } from './proxy/inpod-proxy.js';
export { ZtunnelState } from './state/ztunnel-state.js';
export { TcpMetrics } from './telemetry/tcp-metrics.js';
export type { AddressValue } from './xds/workload-xds.js';
export { addressResourceType, authorizationResourceType } from './xds/workload-xds.js';
export { XdsConfigSource } from './xds/xds-config-source.js';
export type { SeqpacketMessage } from './zds/seqpacket.js';
export { SeqpacketServer, SeqpacketSocket } from './zds/seqpacket.js';
export type { ZdsErrorCode } from './zds/zds-error.js';
export { ZdsError } from './zds/zds-error.js';
export type { ZdsLog, ZdsServerOptions } from './zds/zds-server.js';
export { ZdsServer } from './zds/zds-server.js';
