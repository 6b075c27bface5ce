import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import type net from 'node:net';
import { promisify } from 'node:util';
import { splice } from '@ambient/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inpodIptables, inpodIptablesRemoval, inpodRoutes, inpodRoutesRemoval } from './inpod-rules.js';
import { NetnsSockets, ZTUNNEL_MARK } from './netns-sockets.js';

const isRoot = process.getuid?.() === 0;
const tag = `t${process.pid % 100_000}`;
const CLI = `${tag}-cli`;
const POD = `${tag}-pod`;
const CLI_IP = '198.18.200.2';
const POD_IP = '198.18.200.3';

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A small node program run inside a namespace; resolves once it prints "ready". */
function app(ns: string, code: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`app in ${ns} exited with ${code}`)));
  });
}

const run = promisify(execFile);

/**
 * Runs a one-shot TCP client inside a namespace and returns what it read. Asynchronous: the
 * connection may be captured by listeners in this very process.
 */
async function clientIn(ns: string, host: string, port: number): Promise<string> {
  const code = `const s=require('net').connect(${port},'${host}');let b='';s.on('data',d=>b+=d);s.on('end',()=>{process.stdout.write(b)});s.on('error',e=>{process.stdout.write('ERR '+e.message)})`;
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', code], {
    timeout: 10_000,
  });
  return stdout;
}

const children: ChildProcess[] = [];
const servers: net.Server[] = [];

describe.skipIf(!isRoot)('netns sockets with the in-pod capture rules (root, real namespaces)', () => {
  let sockets: NetnsSockets;
  const inbound: string[] = [];
  const outbound: string[] = [];
  const podNs = `/var/run/netns/${POD}`;

  beforeAll(async () => {
    sockets = NetnsSockets.load();
    for (const ns of [CLI, POD]) sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', `${tag}a`, 'type', 'veth', 'peer', 'name', `${tag}b`]);
    sh('ip', ['link', 'set', `${tag}a`, 'netns', CLI]);
    sh('ip', ['link', 'set', `${tag}b`, 'netns', POD]);
    for (const [ns, dev, ip] of [
      [CLI, `${tag}a`, CLI_IP],
      [POD, `${tag}b`, POD_IP],
    ] as const) {
      sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await app(
      POD,
      `require('net').createServer(s=>s.end('peer='+s.remoteAddress)).listen(8080,'0.0.0.0',()=>console.log('ready'))`,
    );
    await app(
      CLI,
      `require('net').createServer(s=>s.end('hello '+s.remoteAddress)).listen(9090,'0.0.0.0',()=>console.log('ready'))`,
    );
  });

  afterAll(() => {
    for (const c of children) c.kill();
    for (const s of servers) s.close();
    for (const ns of [CLI, POD]) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  });

  it('before enrollment, the pod is reached directly and sees the client address', async () => {
    expect(await clientIn(CLI, POD_IP, 8080)).toBe(`peer=${CLI_IP}`);
  });

  it('after enrollment, inbound and outbound TCP are captured, the original destination is recovered, and the app still sees the client address', async () => {
    sh('ip', ['netns', 'exec', POD, 'iptables-restore', '--noflush'], inpodIptables());
    for (const line of inpodRoutes()) sh('ip', ['-n', POD, ...line.split(' ')]);
    // Inbound plaintext: deliver to the original destination from the client's own address.
    servers.push(
      await sockets.listen(podNs, { port: 15006, transparent: true }, async (down) => {
        const dst = sockets.originalDst(down);
        inbound.push(`${down.remoteAddress}->${dst.host}:${dst.port}`);
        const up = await sockets.connect(podNs, {
          target: dst,
          source: down.remoteAddress as string,
          mark: ZTUNNEL_MARK,
        });
        await splice(down, up);
      }),
    );
    // Outbound: leave the pod with our mark, so the rules let the connection through.
    servers.push(
      await sockets.listen(podNs, { port: 15001, transparent: true }, async (down) => {
        const dst = sockets.originalDst(down);
        outbound.push(`${down.remoteAddress}->${dst.host}:${dst.port}`);
        const up = await sockets.connect(podNs, { target: dst, mark: ZTUNNEL_MARK });
        await splice(down, up);
      }),
    );
    expect(await clientIn(CLI, POD_IP, 8080)).toBe(`peer=${CLI_IP}`);
    expect(inbound).toEqual([`${CLI_IP}->${POD_IP}:8080`]);
    expect(await clientIn(POD, CLI_IP, 9090)).toBe(`hello ${POD_IP}`);
    expect(outbound).toEqual([`${POD_IP}->${CLI_IP}:9090`]);
  });

  it('removing the rules restores plain networking without restarting the app', async () => {
    for (const s of servers.splice(0)) s.close();
    const saved = sh('ip', ['netns', 'exec', POD, 'iptables-save']);
    sh('ip', ['netns', 'exec', POD, 'iptables-restore', '--noflush'], inpodIptablesRemoval(saved));
    const routes = sh('ip', ['-n', POD, 'route', 'show', 'table', '100']);
    for (const line of inpodRoutesRemoval(sh('ip', ['-n', POD, 'rule', 'show']), routes)) {
      sh('ip', ['-n', POD, ...line.split(' ')]);
    }
    expect(sh('ip', ['netns', 'exec', POD, 'iptables-save'])).not.toContain('ISTIO');
    const before = inbound.length;
    expect(await clientIn(CLI, POD_IP, 8080)).toBe(`peer=${CLI_IP}`);
    expect(await clientIn(POD, CLI_IP, 9090)).toBe(`hello ${POD_IP}`);
    expect(inbound).toHaveLength(before);
  });
});
