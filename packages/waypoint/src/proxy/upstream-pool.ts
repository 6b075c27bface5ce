/**
 * Connections from the waypoint to endpoints. An endpoint in the mesh (`tunnel: hbone`) is reached
 * by an HBONE stream to `podIP:15008` with `:authority podIP:port`, presenting the waypoint's own
 * identity and expecting the endpoint's; other endpoints get plain TCP. On top of those streams:
 * HTTP/1.1 with keep-alive (an Agent per tunnel kind, pooling per endpoint), or one HTTP/2
 * session per endpoint.
 *
 * Pool invariant: an HBONE stream carries one endpoint's traffic, and the HBONE client pools its
 * connections by (waypoint identity, endpoint identity, endpoint address), so no connection is
 * ever shared across identities.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { formatAuthority, type HboneClient, type SpiffeId } from '@ambient/shared';
import { UNLIMITED, type UpstreamCluster, type UpstreamEndpoint } from '../config/waypoint-config.js';
import { WaypointError } from './waypoint-errors.js';

export const HBONE_PORT = 15008;

/**
 * Envoy's default upstream idle timeout (`common_http_protocol_options.idle_timeout`), used when
 * the cluster sets none. There is no cap on the number of idle HTTP/1.1 streams: the cluster's
 * max_connections bounds them all.
 */
export const UPSTREAM_IDLE_TIMEOUT_MS = 60 * 60 * 1000;

export interface UpstreamPoolInputs {
  readonly hbone: HboneClient;
  /** The waypoint's own identity, presented to every endpoint. */
  readonly identity: SpiffeId;
  /** Plain TCP to an endpoint that is not in the mesh. */
  readonly dialTcp: (host: string, port: number, timeoutMs: number) => Promise<Duplex>;
  readonly maxSocketsPerEndpoint?: number;
}

/** Options the agents read besides Node's own. */
interface EndpointRequestOptions extends http.RequestOptions {
  endpoint: UpstreamEndpoint;
  connectTimeoutMs: number;
  /** The original client's address, sent in the CONNECT's Forwarded header. */
  clientIp?: string;
}

/** Node's http client calls these socket methods; an HBONE stream has no socket of its own. */
function socketLike(stream: Duplex): Duplex {
  const s = stream as Duplex & Record<string, unknown>;
  // An endpoint that closes an idle keep-alive connection half-closes the stream. Like a TCP
  // socket without allowHalfOpen, finish our side too, so the stream closes and leaves the pool
  // instead of taking the next request into a connection nobody reads.
  stream.once('end', () => {
    if (!stream.writableEnded) stream.end();
  });
  for (const m of ['setKeepAlive', 'setNoDelay', 'ref', 'unref'])
    if (typeof s[m] !== 'function') s[m] = () => s;
  if (typeof s.setTimeout !== 'function') s.setTimeout = () => s;
  return stream;
}

/** Each endpoint's last pool key, with the client address it was made for. */
const lastKeys = new WeakMap<
  UpstreamEndpoint,
  { readonly clientIp: string | undefined; readonly key: string }
>();

/**
 * The pool key of an endpoint for one client: an upstream stream or session carries one endpoint's
 * traffic and its CONNECT one client's Forwarded address, so neither is shared across them.
 */
export function endpointKey(ep: UpstreamEndpoint, clientIp: string | undefined): string {
  // Kept per endpoint object: a key made once is hashed once, not rebuilt on every request.
  const last = lastKeys.get(ep);
  if (last !== undefined && last.clientIp === clientIp) return last.key;
  const key = `${ep.identity?.toString() ?? ''}|${ep.address}|${ep.port}|${ep.tunnel}|${clientIp ?? ''}`;
  lastKeys.set(ep, { clientIp, key });
  return key;
}

