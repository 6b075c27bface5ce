// The process around a component (ztunnel, waypoint, control plane): settings, logger, start,
// signals, exit codes. It touches the process only through the `ComponentProcess` it is given,
// so each `main.ts` stays the one place that hands over `process`, and tests pass a fake.
import { type DestinationStream, type Logger, pino } from 'pino';
import { formatProblems, type Result } from '../result.js';

/** The settings were refused; nothing was started. */
export const EXIT_INVALID_SETTINGS = 2;
/** The component failed to start, or failed to drain when asked to stop. */
export const EXIT_FAILURE = 1;
/** Stopped by a signal after a clean drain. */
export const EXIT_OK = 0;

/** The part of Node's `process` a component's process needs. */
export interface ComponentProcess {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stderr: { write(chunk: string): unknown };
  on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  exit(code: number): void;
}

/** What every component app offers: `start()` resolves with its bound addresses, `close()` drains. */
export interface RunnableComponent {
  start(): Promise<object>;
  close(): Promise<void>;
}

/** Settings every component carries. */
export interface ComponentSettings {
  readonly logLevel: string;
  /** How long `close()` drains; logged when a signal asks to stop. */
  readonly drainMs?: number;
}

export interface ComponentSpec<S extends ComponentSettings> {
  /** Prefix of the invalid-settings line and of the start failure message. */
  readonly name: string;
  readonly parseSettings: (env: Readonly<Record<string, string | undefined>>) => Result<S>;
  /** Fields on every log line (node, pod, component). */
  readonly logBindings: (settings: S) => Record<string, unknown>;
  readonly create: (settings: S, logger: Logger) => RunnableComponent;
  /** Where log lines go; standard output unless a test collects them. */
  readonly logDestination?: DestinationStream;
}

/**
 * Parses the settings (exit 2 on a refusal, every problem named), starts the component (exit 1 on
 * a failure), logs its addresses, and on the first SIGTERM or SIGINT drains it and exits 0, or 1 if
 * the drain fails. Later signals are ignored: the drain already has its deadline.
 * Resolves once the component is running (or the process was told to exit).
 */
export async function runComponent<S extends ComponentSettings>(
  proc: ComponentProcess,
  spec: ComponentSpec<S>,
): Promise<void> {
  const parsed = spec.parseSettings(proc.env);
  if (!parsed.ok) {
    proc.stderr.write(`${spec.name}: invalid settings: ${formatProblems(parsed.problems)}\n`);
    proc.exit(EXIT_INVALID_SETTINGS);
    return;
  }
  const settings = parsed.value;
  const options = { level: settings.logLevel, base: spec.logBindings(settings) };
  const logger = spec.logDestination ? pino(options, spec.logDestination) : pino(options);
  let app: RunnableComponent;
  try {
    app = spec.create(settings, logger);
    const addresses = await app.start();
    logger.info(addresses, 'listening');
  } catch (err) {
    logger.fatal({ err }, `${spec.name} failed to start: ${(err as Error).message}`);
    proc.exit(EXIT_FAILURE);
    return;
  }
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    proc.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info(
        { signal, ...(settings.drainMs !== undefined && { drainMs: settings.drainMs }) },
        'draining',
      );
      app.close().then(
        () => proc.exit(EXIT_OK),
        (err: unknown) => {
          logger.error({ err }, 'drain failed');
          proc.exit(EXIT_FAILURE);
        },
      );
    });
  }
}
