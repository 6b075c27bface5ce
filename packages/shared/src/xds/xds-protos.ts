/**
 * Protocol buffer definitions, parsed once per process from the .proto files: Envoy's v3 APIs as
 * shipped with the gRPC xDS package (envoy-api, xds, googleapis, protoc-gen-validate), and Istio's
 * workload, authorization and CA APIs from this repository's proto/ directory.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** Include directories, searched in order for each import. */
function includeDirs(): string[] {
  const xdsPackage = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
  const ours = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../proto');
  return [
    ours,
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xdsPackage, 'deps', d)),
    protobufjsDir,
  ];
}

/** Istio's APIs, relative to proto/. */
export const ISTIO_PROTO_FILES = [
  'istio/workload/workload.proto',
  'istio/security/authorization.proto',
  'istio/ca/ca.proto',
] as const;

/** Envoy's discovery service; the waypoint adds its listener, route and cluster files. */
export const ENVOY_DISCOVERY_FILES = ['envoy/service/discovery/v3/ads.proto'] as const;

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

/** Istio's workload discovery type URLs (ztunnel's subscriptions). */
export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address';
export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization';