/** An HTTP/2 upstream session and its use, for the cluster's connection limits. */
interface SessionEntry {
  readonly key: string;
  readonly opened: Promise<http2.ClientHttp2Session>;
  session: http2.ClientHttp2Session | undefined;
  readonly idleMs: number;
  /** Streams it has been given, counted when a request takes its slot (max_requests_per_connection). */
  given: number;
  /** Requests waiting for it to open before they open their stream. */
  waiting: number;
  /** Streams open on it. */
  active: number;
  /** Takes no new stream; closes once `active` and `waiting` are 0. */
  retired: boolean;
  idleTimer: LongTimer | undefined;
  ageTimer: LongTimer | undefined;
}

/** Node runs a timer of more than 2^31 - 1 ms after 1 ms; longer ones are armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface LongTimer {
  clear(): void;
}

/** An unref'd timer for any duration in ms (an idle timeout or max duration of 30 days works). */
export function longTimer(ms: number, fn: () => void): LongTimer {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = setTimeout(
      () => {
        if (left > MAX_TIMER_MS) arm(left - MAX_TIMER_MS);
        else fn();
      },
      Math.min(left, MAX_TIMER_MS),
    );
    timer.unref();
  };
  arm(ms);
  return { clear: () => clearTimeout(timer) };
}

/** An endpoint could not be reached (answered 503 UF when no retry succeeds). */
export class UpstreamConnectError extends WaypointError {
  constructor(message: string) {
    super('WP_ERR_UPSTREAM_CONNECT', message);
  }
}

class EndpointAgent extends http.Agent {
  /** Connections being opened: they count towards max_connections before they exist. */
  connecting = 0;

  constructor(
    private readonly connectStream: (o: EndpointRequestOptions) => Promise<Duplex>,
    maxSockets: number,
    /** The cluster's max_connections: requests beyond it wait in the agent (pending). */
    readonly maxConnections: number,
  ) {
    super({
      keepAlive: true,
      maxSockets,
      // Every stream may wait idle for the next request: a smaller cap closed the streams past it
      // after each burst of more concurrent requests and opened them again for the next.
      maxFreeSockets: maxSockets,
      scheduling: 'lifo',
      ...(maxConnections < UNLIMITED && { maxTotalSockets: maxConnections }),
    });
  }

  // Streams carry one client's Forwarded address, so they are pooled per client as well.
  override getName(options?: http.ClientRequestArgs): string {
    return `${super.getName(options)}|${(options as EndpointRequestOptions | undefined)?.clientIp ?? ''}`;
  }

  // Node's Agent calls this with the request's options; the endpoint travels in them.
  override createConnection(
    options: unknown,
    callback: (err: Error | null, stream?: Duplex) => void,
  ): undefined {
    this.connecting += 1;
    this.connectStream(options as EndpointRequestOptions).then(
      (s) => {
        this.connecting -= 1;
        callback(null, socketLike(s));
      },
      (err: unknown) => {
        this.connecting -= 1;
        callback(new UpstreamConnectError((err as Error).message));
      },
    );
    return undefined;
  }
}

/** Entries across an Agent's per-origin lists (sockets, free sockets, queued requests). */
function count(m: NodeJS.ReadOnlyDict<unknown[]>): number {
  return Object.values(m).reduce((n, list) => n + (list?.length ?? 0), 0);
}

export class UpstreamPool {
  /** One agent per cluster, so that max_connections and pending requests are the cluster's. */
  private readonly agents = new Map<string, EndpointAgent>();
  /** The HTTP/2 session in use per cluster, endpoint and client (retired ones are not here). */
  private readonly sessions = new Map<string, SessionEntry>();

  constructor(private readonly inputs: UpstreamPoolInputs) {}

  private agent(cluster: UpstreamCluster): EndpointAgent {
    const limit = cluster.circuitBreakers.maxConnections;
    let agent = this.agents.get(cluster.name);
    if (!agent || agent.maxConnections !== limit) {
      // A changed limit takes a new agent; the old one's connections close as they go idle.
      agent?.destroy();
      agent = new EndpointAgent(
        (o) => this.connect(o.endpoint, o.connectTimeoutMs, o.clientIp),
        this.inputs.maxSocketsPerEndpoint ?? 1024,
        limit,
      );
      this.agents.set(cluster.name, agent);
    }
    return agent;
  }

