/**
 * The node agent's reconciler (upstream cni/pkg/nodeagent/informers.go, net_linux.go,
 * meshdataplane_linux.go, cni-watcher.go): for every pod on this node, what it should be
 * (decideEnrollment) against what it is (rules installed in its netns, handed to ztunnel).
 *
 * Invariants, as upstream keeps them:
 * - Enrolling installs the capture rules first and only then hands the netns to ztunnel; a pod
 *   whose rules are in place stays captured when ztunnel is down or refuses (fail closed), and the
 *   hand-over is retried until a ztunnel acknowledges it.
 * - Un-enrolling a running pod removes its rules first, then takes it back from ztunnel; a pod that
 *   ended or was deleted is only taken back (its netns is gone).
 * - Work on one pod is serialized, whoever asked (informer, plugin event, retry).
 */
import type { Logger } from 'pino';
import {
  DEFAULT_EXCLUDED_NAMESPACES,
  decideEnrollment,
  type PodView,
  podTerminated,
} from '../enroll/enrollment.js';
import { CniError } from '../errors.js';
import type { PluginAddEvent, PluginAddReply } from './plugin-event.js';
import type { ZtunnelLink } from './ztunnel-link.js';

/**
 * Decisions under which a running pod is checked for rules a previous agent left: only pods the
 * selectors leave out. A pod with a sidecar is never touched (its own iptables use ISTIO_* chains),
 * nor a host-network pod (its netns is the node's).
 */
const STALE_RULES_CHECKED: ReadonlySet<string> = new Set(['not_selected', 'opted_out']);

/** Installs and removes the in-pod capture rules (inside the netns at a path). */
export interface CaptureRules {
  install(netnsPath: string): Promise<void>;
  remove(netnsPath: string): Promise<boolean>;
}

/** Finds the netns of running pods (the /proc scan). */
export interface NetnsFinder {
  find(
    wanted: ReadonlyMap<string, { readonly ips: readonly string[] }>,
  ): Promise<Map<string, { netnsPath: string }>>;
}

/** Reads the API server directly, for a pod the informers have not delivered yet. */
export interface KubeReader {
  /** The pod, or undefined when the API server does not have it. */
  getPod(namespace: string, name: string): Promise<PodView | undefined>;
  /** The namespace's labels, or undefined when it does not exist. */
  getNamespaceLabels(name: string): Promise<Record<string, string> | undefined>;
}

export interface NodeAgentInputs {
  readonly link: ZtunnelLink;
  readonly capture: CaptureRules;
  readonly finder: NetnsFinder;
  readonly kube: KubeReader;
  readonly logger: Logger;
  readonly excludedNamespaces?: readonly string[];
  /** Retry backoff: upstream's workqueue goes from 5 ms doubling to 5 s. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

/** What the agent holds for a pod it captured. */
export interface CapturedPod {
  readonly netnsPath: string;
  /** ztunnel acknowledged the workload. */
  linked: boolean;
}

export class NodeAgent {
  private readonly pods = new Map<string, PodView>();
  private readonly namespaces = new Map<string, Record<string, string>>();
  private readonly netns = new Map<string, string>();
  private readonly captured = new Map<string, CapturedPod>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly retries = new Map<string, { timer: NodeJS.Timeout | undefined; attempt: number }>();
  private closed = false;
  private readonly counts = { enrolled: 0, unenrolled: 0, failures: 0 };

  constructor(private readonly inputs: NodeAgentInputs) {}

  get stats() {
    return { ...this.counts, captured: this.captured.size, pending: this.retries.size };
  }

  /** The captured pods by UID (a copy). */
  capturedPods(): Map<string, CapturedPod> {
    return new Map([...this.captured].map(([uid, c]) => [uid, { ...c }]));
  }

  /** A pod on this node was added or changed. */
  podChanged(pod: PodView): void {
    this.pods.set(pod.uid, pod);
    this.reconcileSoon(pod.uid);
  }

  /** A pod on this node was deleted. */
  podDeleted(pod: PodView): void {
    this.pods.delete(pod.uid);
    this.reconcileSoon(pod.uid);
  }

  /** A namespace was added or changed (undefined labels: deleted): its pods are decided again. */
  namespaceChanged(name: string, labels: Record<string, string> | undefined): void {
    if (labels === undefined) this.namespaces.delete(name);
    else this.namespaces.set(name, labels);
    for (const pod of this.pods.values()) if (pod.namespace === name) this.reconcileSoon(pod.uid);
  }

