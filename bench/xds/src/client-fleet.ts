/**
 * The bench's xDS clients: `clients.js` (or count-only `count-clients.js`) processes, each running a share of the node agents'
 * clients, told what to do over stdin ("solo", "start", "stop") and reporting JSON lines on stdout
 * (see clients.ts), collected here in arrival order. Every wait is bounded in time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { endProcess } from './teardown.js';

// The built entry, from the sources (vitest) as from dist.
const DIST = join(dirname(fileURLToPath(import.meta.url)), '../dist');
/** What the clients do with a response: decode it as ztunnel does, or only count its resources. */
export type ClientMode = 'decode' | 'count';
const ENTRY: Record<ClientMode, string> = {
  decode: join(DIST, 'clients.js'),
  count: join(DIST, 'count-clients.js'),
};

/** One line a client process printed (which fields are set says what happened). */
export interface Report {
  /** The process of this first client index has loaded its modules. */
  ready?: number;
  solo?: number;
  synced?: number;
  change?: number;
  client?: number;
  at: number;
  resources?: number;
  /** Count-only clients: the size of the first Address response. */
  bytes?: number;
  /** Client index of a watched-namespace report: the state after a response touching it. */
  ns?: number;
  /** Workloads of the watched namespace the client holds, and how many of them are HBONE. */
  workloads?: number;
  hbone?: number;
  /** The response was ACKed (not NACKed). */
  acked?: boolean;
}

export interface ClientFleetOptions {
  /** host:port of the control plane's xDS server. */
  readonly target: string;
  readonly rootCertFile: string;
  /** JSON map token -> { node }: client i connects as node<i> with that node's token. */
  readonly tokensFile: string;
  readonly clients: number;
  readonly processes: number;
  readonly nodeArgs?: readonly string[];
  /** 'decode' (the default): ztunnel's client and decoders (clients.ts); 'count': count-clients.ts. */
  readonly mode?: ClientMode;
  /** Report the workloads of this namespace after every response that touches it. */
  readonly watchNamespace?: string;
}

export class ClientFleet {
  readonly reports: Report[] = [];
  private readonly waiters: Array<() => void> = [];

  private constructor(private readonly children: readonly ChildProcess[]) {}

  static spawn(opts: ClientFleetOptions): ClientFleet {
    const children: ChildProcess[] = [];
    const fleet = new ClientFleet(children);
    const per = Math.ceil(opts.clients / opts.processes);
    for (let p = 0; p < opts.processes; p++) {
      const first = p * per;
      const count = Math.min(per, opts.clients - first);
      if (count <= 0) break;
      const child = spawn(
        process.execPath,
        [
          ...(opts.nodeArgs ?? []),
          ENTRY[opts.mode ?? 'decode'],
          opts.target,
          opts.rootCertFile,
          opts.tokensFile,
          String(first),
          String(count),
          ...(opts.watchNamespace ? [opts.watchNamespace] : []),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      children.push(child);
      let buf = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          fleet.reports.push(JSON.parse(buf.slice(0, nl)) as Report);
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
        }
        for (const w of fleet.waiters.splice(0)) w();
      });
    }
    return fleet;
  }

  pids(): number[] {
    return this.children.flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  }

  /** Sends a command to the first client process, or to all. */
  send(command: 'solo' | 'start' | 'stop', to: 'first' | 'all' = 'all'): void {
    for (const c of to === 'first' ? this.children.slice(0, 1) : this.children)
      c.stdin?.write(`${command}\n`);
  }

  async waitFor(pred: () => boolean, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const dead = this.children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead)
        throw new Error(`a client process exited (${dead.exitCode ?? dead.signalCode}) waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Asks the processes to close their clients and exit, then ends those still running. */
  async stop(graceMs = 1000): Promise<void> {
    this.send('stop');
    // Let clients exit on their own first (profiles and reports are written at exit).
    const alive = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.race([
      Promise.all(alive.map((c) => new Promise((resolve) => c.once('exit', resolve)))),
      new Promise((resolve) => setTimeout(resolve, graceMs)),
    ]);
    await Promise.all(this.children.map((c) => endProcess(c)));
  }
}
