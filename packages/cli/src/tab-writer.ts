/**
 * Tables in the layout of Go's text/tabwriter as istioctl configures it (minwidth 0, padchar ' ',
 * flags 0): every cell but a row's last is padded to its column's widest cell plus `padding`; the
 * last cell is written as it is. Widths count characters, as tabwriter counts runes.
 */
export function formatTable(rows: ReadonlyArray<readonly string[]>, padding: number): string {
  const width = (s: string) => [...s].length;
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 0, width(cell));
    });
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) =>
            i < row.length - 1 ? cell + ' '.repeat((widths[i] ?? 0) - width(cell) + padding) : cell,
          )
          .join('')}\n`,
    )
    .join('');
}
