/**
 * Pure validation of ZFS dataset and snapshot names and of object keys derived from them.
 * Every name that reaches a `zfs` argv passes through here first, so that no value can be taken
 * for an option (a leading `-`) or carry characters ZFS would refuse. Refused values are shown
 * JSON-quoted, so a newline or a quote in them stays visible.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** Characters ZFS accepts in a name component (as of OpenZFS 2; zfs-fuse is stricter). */
const COMPONENT = /^[A-Za-z0-9_.: -]+$/;

function checkComponent(kind: string, whole: string, part: string): void {
  if (part === "" || !COMPONENT.test(part) || part === "." || part === "..") {
    throw new UsageError(
      `Cannot use ${kind} ${
        JSON.stringify(whole)
      }: ZFS names use letters, digits and _ - : . or space`,
    );
  }
}

/** Throws a {@linkcode UsageError} unless `name` is a valid dataset name like `pool/fs`. */
export function validateDataset(name: string): string {
  if (name.startsWith("-") || name.startsWith("/") || name.endsWith("/")) {
    throw new UsageError(
      `Cannot use dataset ${JSON.stringify(name)}: expected a name like pool/fs`,
    );
  }
  for (const part of name.split("/")) checkComponent("dataset", name, part);
  return name;
}

/** Throws unless `name` is a valid short snapshot name (the part after `@`). */
export function validateSnapshotName(name: string): string {
  if (name.startsWith("-")) {
    throw new UsageError(
      `Cannot use snapshot ${JSON.stringify(name)}: a name may not start with -`,
    );
  }
  checkComponent("snapshot", name, name);
  return name;
}

/** Splits `pool/fs@snap` into its dataset and short snapshot name, validating both. */
export function parseSnapshot(full: string): { dataset: string; snapshot: string } {
  const at = full.indexOf("@");
  if (at < 0 || full.indexOf("@", at + 1) >= 0) {
    throw new UsageError(`Cannot use snapshot ${JSON.stringify(full)}: expected dataset@snapshot`);
  }
  return {
    dataset: validateDataset(full.slice(0, at)),
    snapshot: validateSnapshotName(full.slice(at + 1)),
  };
}
