/**
 * Weighted cluster choice as Envoy's WeightedClusterSpecifier: a random value modulo the total
 * weight lands in one cluster's band, bands laid out in configuration order.
 */
import type { WeightedCluster } from '../config/waypoint-config.js';

/** `random` is in [0, 1); undefined only when every weight is zero. */
export function pickWeightedCluster(
  clusters: readonly WeightedCluster[],
  random: number,
): string | undefined {
  const total = clusters.reduce((sum, c) => sum + c.weight, 0);
  if (total <= 0) return undefined;
  const point = Math.min(Math.floor(random * total), total - 1);
  let end = 0;
  for (const c of clusters) {
    end += c.weight;
    if (point < end) return c.cluster;
  }
  return undefined;
}
