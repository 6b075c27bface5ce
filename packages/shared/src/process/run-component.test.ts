import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fail, ok, type Result } from '../result.js';
import { type ComponentProcess, type ComponentSettings, runComponent } from './run-component.js';

interface Settings extends ComponentSettings {
  readonly node: string;
}

/** A process that records what the component did to it, and lets a test send signals. */
class FakeProcess implements ComponentProcess {
  readonly stderrText: string[] = [];
  readonly exits: number[] = [];
  readonly listeners = new Map<string, Array<() => void>>();
  readonly stderr = { write: (chunk: string) => this.stderrText.push(chunk) };
  constructor(readonly env: Record<string, string | undefined>) {}
  on(signal: string, listener: () => void): void {
    this.listeners.set(signal, [...(this.listeners.get(signal) ?? []), listener]);
  }
  exit(code: number): void {
    this.exits.push(code);
  }
  signal(name: string): void {
    for (const l of this.listeners.get(name) ?? []) l();
  }
}

class FakeApp {
  closes = 0;
  constructor(
    private readonly startResult: () => Promise<object>,
    private readonly closeResult: () => Promise<void> = async () => {},
  ) {}
  start(): Promise<object> {
    return this.startResult();
  }
  close(): Promise<void> {
    this.closes += 1;
    return this.closeResult();
  }
}

function logSink(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines };
}

const parse = (env: Readonly<Record<string, string | undefined>>): Result<Settings> =>
  env.NODE
    ? ok({ node: env.NODE, logLevel: 'info', drainMs: 5000 })
    : fail({ path: 'NODE', message: 'is required' });

const tick = () => new Promise((r) => setImmediate(r));

function run(proc: FakeProcess, app: FakeApp, sink = logSink()) {
  return runComponent(proc, {
    name: 'demo',
    parseSettings: parse,
    logBindings: (s) => ({ node: s.node }),
    create: () => app,
    logDestination: sink.stream,
  });
}

describe('runComponent', () => {
  it('prints every refused setting and exits 2 without creating the component', async () => {
    const proc = new FakeProcess({});
    let created = false;
    await runComponent(proc, {
      name: 'demo',
      parseSettings: parse,
      logBindings: () => ({}),
      create: () => {
        created = true;
        return new FakeApp(async () => ({}));
      },
    });
    expect(proc.exits).toEqual([2]);
    expect(proc.stderrText.join('')).toBe('demo: invalid settings: NODE: is required\n');
    expect(created).toBe(false);
    expect(proc.listeners.size).toBe(0);
  });

  it('logs the bound addresses with the component bindings once started, and does not exit', async () => {
    const proc = new FakeProcess({ NODE: 'node0' });
    const sink = logSink();
    await run(proc, new FakeApp(async () => ({ inbound: '0.0.0.0:15008' })), sink);
    expect(proc.exits).toEqual([]);
    const listening = sink.lines().find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ node: 'node0', inbound: '0.0.0.0:15008', level: 30 });
    expect([...proc.listeners.keys()].sort()).toEqual(['SIGINT', 'SIGTERM']);
  });

  it('exits 1 and logs the cause when the start fails', async () => {
    const proc = new FakeProcess({ NODE: 'node0' });
    const sink = logSink();
    await run(proc, new FakeApp(async () => Promise.reject(new Error('port in use'))), sink);
    expect(proc.exits).toEqual([1]);
    const fatal = sink.lines().find((l) => l.level === 60);
    expect(fatal?.msg).toBe('demo failed to start: port in use');
    expect(proc.listeners.size).toBe(0);
  });

  it('drains once on SIGTERM or SIGINT, however many signals come, then exits 0', async () => {
    for (const signal of ['SIGTERM', 'SIGINT']) {
      const proc = new FakeProcess({ NODE: 'node0' });
      const sink = logSink();
      const app = new FakeApp(async () => ({}));
      await run(proc, app, sink);
      proc.signal(signal);
      proc.signal('SIGTERM');
      proc.signal('SIGINT');
      await tick();
      expect(app.closes).toBe(1);
      expect(proc.exits).toEqual([0]);
      expect(sink.lines().find((l) => l.msg === 'draining')).toMatchObject({ signal, drainMs: 5000 });
    }
  });

  it('exits 1 when the drain fails', async () => {
    const proc = new FakeProcess({ NODE: 'node0' });
    const sink = logSink();
    const app = new FakeApp(
      async () => ({}),
      async () => Promise.reject(new Error('stuck')),
    );
    await run(proc, app, sink);
    proc.signal('SIGTERM');
    await tick();
    expect(proc.exits).toEqual([1]);
    expect(sink.lines().find((l) => l.msg === 'drain failed')).toBeDefined();
  });
});
