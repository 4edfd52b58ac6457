/**
 * Pure: sizes for people, `12.5 MiB`.
 *
 * @module
 */

/** Renders a byte count with a binary unit. */
export function humanBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/**
 * Size as the original z3 printed it: mebibytes and up, two decimals at most, trailing zeros
 * dropped (`"12.5 M"`, `"1.23 G"`, `"3 T"`); below 1 MiB in kibibytes (`"97.66 K"`), below
 * 1 KiB in bytes (`"312 B"`), never `"0 M"`; `""` when unknown.
 */
export function humanSize(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const two = (n: number) => n.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
  if (bytes < 1024 ** 2) return `${two(bytes / 1024)} K`;
  const units = ["M", "G", "T"];
  let size = bytes / 1024 ** 2;
  let unit = 0;
  while (size > 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${two(size)} ${units[unit]}`;
}
