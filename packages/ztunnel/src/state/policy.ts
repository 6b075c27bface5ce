/** An L4 authorization policy, as the proxy sees it, from the local config file or from xDS. */
export type PolicyScope = 'global' | 'namespace' | 'workload';
export type PolicyAction = 'allow' | 'deny';

export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly suffix?: string;
  /** Matches any present value ("*"). */
  readonly presence?: boolean;
}

/** A source identity's namespace and service account, in any trust domain (upstream `ServiceAccountMatch`). */
export interface ServiceAccountMatch {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface PolicyMatch {
  readonly namespaces?: readonly StringMatch[];
  readonly notNamespaces?: readonly StringMatch[];
  /** A field of its own, ANDed with `principals` as upstream's `RbacMatch`, never merged into it. */
  readonly serviceAccounts?: readonly ServiceAccountMatch[];
  readonly notServiceAccounts?: readonly ServiceAccountMatch[];
  readonly principals?: readonly StringMatch[];
  readonly notPrincipals?: readonly StringMatch[];
  /** CIDRs or single addresses. */
  readonly sourceIps?: readonly string[];
  readonly notSourceIps?: readonly string[];
  readonly destinationIps?: readonly string[];
  readonly notDestinationIps?: readonly string[];
  readonly destinationPorts?: readonly number[];
  readonly notDestinationPorts?: readonly number[];
}

export interface PolicyRule {
  readonly clauses: ReadonlyArray<{ readonly matches: readonly PolicyMatch[] }>;
}

export interface AuthorizationPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly scope: PolicyScope;
  readonly action: PolicyAction;
  readonly rules: readonly PolicyRule[];
  readonly dryRun?: boolean;
}
