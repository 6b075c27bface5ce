/**
 * `istio.security` (packages/shared/proto/istio/security/authorization.proto; field numbers as
 * upstream istio/ztunnel proto/authorization.proto) as protobufjs decodes it; conventions as in
 * istio-workload.ts. The proto field number follows each field.
 */

import type { Extension } from './istio-workload.js';

type EnumValue<E> = E[keyof E];

export const Scope = { GLOBAL: 0, NAMESPACE: 1, WORKLOAD_SELECTOR: 2 } as const;
export type Scope = EnumValue<typeof Scope>;

export const Action = { ALLOW: 0, DENY: 1 } as const;
export type Action = EnumValue<typeof Action>;

/** The resource behind `type.googleapis.com/istio.security.Authorization`. */
export interface Authorization {
  readonly name: string; // 1
  readonly namespace: string; // 2
  readonly scope: Scope; // 3
  readonly action: Action; // 4
  /** OR of rules; no rule matches nothing. */
  readonly rules: readonly Rule[]; // 5
  readonly dryRun: boolean; // 6
  readonly extensions: readonly Extension[]; // 7
}

export interface Rule {
  /** AND of clauses. */
  readonly clauses: readonly Clause[]; // 1
}

export interface Clause {
  /** OR of matches. */
  readonly matches: readonly Match[]; // 2
}

/** Every set field must match (AND); within a field, any value (OR). */
export interface Match {
  readonly namespaces: readonly StringMatch[]; // 1
  readonly notNamespaces: readonly StringMatch[]; // 2
  readonly serviceAccounts: readonly ServiceAccountMatch[]; // 11
  readonly notServiceAccounts: readonly ServiceAccountMatch[]; // 12
  readonly principals: readonly StringMatch[]; // 3
  readonly notPrincipals: readonly StringMatch[]; // 4
  readonly sourceIps: readonly Address[]; // 5
  readonly notSourceIps: readonly Address[]; // 6
  readonly destinationIps: readonly Address[]; // 7
  readonly notDestinationIps: readonly Address[]; // 8
  readonly destinationPorts: readonly number[]; // 9
  readonly notDestinationPorts: readonly number[]; // 10
  readonly extensions: readonly Extension[]; // 13
}

/** A CIDR: address bytes (4 or 16) and prefix length. */
export interface Address {
  readonly address: Uint8Array; // 1
  readonly length: number; // 2
}

export interface ServiceAccountMatch {
  readonly namespace: string; // 1
  readonly serviceAccount: string; // 2
}

export interface StringMatch {
  /** oneof match_type */
  readonly matchType?: 'exact' | 'prefix' | 'suffix' | 'presence';
  readonly exact: string; // 1
  readonly prefix: string; // 2
  readonly suffix: string; // 3
  /** google.protobuf.Empty */
  readonly presence: Readonly<Record<string, never>> | null; // 4
}
