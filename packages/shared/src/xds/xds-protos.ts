/**
 * Protocol buffer definitions, parsed once per process from the .proto files: Envoy's v3 APIs as
 * shipped with the gRPC xDS package (envoy-api, xds, googleapis, protoc-gen-validate), and Istio's
 * workload, authorization and CA APIs from this package's proto/ directory (istio-wire/istio-protos.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { ISTIO_PROTO_DIR, ISTIO_PROTO_FILES } from '../istio-wire/istio-protos.js';

const require = createRequire(import.meta.url);

/** Include directories, searched in order for each import. */
function includeDirs(): string[] {
  const xdsPackage = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
  return [
    ISTIO_PROTO_DIR,
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xdsPackage, 'deps', d)),
    protobufjsDir,
  ];
}

/** Envoy's discovery service. */
export const ENVOY_DISCOVERY_FILES = ['envoy/service/discovery/v3/ads.proto'] as const;

/**
 * Envoy's files for what a waypoint is sent (docs/waypoint-xds.md): the four resource types and
 * every typed config they may carry. The control plane encodes with them, the waypoint decodes.
 */
export const ENVOY_WAYPOINT_FILES = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
] as const;

const roots = new Map<string, protobuf.Root>();

/**
 * A resolved Root holding `files` and their imports. Parsing is deterministic and the Root is not
 * mutated after resolution, so one Root per file set is shared by every caller in the process.
 */
export function loadProtos(files: readonly string[]): protobuf.Root {
  const key = [...files].sort().join('\n');
  const cached = roots.get(key);
  if (cached) return cached;
  const dirs = includeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('/') && existsSync(target)) return target;
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    // protobufjs supplies google/protobuf/{any,struct,duration,...} itself.
    return target;
  };
  root.loadSync([...files], { keepCase: false });
  root.resolveAll();
  roots.set(key, root);
  return root;
}

/** The Root with Envoy's ADS and Istio's APIs: what the ztunnel, the control plane and the CA use. */
export function meshProtos(): protobuf.Root {
  return loadProtos([...ENVOY_DISCOVERY_FILES, ...ISTIO_PROTO_FILES]);
}

/** The Root with the waypoint's Envoy types (parsed once per process). */
export function envoyWaypointProtos(): protobuf.Root {
  return loadProtos(ENVOY_WAYPOINT_FILES);
}

/** Envoy's type URLs a waypoint subscribes to. */
export const LISTENER_TYPE_URL = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT_TYPE_URL =
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

/** The four, in the order Envoy requests them. */
export const WAYPOINT_TYPE_URLS = [
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
  CLUSTER_TYPE_URL,
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
] as const;
