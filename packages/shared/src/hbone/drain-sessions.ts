/** What drainSessions needs of a connection: Node's Http2Session and our H2Connection both fit. */
export interface DrainableSession {
  readonly closed: boolean;
  readonly destroyed: boolean;
  close(cb: () => void): void;
}

/**
 * Sends GOAWAY on every session and waits for their open streams to finish, for at most
 * `deadlineMs`. Resolves either way; the caller destroys whatever is left.
 */
export async function drainSessions(
  sessions: Iterable<DrainableSession | undefined>,
  deadlineMs: number,
): Promise<void> {
  const drained = Promise.all(
    [...sessions].map(
      (s) => new Promise<void>((resolve) => (!s || s.destroyed ? resolve() : s.close(resolve))),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
  clearTimeout(timer);
}
