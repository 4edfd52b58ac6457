/**
 * Pure: sizes for people, in the two forms z3 prints: progress and summary lines (`12.5 MiB`) and
 * the status table's SIZE column, as the original z3 printed it (`12.5 M`, `64.5 K`).
 *
 * @module
 */

/** Options of {@linkcode humanBytes}. */
export interface HumanBytesOptions {
  /**
   * `"progress"`: IEC units from B up, one decimal above B (`312 B`, `12.5 MiB`), for progress and
   * summary lines. `"table"`: the status table's SIZE column, as the original z3 printed it:
   * mebibytes and up with two decimals at most, trailing zeros dropped (`"12.5 M"`, `"1.23 G"`,
   * `"3 T"`, `"1024 M"`); below 1 MiB in kibibytes (`"97.66 K"`), below 1 KiB in bytes
   * (`"312 B"`), never `"0 M"`; `""` when the size is unknown (undefined, not finite, negative).
   *
   * @default {"progress"}
   */
  style?: "progress" | "table";
}

const PROGRESS_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
const TABLE_UNITS = ["B", "K", "M", "G", "T"];

/** Renders a byte count with a binary unit, in the form `options.style` names. */
export function humanBytes(bytes: number | undefined, options: HumanBytesOptions = {}): string {
  if (options.style === "table") {
    if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "";
    // From M up, a unit is only left for the next one past 1024 (`1024 M`, as the original).
    const { value, unit } = scale(
      bytes,
      TABLE_UNITS.length,
      (v, i) => i < 2 ? v >= 1024 : v > 1024,
    );
    const text = unit === 0
      ? String(Math.round(value))
      : value.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
    return `${text} ${TABLE_UNITS[unit]}`;
  }
  const { value, unit } = scale(bytes as number, PROGRESS_UNITS.length, (v) => v >= 1024);
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${PROGRESS_UNITS[unit]}`;
}

/**
 * `bytes` divided by 1024 once per unit it climbs: while `carry(value, unit)` says so and a unit
 * is left of `units`.
 */
function scale(
  bytes: number,
  units: number,
  carry: (value: number, unit: number) => boolean,
): { value: number; unit: number } {
  let value = bytes;
  let unit = 0;
  while (unit < units - 1 && carry(value, unit)) {
    value /= 1024;
    unit++;
  }
  return { value, unit };
}
