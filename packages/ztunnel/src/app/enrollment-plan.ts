/**
 * What one reconcile does to the pods of this node, decided without touching them. Capture rules
 * are removed only from network namespaces no wanted pod uses, so a pod that is (again) enrolled
 * is never opened by a release that was queued before.
 */
export interface EnrollmentState {
  /** Pods that should be served now: uid -> netns path. */
  readonly wanted: ReadonlyMap<string, string>;
  /** Pods served now: uid -> netns path. */
  readonly served: ReadonlyMap<string, string>;
  /** Releases not done yet (an earlier removal failed): netns path -> pod. */
  readonly releasing: ReadonlyMap<string, string>;
  /**
   * First reconcile after start only: every pod network namespace of this node (netns path ->
   * pod). Pods un-enrolled while no node agent ran still carry the rules it left.
   */
  readonly sweep?: ReadonlyMap<string, string>;
}

export interface EnrollmentPlan {
  /** Served pods to stop serving (their capture is then released). */
  readonly stop: readonly string[];
  /** Network namespaces to remove capture from: netns path -> pod. */
  readonly release: ReadonlyMap<string, string>;
  /** Wanted pods to enroll (install capture, start the proxy). */
  readonly enroll: readonly string[];
}

export function planEnrollment(s: EnrollmentState): EnrollmentPlan {
  // A pod now in another netns (a pod runtime handed a new one) is served afresh there.
  const moved = [...s.served].filter(([uid, path]) => s.wanted.has(uid) && s.wanted.get(uid) !== path);
  const stop = [...s.served.keys()].filter((uid) => !s.wanted.has(uid)).concat(moved.map(([uid]) => uid));
  const release = new Map<string, string>(s.sweep ?? []);
  for (const [path, pod] of s.releasing) release.set(path, pod);
  for (const uid of stop) release.set(s.served.get(uid) as string, uid);
  for (const path of s.wanted.values()) release.delete(path);
  const enroll = [...s.wanted.keys()].filter((uid) => !s.served.has(uid) || moved.some(([m]) => m === uid));
  return { stop, release, enroll };
}
