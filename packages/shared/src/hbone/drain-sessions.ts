import type { Http2Session } from 'node:http2';

/**
 * Sends GOAWAY on every session and waits for their open streams to finish, for at most
 * `deadlineMs`. Resolves either way; the caller destroys whatever is left.
 */
export async function drainSessions(
  sessions: Iterable<Http2Session | undefined>,
  deadlineMs: number,
): Promise<void> {
  const drained = Promise.all(
    [...sessions].map(
      (s) => new Promise<void>((resolve) => (!s || s.closed || s.destroyed ? resolve() : s.close(resolve))),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))]);
  clearTimeout(timer);
}