  /**
   * Whether a new HTTP/1.1 request to the cluster would overflow: every connection it may open is
   * busy and max_pending_requests are already waiting (Envoy answers 503 UO).
   */
  wouldOverflow(cluster: UpstreamCluster): boolean {
    if (cluster.circuitBreakers.maxConnections >= UNLIMITED) return false;
    const agent = this.agents.get(cluster.name);
    if (!agent) return false;
    const free = count(agent.freeSockets);
    const open = count(agent.sockets) + free + agent.connecting;
    if (free > 0 || open < cluster.circuitBreakers.maxConnections) return false;
    return count(agent.requests) >= cluster.circuitBreakers.maxPendingRequests;
  }

  /** A raw stream to an endpoint: HBONE when it is in the mesh, plain TCP otherwise. */
  async connect(ep: UpstreamEndpoint, connectTimeoutMs: number, clientIp?: string): Promise<Duplex> {
    if (ep.tunnel === 'hbone') {
      // The decoder refuses an HBONE endpoint without a valid identity; fail closed regardless.
      if (!ep.identity) throw new UpstreamConnectError(`endpoint ${ep.address} has no identity`);
      return this.inputs.hbone.connect({
        source: this.inputs.identity,
        destination: ep.identity,
        address: { host: ep.address, port: HBONE_PORT },
        authority: formatAuthority({ host: ep.address, port: ep.port }),
        // The cluster's connect_timeout bounds TCP, TLS and SETTINGS to the endpoint's node agent.
        connectTimeoutMs,
        // The destination's node agent trusts this from its waypoint only, as Istio's does.
        ...(clientIp && { forwarded: `for="${clientIp}"` }),
      });
    }
    return this.inputs.dialTcp(ep.address, ep.port, connectTimeoutMs);
  }

  /** An HTTP/1.1 request to an endpoint over a pooled keep-alive stream. */
  http1Request(
    cluster: UpstreamCluster,
    ep: UpstreamEndpoint,
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
    clientIp?: string,
  ): http.ClientRequest {
    const options: EndpointRequestOptions = {
      agent: this.agent(cluster),
      host: ep.address,
      port: ep.port,
      method,
      path,
      headers,
      endpoint: ep,
      connectTimeoutMs: cluster.connectTimeoutMs,
      ...(clientIp && { clientIp }),
      // Header names keep the case the client sent only on HTTP/1.1; values pass as they are.
      setHost: false,
    };
    return http.request(options);
  }

  /**
   * A request stream on an HTTP/2 session to an endpoint, opened once per cluster, endpoint and
   * client and reused until it closes or reaches the cluster's limits
   * (`common_http_protocol_options`, as Envoy's pool applies them): a session that has been given
   * max_requests_per_connection streams, or is older than max_connection_duration, takes no new
   * stream and closes gracefully once its streams have ended; so does one with no open stream for
   * the idle timeout. A request that finds the session full opens the next one at once, so that a
   * burst opens its sessions side by side rather than one after another.
   */
  async http2Stream(
    ep: UpstreamEndpoint,
    cluster: UpstreamCluster,
    clientIp: string | undefined,
    headers: http2.OutgoingHttpHeaders,
    /** Asked once the session is ready: false (the attempt was settled meanwhile) opens no stream. */
    wanted: () => boolean,
  ): Promise<http2.ClientHttp2Stream | undefined> {
    const key = `${cluster.name}|${endpointKey(ep, clientIp)}`;
    // A session that closed while this request waited for it (a GOAWAY, a broken tunnel): the
    // request takes a slot on the next one. The bound only stops an endpoint that closes every
    // session at once.
    for (let tries = 0; tries < 8; tries++) {
      let entry = this.sessions.get(key);
      if (!entry) {
        entry = this.openSession(key, ep, cluster, clientIp);
        this.sessions.set(key, entry);
      }
      // The slot is taken now, before the session is ready: the next request past the limit
      // opens another session instead of waiting for this one.
      entry.waiting += 1;
      entry.given += 1;
      const max = cluster.maxRequestsPerConnection;
      if (max !== undefined && entry.given >= max) this.retire(entry);
      let session: http2.ClientHttp2Session;
      try {
        session = await entry.opened;
      } finally {
        entry.waiting -= 1;
      }
      if (session.closed || session.destroyed) {
        this.retire(entry);
        continue;
      }
      if (!wanted()) {
        this.closeIfDone(entry);
        return undefined;
      }
      const stream = session.request(headers);
      entry.active += 1;
      entry.idleTimer?.clear();
      stream.once('close', () => {
        entry.active -= 1;
        if (entry.retired) this.closeIfDone(entry);
        else if (entry.active === 0) this.armIdle(entry);
      });
      return stream;
    }
    throw new UpstreamConnectError(`no usable HTTP/2 session to ${ep.address}:${ep.port}`);
  }

