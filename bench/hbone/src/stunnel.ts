import { join } from 'node:path';

/**
 * A stunnel4 configuration for one side of the mutual-TLS baseline pair: TLS 1.3 with AES-GCM,
 * certificates required and verified both ways, TCP_NODELAY on both legs. The directory holds
 * `<role>-cert.pem`, `<role>-key.pem` and `root.pem`; services are `[accept, connect]` addresses.
 */
export function stunnelConfig(
  dir: string,
  role: 'client' | 'server',
  services: ReadonlyArray<readonly [string, string]>,
): string {
  const lines = [
    'foreground = yes',
    'pid =',
    'debug = 3',
    'syslog = no',
    `output = ${join(dir, `stunnel-${role}.log`)}`,
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
  ];
  services.forEach(([accept, connect], i) => {
    lines.push(
      `[svc${i}]`,
      `accept = ${accept}`,
      `connect = ${connect}`,
      `cert = ${join(dir, `${role}-cert.pem`)}`,
      `key = ${join(dir, `${role}-key.pem`)}`,
      `CAfile = ${join(dir, 'root.pem')}`,
      'verifyChain = yes',
      'requireCert = yes',
      'sslVersionMin = TLSv1.3',
      'ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384',
    );
    if (role === 'client') lines.push('client = yes');
  });
  return `${lines.join('\n')}\n`;
}
