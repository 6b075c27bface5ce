/** Where Istio's .proto files live: in this package, beside the types that describe them. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/shared/proto, from src/istio-wire and dist/istio-wire alike. */
export const ISTIO_PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../proto');

/** Istio's APIs, relative to ISTIO_PROTO_DIR. */
export const ISTIO_PROTO_FILES = [
  'istio/workload/workload.proto',
  'istio/security/authorization.proto',
  'istio/ca/ca.proto',
] as const;