  /** Takes a session out of use: no new stream; it closes (GOAWAY) once its streams have ended. */
  private retire(entry: SessionEntry): void {
    if (this.sessions.get(entry.key) === entry) this.sessions.delete(entry.key);
    entry.retired = true;
    entry.idleTimer?.clear();
    this.closeIfDone(entry);
  }

  /**
   * Closes a retired session once no stream is open on it and no request still waits to open one
   * (Node's client refuses a stream it has not sent yet when its session closes).
   */
  private closeIfDone(entry: SessionEntry): void {
    const s = entry.session;
    if (!entry.retired || entry.active > 0 || entry.waiting > 0 || !s || s.closed || s.destroyed) return;
    s.close();
  }

  /** Idle as Envoy counts it: no open stream for the idle timeout (0: never). */
  private armIdle(entry: SessionEntry): void {
    if (entry.idleMs <= 0) return;
    entry.idleTimer?.clear();
    entry.idleTimer = longTimer(entry.idleMs, () => this.retire(entry));
  }

  private openSession(
    key: string,
    ep: UpstreamEndpoint,
    cluster: UpstreamCluster,
    clientIp: string | undefined,
  ): SessionEntry {
    const entry: SessionEntry = {
      key,
      opened: this.connect(ep, cluster.connectTimeoutMs, clientIp).then(
        (stream) =>
          new Promise<http2.ClientHttp2Session>((resolve, reject) => {
            const session = http2.connect(`http://${ep.address}:${ep.port}`, {
              createConnection: () => socketLike(stream) as never,
            });
            entry.session = session;
            session.once('connect', () => resolve(session));
            session.once('error', (err) => {
              this.retire(entry);
              reject(new UpstreamConnectError(err.message));
            });
            session.once('goaway', () => this.retire(entry));
            session.once('close', () => {
              this.retire(entry);
              entry.idleTimer?.clear();
              entry.ageTimer?.clear();
            });
            this.armIdle(entry);
            const maxMs = cluster.maxConnectionDurationMs;
            if (maxMs !== undefined) entry.ageTimer = longTimer(maxMs, () => this.retire(entry));
          }),
      ),
      session: undefined,
      idleMs: cluster.idleTimeoutMs ?? UPSTREAM_IDLE_TIMEOUT_MS,
      given: 0,
      waiting: 0,
      active: 0,
      retired: false,
      idleTimer: undefined,
      ageTimer: undefined,
    };
    entry.opened.catch(() => this.retire(entry));
    return entry;
  }

  /** Open upstream HTTP/1.1 streams and HTTP/2 sessions. */
  stats(): { http1Sockets: number; http1Free: number; http2Sessions: number } {
    const agents = [...this.agents.values()];
    return {
      http1Sockets: agents.reduce((n, a) => n + count(a.sockets), 0),
      http1Free: agents.reduce((n, a) => n + count(a.freeSockets), 0),
      http2Sessions: this.sessions.size,
    };
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    for (const e of this.sessions.values())
      e.opened.then(
        (x) => x.close(),
        () => {},
      );
    this.sessions.clear();
  }
}