  /**
   * Once the informers delivered their first lists: finds in /proc the netns of every running pod,
   * then reconciles every pod. A pod that is not to be captured but still holds our rules (a
   * previous agent captured it; its label went while no agent ran) has them removed: enrollment
   * state lives in the pods' netns, not in the agent. Resolves when the scan and that clean-up are
   * done; resolves with the number of pods found.
   */
  async enrollRunning(): Promise<number> {
    const wanted = new Map<string, PodView>();
    for (const pod of this.pods.values()) {
      const d = this.decide(pod);
      if (!this.netns.has(pod.uid) && (d.enroll || STALE_RULES_CHECKED.has(d.reason)))
        wanted.set(pod.uid, pod);
    }
    const found = wanted.size
      ? await this.inputs.finder.find(wanted)
      : new Map<string, { netnsPath: string }>();
    let cleaned = 0;
    for (const [uid, f] of found) {
      const pod = wanted.get(uid) as PodView;
      if (!this.netns.has(uid)) this.netns.set(uid, f.netnsPath);
      if (this.decide(pod).enroll) continue;
      const removed = await this.serialized(uid, () => this.inputs.capture.remove(f.netnsPath)).catch(
        (err: unknown) => {
          this.inputs.logger.warn(
            { err, pod: `${pod.namespace}/${pod.name}` },
            'could not check a pod for stale capture rules',
          );
          return false;
        },
      );
      if (removed) {
        cleaned += 1;
        this.inputs.logger.info(
          { pod: `${pod.namespace}/${pod.name}`, netns: f.netnsPath },
          'stale capture rules removed',
        );
      }
    }
    this.inputs.logger.info(
      { wanted: wanted.size, found: found.size, cleaned },
      'running pods scanned in /proc',
    );
    for (const uid of this.pods.keys()) this.reconcileSoon(uid);
    return found.size;
  }

  /**
   * A pod's sandbox is being set up (the plugin's ADD): resolves once the pod is captured, or is
   * not to be; rejects when it could not be captured (the plugin then fails the sandbox).
   */
  async pluginAdd(ev: PluginAddEvent): Promise<PluginAddReply> {
    if (this.closed) throw new CniError('CNI_ERR_CLOSED');
    let pod = [...this.pods.values()].find((p) => p.namespace === ev.podNamespace && p.name === ev.podName);
    if (!pod || (ev.podUid && pod.uid !== ev.podUid)) {
      // The informer has not delivered it yet (the usual case for a brand-new pod): ask the API.
      const fetched = await this.inputs.kube.getPod(ev.podNamespace, ev.podName).catch((err: unknown) => {
        throw new CniError('CNI_ERR_KUBE', `get pod ${ev.podNamespace}/${ev.podName}`, { cause: err });
      });
      if (!fetched) throw new CniError('CNI_ERR_POD_UNKNOWN', `${ev.podNamespace}/${ev.podName}`);
      if (ev.podUid && fetched.uid !== ev.podUid)
        throw new CniError(
          'CNI_ERR_POD_MISMATCH',
          `${ev.podNamespace}/${ev.podName} is ${fetched.uid}, not ${ev.podUid}`,
        );
      pod = fetched;
      if (!this.pods.has(pod.uid)) this.pods.set(pod.uid, pod);
    }
    if (!this.namespaces.has(pod.namespace)) {
      const labels = await this.inputs.kube.getNamespaceLabels(pod.namespace).catch((err: unknown) => {
        throw new CniError('CNI_ERR_KUBE', `get namespace ${pod.namespace}`, { cause: err });
      });
      if (labels && !this.namespaces.has(pod.namespace)) this.namespaces.set(pod.namespace, labels);
    }
    const uid = pod.uid;
    // Recorded whatever the decision: a pod enrolled later is captured in its current sandbox.
    this.netns.set(uid, ev.netns);
    const decision = this.decide(pod);
    if (!decision.enroll) return { enrolled: false, reason: decision.reason };
    const current = pod;
    await this.serialized(uid, () => this.ensureCaptured(current, ev.netns));
    return { enrolled: true, reason: decision.reason };
  }

  close(): void {
    this.closed = true;
    for (const r of this.retries.values()) if (r.timer) clearTimeout(r.timer);
    this.retries.clear();
  }

  private decide(pod: PodView) {
    return decideEnrollment(
      pod,
      this.namespaces.get(pod.namespace),
      this.inputs.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES,
    );
  }

