/**
 * Cluster DNS for KubeCluster: dnsmasq answers from a hosts file, and this watcher keeps that file
 * equal to the cluster's Services (`<name>.<namespace>.svc.cluster.local` -> cluster IP). dnsmasq
 * reads a `--hostsdir` file again whenever it is replaced, so no signal is needed.
 */
import { rename, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';

export interface ServiceRecord {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIp: string;
}

interface ServiceObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { clusterIP?: string };
}

export function serviceRecord(obj: ServiceObject): ServiceRecord | undefined {
  const name = obj.metadata?.name;
  const namespace = obj.metadata?.namespace;
  const ip = obj.spec?.clusterIP;
  // Headless Services (clusterIP None) have no single address to answer with.
  if (!name || !namespace || !ip || ip === 'None') return undefined;
  return { name, namespace, clusterIp: ip };
}

/** The hosts file: one line per Service, sorted so an unchanged set writes the same bytes. */
export function hostsFile(records: Iterable<ServiceRecord>, domain = 'cluster.local'): string {
  const lines = [...records]
    .map((r) => `${r.clusterIp} ${r.name}.${r.namespace}.svc.${domain}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export interface ClusterDnsWatchOptions {
  /** https://host:port of the API server. */
  readonly server: string;
  readonly token: string;
  readonly ca: Buffer;
  /** The hosts file dnsmasq reads (inside its --hostsdir). */
  readonly hostsPath: string;
  readonly signal: AbortSignal;
  readonly log?: (line: string) => void;
}

function request(
  opts: ClusterDnsWatchOptions,
  p: string,
  timeoutMs?: number,
): Promise<import('node:http').IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${opts.server}${p}`,
      {
        ca: opts.ca,
        headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json' },
        signal: opts.signal,
        ...(timeoutMs && { timeout: timeoutMs }),
      },
      resolve,
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function body(res: import('node:http').IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of res) s += chunk;
  return s;
}

/**
 * Lists the Services, writes the hosts file, then follows a watch, rewriting the file on every
 * change; starts over with a list when the watch ends or fails (410 Gone included).
 */
export async function watchServicesToHosts(opts: ClusterDnsWatchOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  const tmp = path.join(path.dirname(path.dirname(opts.hostsPath)), `.${path.basename(opts.hostsPath)}.tmp`);
  let written: string | undefined;
  const write = async (records: Map<string, ServiceRecord>) => {
    const text = hostsFile(records.values());
    if (text === written) return;
    // Written beside the directory and renamed in: dnsmasq never reads half a file.
    await writeFile(tmp, text);
    await rename(tmp, opts.hostsPath);
    written = text;
    log(`hosts: ${records.size} services`);
  };
  while (!opts.signal.aborted) {
    try {
      const list = await request(opts, '/api/v1/services', 10_000);
      if (list.statusCode !== 200) throw new Error(`list services: ${list.statusCode} ${await body(list)}`);
      const parsed = JSON.parse(await body(list)) as {
        metadata: { resourceVersion: string };
        items: ServiceObject[];
      };
      const records = new Map<string, ServiceRecord>();
      for (const item of parsed.items) {
        const r = serviceRecord(item);
        if (r) records.set(`${r.namespace}/${r.name}`, r);
      }
      await write(records);
      const watch = await request(
        opts,
        `/api/v1/services?watch=1&allowWatchBookmarks=true&resourceVersion=${parsed.metadata.resourceVersion}`,
      );
      if (watch.statusCode !== 200) throw new Error(`watch services: ${watch.statusCode}`);
      let buf = '';
      for await (const chunk of watch) {
        buf += chunk;
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
          if (!line.trim()) continue;
          const ev = JSON.parse(line) as { type: string; object: ServiceObject & { code?: number } };
          if (ev.type === 'ERROR') throw new Error(`watch error ${ev.object.code ?? ''}`);
          if (ev.type === 'BOOKMARK') continue;
          const key = `${ev.object.metadata?.namespace}/${ev.object.metadata?.name}`;
          const r = serviceRecord(ev.object);
          if (ev.type === 'DELETED' || !r) records.delete(key);
          else records.set(key, r);
          await write(records);
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      log(`services watch: ${(err as Error).message}; listing again`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
