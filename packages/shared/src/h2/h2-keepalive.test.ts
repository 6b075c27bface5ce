/**
 * Liveness of a client connection (H2Options.keepalive): a server that has been silent for the
 * interval is pinged; one that answers keeps the connection, one that reads but never answers
 * gets a GOAWAY and its streams fail. The server is a raw socket so that it can stay silent.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../testing/mesh-fixture.js';
import { H2Connection } from './h2-connection.js';
import { CLIENT_PREFACE, FLAG, FRAME, frameHeader, H2_ERROR } from './h2-frames.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const WINDOWS = { streamWindow: 1024 * 1024, connectionWindow: 4 * 1024 * 1024, maxConcurrentStreams: 100 };
const KEEPALIVE = { intervalMs: 100, timeoutMs: 200 };

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

function frames(all: Buffer): Frame[] {
  const out: Frame[] = [];
  let off = 0;
  while (off + 9 <= all.length) {
    const length = all.readUIntBE(off, 3);
    if (off + 9 + length > all.length) break;
    out.push({
      type: all[off + 3] as number,
      flags: all[off + 4] as number,
      id: all.readUInt32BE(off + 5) & 0x7fffffff,
      payload: all.subarray(off + 9, off + 9 + length),
    });
    off += 9 + length;
  }
  return out;
}

/** A client with keepalive on, one open stream, and a raw server that `answerPings` or not. */
async function setup(answerPings: boolean) {
  const received: Buffer[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    closers.push(() => s.destroy());
    s.write(frameHeader(0, FRAME.SETTINGS, 0, 0));
    let answered = 0;
    s.on('data', (d: Buffer) => {
      received.push(d);
      if (!answerPings) return;
      const pings = frames(Buffer.concat(received).subarray(CLIENT_PREFACE.length)).filter(
        (f) => f.type === FRAME.PING && f.flags === 0,
      );
      for (const p of pings.slice(answered)) {
        answered += 1;
        s.write(Buffer.concat([frameHeader(8, FRAME.PING, FLAG.ACK, 0), p.payload]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const conn = new H2Connection(socket, { role: 'client', ...WINDOWS, keepalive: KEEPALIVE });
  closers.push(() => conn.destroy());
  const answers: boolean[] = [];
  conn.on('keepalive', (ok: boolean) => answers.push(ok));
  await eventually(() => conn.settingsReceived);
  const stream = conn.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:80' });
  const sent = () => frames(Buffer.concat(received).subarray(CLIENT_PREFACE.length));
  return { conn, stream, answers, sent };
}

describe('H2Connection keepalive', () => {
  it('keeps a connection whose server answers its PINGs, with a stream open', async () => {
    const { conn, answers, sent } = await setup(true);
    await eventually(() => answers.length >= 3);
    expect(answers.every((ok) => ok)).toBe(true);
    expect(conn.destroyed).toBe(false);
    expect(sent().filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
  });

  it('closes a connection whose server reads but never answers: GOAWAY, and the open stream fails', async () => {
    const { conn, stream, answers, sent } = await setup(false);
    const started = Date.now();
    const err = await new Promise<NodeJS.ErrnoException>((r) => stream.once('error', r));
    const tookMs = Date.now() - started;
    console.log(
      `keepalive ${KEEPALIVE.intervalMs}/${KEEPALIVE.timeoutMs} ms: a server that never answers was given up after ${tookMs} ms`,
    );
    expect(err.code).toBe('ERR_H2_PEER_UNRESPONSIVE');
    expect(answers).toEqual([false]);
    expect(conn.destroyed).toBe(true);
    await eventually(() => sent().some((f) => f.type === FRAME.GOAWAY));
    const goaway = sent().find((f) => f.type === FRAME.GOAWAY) as Frame;
    expect(goaway.payload.readUInt32BE(4)).toBe(H2_ERROR.NO_ERROR);
    expect(goaway.payload.subarray(8).toString()).toBe('PING unanswered');
    expect(sent().filter((f) => f.type === FRAME.PING && f.flags === 0)).toHaveLength(1);
  });
});
