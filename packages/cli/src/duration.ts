import { CliError } from './cli-error.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (`90s`, `1m30s`, `500ms`), as istioctl's duration flags take, in milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let matched = 0;
  while (re.lastIndex < text.length) {
    const m = re.exec(text);
    if (!m) break;
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (text === '' || matched !== text.length)
    throw new CliError(
      'CLI_ERR_ARGS',
      `invalid ${flag} ${JSON.stringify(text)}: a duration such as 90s, 2m or 1m30s`,
    );
  return total;
}
