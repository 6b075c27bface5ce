import { describe, expect, it } from 'vitest';
import { runHboneDemo } from './hbone-demo.js';

describe('ambientctl demo hbone', () => {
  it('tunnels every demo connection through one pooled mTLS connection and prints both verified identities', async () => {
    const lines: string[] = [];
    await runHboneDemo({ connections: 4, keep: false, port: 0, print: (l) => lines.push(l) });
    const out = lines.join('\n');
    for (let i = 1; i <= 4; i++) expect(out).toContain(`connection ${i}: got  "hello #${i} through HBONE"`);
    expect(
      lines.filter((l) => l.includes('server: verified client spiffe://cluster.local/ns/demo/sa/sleep')),
    ).toHaveLength(4);
    expect(
      lines.filter((l) => l.includes('client: verified server spiffe://cluster.local/ns/demo/sa/echo')),
    ).toHaveLength(4);
    expect(out).toContain(
      'OK: 4 TCP connections tunnelled as HTTP/2 CONNECT streams over 1 pooled mutual-TLS connection(s).',
    );
  });
});
