import { fail, ok, type Problem, type Result } from '@ambient/shared';

export interface PodSpec {
  readonly name: string;
  readonly namespace: string;
  /** Index of the node the pod runs on. */
  readonly node: number;
  readonly serviceAccount?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface ServicePortSpec {
  readonly port: number;
  readonly targetPort: number;
  readonly name?: string;
}

export interface ServiceSpec {
  readonly name: string;
  readonly namespace: string;
  /** Pods whose labels include all of these are the service's endpoints. */
  readonly selector: Readonly<Record<string, string>>;
  readonly ports: readonly ServicePortSpec[];
}

export interface LabSpec {
  readonly nodes: number;
  readonly pods: readonly PodSpec[];
  readonly services: readonly ServiceSpec[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const MAX_NODES = 16;
export const MAX_PODS_PER_NODE = 200;
export const MAX_SERVICES = 4000;

/** Validates a lab spec, returning every problem with its field path. */
export function validateLabSpec(input: unknown): Result<LabSpec> {
  const problems: Problem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  const spec = input as Partial<LabSpec> | undefined;
  if (!spec || typeof spec !== 'object') return fail({ path: '', message: 'must be an object' });
  if (!Number.isInteger(spec.nodes) || (spec.nodes as number) < 1 || (spec.nodes as number) > MAX_NODES) {
    add('nodes', `must be an integer from 1 to ${MAX_NODES}`);
  }
  const pods = Array.isArray(spec.pods) ? spec.pods : [];
  if (!Array.isArray(spec.pods)) add('pods', 'must be a list');
  const seen = new Set<string>();
  const perNode = new Map<number, number>();
  pods.forEach((p, i) => {
    const path = `pods[${i}]`;
    if (!DNS_LABEL.test(String(p?.name))) add(`${path}.name`, 'must be a DNS label');
    if (!DNS_LABEL.test(String(p?.namespace))) add(`${path}.namespace`, 'must be a DNS label');
    if (!Number.isInteger(p?.node) || p.node < 0 || p.node >= (spec.nodes ?? 0)) {
      add(`${path}.node`, `must be a node index from 0 to ${(spec.nodes ?? 1) - 1}`);
    }
    if (p?.serviceAccount !== undefined && !DNS_LABEL.test(p.serviceAccount)) {
      add(`${path}.serviceAccount`, 'must be a DNS label');
    }
    const key = `${p?.namespace}/${p?.name}`;
    if (seen.has(key)) add(`${path}.name`, `duplicate pod ${key}`);
    seen.add(key);
    perNode.set(p?.node, (perNode.get(p?.node) ?? 0) + 1);
  });
  for (const [node, count] of perNode) {
    if (count > MAX_PODS_PER_NODE)
      add('pods', `node ${node} has ${count} pods, at most ${MAX_PODS_PER_NODE}`);
  }
  const services = Array.isArray(spec.services) ? spec.services : [];
  if (!Array.isArray(spec.services)) add('services', 'must be a list');
  if (services.length > MAX_SERVICES) add('services', `at most ${MAX_SERVICES}`);
  const seenSvc = new Set<string>();
  services.forEach((s, i) => {
    const path = `services[${i}]`;
    if (!DNS_LABEL.test(String(s?.name))) add(`${path}.name`, 'must be a DNS label');
    if (!DNS_LABEL.test(String(s?.namespace))) add(`${path}.namespace`, 'must be a DNS label');
    const key = `${s?.namespace}/${s?.name}`;
    if (seenSvc.has(key)) add(`${path}.name`, `duplicate service ${key}`);
    seenSvc.add(key);
    if (!s?.selector || typeof s.selector !== 'object') add(`${path}.selector`, 'must be a map of labels');
    if (!Array.isArray(s?.ports) || s.ports.length === 0) add(`${path}.ports`, 'must list at least one port');
    (Array.isArray(s?.ports) ? s.ports : []).forEach((p: ServicePortSpec, j: number) => {
      for (const field of ['port', 'targetPort'] as const) {
        const v = p?.[field];
        if (!Number.isInteger(v) || v < 1 || v > 65535)
          add(`${path}.ports[${j}].${field}`, 'must be a port from 1 to 65535');
      }
    });
  });
  return problems.length ? fail(problems) : ok(spec as LabSpec);
}
