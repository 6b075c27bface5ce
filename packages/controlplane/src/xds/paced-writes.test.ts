import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PacedWrites } from './paced-writes.js';

/** A stream that holds every write's callback until told to flush. */
class FakeStream extends EventEmitter {
  readonly written: string[] = [];
  readonly callbacks: Array<() => void> = [];
  writableEnded = false;
  destroyed = false;
  constructor(readonly name: string) {
    super();
  }
  write(bytes: Buffer, done: () => void): boolean {
    this.written.push(bytes.toString());
    this.callbacks.push(done);
    return true;
  }
  flush(): void {
    for (const cb of this.callbacks.splice(0)) cb();
  }
}

const large = (tag: string) => Buffer.from(`${tag}`.padEnd(16, '.'));
const small = (tag: string) => Buffer.from(tag);
const opts = { largeBytes: 16, maxLarge: 2 };

describe('PacedWrites', () => {
  it('writes small responses at once, in order', () => {
    const w = new PacedWrites(opts);
    const s = new FakeStream('a');
    w.write(s, small('1'));
    w.write(s, small('2'));
    expect(s.written).toEqual(['1', '2']);
    expect(w.writing).toBe(0);
  });

  it('writes at most maxLarge large responses at once, the others when a turn frees', () => {
    const w = new PacedWrites(opts);
    const [a, b, c] = [new FakeStream('a'), new FakeStream('b'), new FakeStream('c')];
    w.write(a, large('A'));
    w.write(b, large('B'));
    w.write(c, large('C'));
    expect([a.written.length, b.written.length, c.written.length]).toEqual([1, 1, 0]);
    expect(w.writing).toBe(2);
    a.flush();
    expect(c.written).toEqual([large('C').toString()]);
    expect(w.writing).toBe(2);
    b.flush();
    c.flush();
    expect(w.writing).toBe(0);
  });

  it('keeps a stream’s order: a small response waits behind its large one', () => {
    const w = new PacedWrites(opts);
    const [a, b, c] = [new FakeStream('a'), new FakeStream('b'), new FakeStream('c')];
    w.write(a, large('A'));
    w.write(b, large('B'));
    w.write(c, large('C'));
    w.write(c, small('c2'));
    expect(c.written).toEqual([]);
    a.flush();
    expect(c.written).toEqual([large('C').toString()]);
    c.flush();
    expect(c.written).toEqual([large('C').toString(), 'c2']);
  });

  it('gives a cancelled stream’s turn to the next and drops what the ended stream still had', () => {
    const w = new PacedWrites(opts);
    const [a, b, c] = [new FakeStream('a'), new FakeStream('b'), new FakeStream('c')];
    w.write(a, large('A'));
    w.write(a, small('a2'));
    w.write(b, large('B'));
    w.write(c, large('C'));
    // A cancelled gRPC call never calls back its write.
    a.writableEnded = true;
    a.emit('cancelled');
    expect(a.written).toEqual([large('A').toString()]);
    expect(c.written).toEqual([large('C').toString()]);
    expect(w.writing).toBe(2);
    // A stream that ended while waiting for a turn is skipped.
    const d = new FakeStream('d');
    const e = new FakeStream('e');
    w.write(d, large('D'));
    w.write(e, large('E'));
    d.destroyed = true;
    b.flush();
    expect(d.written).toEqual([]);
    expect(e.written).toEqual([large('E').toString()]);
    c.flush();
    e.flush();
    expect(w.writing).toBe(0);
  });

  it('never gives a turn to a stream cancelled while it waited, even one not marked ended', () => {
    const w = new PacedWrites(opts);
    const [a, b, c, d] = [new FakeStream('a'), new FakeStream('b'), new FakeStream('c'), new FakeStream('d')];
    w.write(a, large('A'));
    w.write(b, large('B'));
    w.write(c, large('C'));
    w.write(d, large('D'));
    c.emit('cancelled');
    a.flush();
    expect(c.written).toEqual([]);
    expect(d.written).toEqual([large('D').toString()]);
    w.write(c, small('late'));
    expect(c.written).toEqual([]);
    b.flush();
    d.flush();
    expect(w.writing).toBe(0);
  });
});
