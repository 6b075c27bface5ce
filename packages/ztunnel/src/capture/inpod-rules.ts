/**
 * Istio's in-pod capture rule set (istio-cni, ambient in-pod mode), rendered for iptables-restore
 * and ip(8). Installed inside an enrolled pod's network namespace; removing it restores the pod's
 * plain networking. Rules are rendered against what the pod already has (its iptables-save and
 * `ip rule` output), so installing over a previous node agent's rules, any number of times, ends
 * with exactly one copy of each, and removing leaves none.
 */
export const INPOD_MARK = 0x539;
export const INPOD_CONNMARK = 0x111;
export const INPOD_ROUTE_TABLE = 100;
export const INPOD_RULE_PREF = 32764;
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_PLAINTEXT_PORT = 15006;
export const INBOUND_HBONE_PORT = 15008;

const hex = (n: number) => `0x${n.toString(16)}`;

/** The chains this rule set owns, in both tables it uses. */
const OWN_CHAINS = ['ISTIO_PRERT', 'ISTIO_OUTPUT'] as const;
const TABLES = ['mangle', 'nat'] as const;
type Table = (typeof TABLES)[number];

/** What one table of a pod's iptables-save holds of ours: own chains, and jumps into them. */
interface TableState {
  readonly chains: Set<string>;
  /** `-A BUILTIN -j ISTIO_*` lines, as saved (one per copy). */
  readonly jumps: string[];
}

/** Reads the parts of `iptables-save` output that belong to this rule set. */
export function parseSavedRules(saved: string): Record<Table, TableState> {
  const state = {
    mangle: { chains: new Set<string>(), jumps: [] as string[] },
    nat: { chains: new Set<string>(), jumps: [] as string[] },
  };
  let table: TableState | undefined;
  for (const raw of saved.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      const name = line.slice(1);
      table = name === 'mangle' || name === 'nat' ? state[name] : undefined;
      continue;
    }
    if (!table) continue;
    const chain = /^:(\S+)/.exec(line)?.[1];
    if (chain && (OWN_CHAINS as readonly string[]).includes(chain)) table.chains.add(chain);
    const jump = /^-A (\S+) -j (\S+)$/.exec(line);
    if (jump && !(OWN_CHAINS as readonly string[]).includes(jump[1] as string)) {
      if ((OWN_CHAINS as readonly string[]).includes(jump[2] as string)) table.jumps.push(line);
    }
  }
  return state;
}

/** Deletes every saved copy of a jump into our chains (iptables-restore deletes one per line). */
function deleteJumps(t: TableState): string[] {
  return t.jumps.map((line) => `-D ${line.slice('-A '.length)}`);
}

/**
 * `iptables-restore --noflush` input that leaves exactly one copy of the rule set, whatever of it
 * `saved` (the pod's current iptables-save) already holds: stale jumps are deleted, and declaring
 * an existing chain flushes it before its rules are added again. Each table commits atomically.
 */
export function inpodIptables(saved = ''): string {
  const state = parseSavedRules(saved);
  const mark = `${hex(INPOD_MARK)}/0xfff`;
  const connmark = `${hex(INPOD_CONNMARK)}/0xfff`;
  return `${[
    '*mangle',
    ...deleteJumps(state.mangle),
    ':ISTIO_PRERT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    '-A PREROUTING -j ISTIO_PRERT',
    '-A OUTPUT -j ISTIO_OUTPUT',
    // Traffic ztunnel sent into the pod (marked) gets a connmark, so that replies...
    `-A ISTIO_PRERT -m mark --mark ${mark} -j CONNMARK --set-xmark ${connmark}`,
    // ...carry it again on the way out and are routed back to ztunnel's transparent socket.
    `-A ISTIO_OUTPUT -m connmark --mark ${connmark} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
    'COMMIT',
    '*nat',
    ...deleteJumps(state.nat),
    ':ISTIO_PRERT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    '-A PREROUTING -j ISTIO_PRERT',
    '-A OUTPUT -j ISTIO_OUTPUT',
    `-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport ${INBOUND_HBONE_PORT} -m mark ! --mark ${mark} -j REDIRECT --to-ports ${INBOUND_PLAINTEXT_PORT}`,
    `-A ISTIO_OUTPUT -p tcp -m mark --mark ${mark} -j ACCEPT`,
    '-A ISTIO_OUTPUT -o lo -j ACCEPT',
    `-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark ${mark} -j REDIRECT --to-ports ${OUTBOUND_CAPTURE_PORT}`,
    'COMMIT',
  ].join('\n')}\n`;
}

/**
 * `iptables-restore --noflush` input that removes every part of the rule set `saved` holds (every
 * copy of a jump, then the chains), or '' when there is nothing to remove.
 */
export function inpodIptablesRemoval(saved: string): string {
  const state = parseSavedRules(saved);
  const lines: string[] = [];
  for (const table of TABLES) {
    const t = state[table];
    if (t.jumps.length === 0 && t.chains.size === 0) continue;
    lines.push(`*${table}`, ...deleteJumps(t));
    for (const chain of OWN_CHAINS) if (t.chains.has(chain)) lines.push(`-F ${chain}`);
    for (const chain of OWN_CHAINS) if (t.chains.has(chain)) lines.push(`-X ${chain}`);
    lines.push('COMMIT');
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The policy rule, as ip(8) takes it after `rule add` or `rule del`. */
const RULE = `fwmark ${hex(INPOD_CONNMARK)}/0xfff pref ${INPOD_RULE_PREF} lookup ${INPOD_ROUTE_TABLE}`;
const RULE_SHOWN = new RegExp(
  `^${INPOD_RULE_PREF}:\\s+from all fwmark ${hex(INPOD_CONNMARK)}/0xfff lookup ${INPOD_ROUTE_TABLE}\\s*$`,
);

/** How many copies of our policy rule `ip rule show` lists. */
export function countInpodRules(ruleShow: string): number {
  return ruleShow.split('\n').filter((l) => RULE_SHOWN.test(l.trim())).length;
}

/**
 * ip(8) lines that leave exactly one policy rule given `ruleShow` (`ip rule show` in the pod), and
 * the local route: replies marked by the connmark are delivered locally (to ztunnel).
 */
export function inpodRoutes(ruleShow = ''): string[] {
  const have = countInpodRules(ruleShow);
  const rules =
    have === 0 ? [`rule add ${RULE}`] : Array.from({ length: have - 1 }, () => `rule del ${RULE}`);
  return [...rules, `route replace local 0.0.0.0/0 dev lo table ${INPOD_ROUTE_TABLE}`];
}

/**
 * ip(8) lines that remove every copy of the policy rule, and the route table when `routeShow`
 * (`ip route show table 100`, empty when the table does not exist) lists anything.
 */
export function inpodRoutesRemoval(ruleShow: string, routeShow: string): string[] {
  return [
    ...Array.from({ length: countInpodRules(ruleShow) }, () => `rule del ${RULE}`),
    ...(routeShow.trim() ? [`route flush table ${INPOD_ROUTE_TABLE}`] : []),
  ];
}
