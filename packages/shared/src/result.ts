/** A problem found while decoding input, with the path of the offending field. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export type Result<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problems: readonly Problem[] };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(problems: Problem | readonly Problem[]): Result<T> {
  return { ok: false, problems: Array.isArray(problems) ? problems : [problems as Problem] };
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
}
