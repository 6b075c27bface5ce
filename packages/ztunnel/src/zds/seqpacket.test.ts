import { mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeFds,
  errnoOf,
  isNetnsFd,
  type SeqpacketMessage,
  SeqpacketServer,
  SeqpacketSocket,
} from './seqpacket.js';

const openFds = () => readdirSync('/proc/self/fd').length;

describe('SeqpacketSocket', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const socketPath = () => {
    const d = mkdtempSync(join(tmpdir(), 'seqpacket-'));
    dirs.push(d);
    return join(d, 's.sock');
  };

  it('carries whole messages both ways, with an fd beside one, and closes every fd once', async () => {
    const before = openFds();
    const path = socketPath();
    const got: SeqpacketMessage[] = [];
    let serverSide: SeqpacketSocket | undefined;
    const closed = new Promise<void>((resolve) => {
      const server = SeqpacketServer.listen(path, (s) => {
        serverSide = s;
        s.start({
          onMessage: (m) => {
            got.push(m);
            if (got.length === 2) s.send(Buffer.from('ack'));
          },
          onClose: () => {
            server.close();
            resolve();
          },
        });
      });
    });
    const client = SeqpacketSocket.connect(path);
    const replies: string[] = [];
    const replied = new Promise<void>((resolve) =>
      client.start({
        onMessage: (m) => {
          replies.push(m.data.toString());
          resolve();
        },
        onClose: () => {},
      }),
    );
    const devnull = openSync('/dev/null', 'r');
    client.send(Buffer.from('first'), devnull);
    client.send(Buffer.from('second'));
    await replied;
    expect(got.map((m) => [m.data.toString(), m.fds.length, m.truncated])).toEqual([
      ['first', 1, false],
      ['second', 0, false],
    ]);
    expect(replies).toEqual(['ack']);
    // The received fd is a new descriptor for the same file.
    expect(got[0]?.fds[0]).not.toBe(devnull);
    expect(isNetnsFd(got[0]?.fds[0] as number)).toBe(false);
    closeFds(got[0]?.fds ?? []);
    closeFds([devnull]);
    client.close();
    await closed;
    expect(serverSide?.closed).toBe(true);
    const after = openFds();
    console.log(`open fds before ${before}, after ${after}`);
    expect(after).toBe(before);
  });

  it('tells a network namespace from another file', () => {
    const ns = openSync('/proc/self/ns/net', 'r');
    const uts = openSync('/proc/self/ns/uts', 'r');
    try {
      expect(isNetnsFd(ns)).toBe(true);
      expect(isNetnsFd(uts)).toBe(false);
    } finally {
      closeFds([ns, uts]);
    }
  });

  it('names the errno when nothing listens at the path', () => {
    const path = socketPath();
    let err: unknown;
    try {
      SeqpacketSocket.connect(path);
    } catch (e) {
      err = e;
    }
    expect(errnoOf(err)).toBe('ENOENT');
  });
});
