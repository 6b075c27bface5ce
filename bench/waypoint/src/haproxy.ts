/**
 * An haproxy configuration for the L7 baseline: HTTP mode, keep-alive on both sides, idle server
 * connections shared between client connections (as a waypoint pools its upstreams), no logging.
 * `threads` is haproxy's nbthread: 1 compares it core for core with the one Node.js process of a
 * waypoint.
 */
export function haproxyConfig(listen: string, server: string, threads: number): string {
  return `${[
    'global',
    `  nbthread ${threads}`,
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  http-reuse always',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 60s',
    'frontend bench',
    `  bind ${listen}`,
    '  default_backend upstream',
    'backend upstream',
    `  server s1 ${server}`,
  ].join('\n')}\n`;
}