  private serialized<T>(uid: string, work: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(uid) ?? Promise.resolve();
    const next = prev.then(work, work);
    const settled = next.catch(() => undefined);
    this.locks.set(uid, settled);
    void settled.then(() => {
      if (this.locks.get(uid) === settled) this.locks.delete(uid);
    });
    return next;
  }

  private reconcileSoon(uid: string): void {
    if (this.closed) return;
    const pending = this.retries.get(uid);
    if (pending?.timer) {
      clearTimeout(pending.timer);
      pending.timer = undefined;
    }
    void this.serialized(uid, () => this.reconcile(uid)).then(
      () => this.retries.delete(uid),
      (err: unknown) => this.retryLater(uid, err),
    );
  }

  private retryLater(uid: string, err: unknown): void {
    if (this.closed) return;
    this.counts.failures += 1;
    const r = this.retries.get(uid) ?? { timer: undefined, attempt: 0 };
    const initial = this.inputs.retryInitialMs ?? 5;
    const delay = Math.min(this.inputs.retryMaxMs ?? 5000, initial * 2 ** r.attempt);
    r.attempt += 1;
    const pod = this.pods.get(uid);
    this.inputs.logger.warn(
      { err, pod: pod && `${pod.namespace}/${pod.name}`, uid, attempt: r.attempt, delayMs: delay },
      'pod reconcile failed; retrying',
    );
    r.timer = setTimeout(() => {
      r.timer = undefined;
      this.reconcileSoon(uid);
    }, delay);
    r.timer.unref();
    this.retries.set(uid, r);
  }

  private async reconcile(uid: string): Promise<void> {
    if (this.closed) return;
    const pod = this.pods.get(uid);
    const cap = this.captured.get(uid);
    if (!pod) {
      this.netns.delete(uid);
      if (cap) await this.release(uid, undefined, 'pod deleted');
      return;
    }
    const decision = this.decide(pod);
    if (!decision.enroll) {
      if (cap) await this.release(uid, podTerminated(pod) ? undefined : cap.netnsPath, decision.reason);
      return;
    }
    let netnsPath = this.netns.get(uid);
    if (!netnsPath && pod.ips.length > 0) {
      // Enrolled after it started (a namespace labeled later): find its netns as at startup.
      netnsPath = (await this.inputs.finder.find(new Map([[uid, pod]]))).get(uid)?.netnsPath;
      if (netnsPath) this.netns.set(uid, netnsPath);
    }
    if (!netnsPath) {
      // Not started yet: its sandbox's plugin ADD brings the netns.
      this.inputs.logger.debug({ pod: `${pod.namespace}/${pod.name}` }, 'enrolled pod has no netns yet');
      return;
    }
    await this.ensureCaptured(pod, netnsPath);
  }

  private async ensureCaptured(pod: PodView, netnsPath: string): Promise<void> {
    let cap = this.captured.get(pod.uid);
    if (!cap || cap.netnsPath !== netnsPath) {
      try {
        await this.inputs.capture.install(netnsPath);
      } catch (err) {
        throw new CniError('CNI_ERR_CAPTURE', `${pod.namespace}/${pod.name}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      cap = { netnsPath, linked: false };
      this.captured.set(pod.uid, cap);
    }
    if (cap.linked) return;
    try {
      await this.inputs.link.addWorkload(pod.uid, netnsPath, {
        name: pod.name,
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
      });
    } catch (err) {
      // The rules stay: the pod's traffic goes nowhere rather than around ztunnel.
      throw new CniError('CNI_ERR_ZTUNNEL', `${pod.namespace}/${pod.name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    cap.linked = true;
    this.counts.enrolled += 1;
    this.inputs.logger.info(
      { pod: `${pod.namespace}/${pod.name}`, uid: pod.uid, netns: netnsPath },
      'pod captured',
    );
  }

  /** Removes the rules (when `netnsPath` is given: the pod still runs), then takes it from ztunnel. */
  private async release(uid: string, netnsPath: string | undefined, reason: string): Promise<void> {
    if (netnsPath) {
      try {
        await this.inputs.capture.remove(netnsPath);
      } catch (err) {
        throw new CniError('CNI_ERR_CAPTURE', `remove from ${netnsPath}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    await this.inputs.link.removeWorkload(uid).catch((err: unknown) => {
      throw new CniError('CNI_ERR_ZTUNNEL', `remove ${uid}: ${(err as Error).message}`, { cause: err });
    });
    this.captured.delete(uid);
    this.counts.unenrolled += 1;
    this.inputs.logger.info({ uid, reason, rulesRemoved: netnsPath !== undefined }, 'pod released');
  }
}
