/**
 * Istio's in-pod capture rule set (istio-cni, ambient in-pod mode), rendered for iptables-restore
 * and ip(8). Installed inside an enrolled pod's network namespace; removing it restores the pod's
 * plain networking.
 */
export const INPOD_MARK = 0x539;
export const INPOD_CONNMARK = 0x111;
export const INPOD_ROUTE_TABLE = 100;
export const OUTBOUND_CAPTURE_PORT = 15001;
export const INBOUND_PLAINTEXT_PORT = 15006;
export const INBOUND_HBONE_PORT = 15008;

const hex = (n: number) => `0x${n.toString(16)}`;

/** `iptables-restore --noflush` input: own chains in mangle and nat, jumped to from the built-ins. */
export function inpodIptables(): string {
  const mark = `${hex(INPOD_MARK)}/0xfff`;
  const connmark = `${hex(INPOD_CONNMARK)}/0xfff`;
  return `${[
    '*mangle',
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

/** `iptables-restore --noflush` input that removes everything inpodIptables() added. */
export function inpodIptablesRemoval(): string {
  return `${[
    '*mangle',
    '-D PREROUTING -j ISTIO_PRERT',
    '-D OUTPUT -j ISTIO_OUTPUT',
    '-F ISTIO_PRERT',
    '-F ISTIO_OUTPUT',
    '-X ISTIO_PRERT',
    '-X ISTIO_OUTPUT',
    'COMMIT',
    '*nat',
    '-D PREROUTING -j ISTIO_PRERT',
    '-D OUTPUT -j ISTIO_OUTPUT',
    '-F ISTIO_PRERT',
    '-F ISTIO_OUTPUT',
    '-X ISTIO_PRERT',
    '-X ISTIO_OUTPUT',
    'COMMIT',
  ].join('\n')}\n`;
}

/** ip(8) batch lines: replies marked by the connmark are delivered locally (to ztunnel). */
export function inpodRoutes(): string[] {
  return [
    `rule add fwmark ${hex(INPOD_CONNMARK)}/0xfff pref 32764 lookup ${INPOD_ROUTE_TABLE}`,
    `route add local 0.0.0.0/0 dev lo table ${INPOD_ROUTE_TABLE}`,
  ];
}

export function inpodRoutesRemoval(): string[] {
  return [
    `rule del fwmark ${hex(INPOD_CONNMARK)}/0xfff pref 32764 lookup ${INPOD_ROUTE_TABLE}`,
    `route del local 0.0.0.0/0 dev lo table ${INPOD_ROUTE_TABLE}`,
  ];
}
