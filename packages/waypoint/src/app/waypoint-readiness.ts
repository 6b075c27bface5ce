/**
 * The waypoint's readiness endpoint (15021 `/healthz/ready`). Istio's waypoint is Envoy, probed
 * through pilot-agent (istio/istio pilot/cmd/pilot-agent/status/server.go `handleReadyProbe`),
 * which answers 503 when not ready; otherwise it answers as the node agent (shared `readinessReply`,
 * after istio/ztunnel src/readiness/server.rs), so both name their blockers the same way.
 */
import { type HttpHandler, type ReadinessReply, readinessReply, sendReadinessReply } from '@ambient/shared';

export function waypointReadinessReply(
  method: string,
  url: string,
  pending: readonly string[],
): ReadinessReply {
  return readinessReply(method, url, pending, { notReadyStatus: 503 });
}

/** The 15021 handler over the waypoint's current blockers. */
export function waypointReadinessHandler(pending: () => readonly string[]): HttpHandler {
  return (req, res) =>
    sendReadinessReply(res, waypointReadinessReply(req.method ?? '', req.url ?? '', pending()));
}
