/**
 * `status.conditions` as the leader writes them, decided without I/O: what a set of conditions the
 * control plane owns should be, compared with what the object holds, gives either nothing to write
 * or the full list of our conditions (istiod's statusqueue translateToPatch). Only our own types are
 * compared and written; another writer's conditions are not ours to judge.
 */

/** A condition the control plane owns, as istiod's model.Condition. */
export interface OwnedCondition {
  readonly status: boolean;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

/** Our condition types, each with what it should be, or null: it should not be there. */
export type ConditionSet = ReadonlyMap<string, OwnedCondition | null>;

/** A condition as the API holds it (metav1.Condition / istio.meta.v1alpha1.IstioCondition). */
export interface KubeCondition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

interface ReadCondition {
  type: string;
  status?: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** The conditions of a status read from the API; anything malformed is skipped. */
export function readConditions(status: unknown): ReadCondition[] {
  const list = (status as { conditions?: unknown } | undefined)?.conditions;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (c): c is ReadCondition =>
      typeof c === 'object' && c !== null && typeof (c as ReadCondition).type === 'string',
  );
}

function same(want: OwnedCondition, have: ReadCondition): boolean {
  return (
    (have.status === 'True') === want.status &&
    (have.status === 'True' || have.status === 'False') &&
    (have.reason ?? '') === want.reason &&
    (have.message ?? '') === want.message &&
    (have.observedGeneration ?? 0) === want.observedGeneration
  );
}

/**
 * Our conditions to write, or undefined when the object already says exactly that (so a write
 * never causes another). A condition whose status did not change keeps its lastTransitionTime.
 */
export function conditionsToWrite(
  desired: ConditionSet,
  status: unknown,
  now: string,
): KubeCondition[] | undefined {
  const current = new Map(readConditions(status).map((c) => [c.type, c]));
  let changed = false;
  const out: KubeCondition[] = [];
  for (const [type, want] of desired) {
    const have = current.get(type);
    if (!want) {
      if (have) changed = true;
      continue;
    }
    if (!have || !same(want, have)) changed = true;
    const statusText = want.status ? 'True' : 'False';
    out.push({
      type,
      status: statusText,
      reason: want.reason,
      message: want.message,
      observedGeneration: want.observedGeneration,
      lastTransitionTime:
        have?.status === statusText && have.lastTransitionTime ? have.lastTransitionTime : now,
    });
  }
  return changed ? out : undefined;
}
