import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * kubectl against the API server a suite starts in its beforeAll: `kubeconfig` is read at each call.
 * `kubectl` returns stdout; `kubectlStdin` feeds a body on stdin (`create --raw`, `apply -f -`) and
 * returns stdout once it is closed, or throws with stderr.
 */
export function kubectlOf(kubeconfig: () => string) {
  const kubectl = async (...args: string[]) =>
    (await run('kubectl', ['--kubeconfig', kubeconfig(), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 }))
      .stdout;
  const kubectlStdin = async (body: string, ...args: string[]): Promise<string> => {
    const p = execFile('kubectl', ['--kubeconfig', kubeconfig(), ...args]);
    let out = '';
    let err = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.stdin?.end(body);
    const code = await new Promise<number | null>((r) => p.once('close', r));
    if (code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${err}`);
    return out;
  };
  return { kubectl, kubectlStdin };
}
