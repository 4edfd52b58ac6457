/**
 * The dataset a one-dataset command (`restore`, `get`) works on, from FILESYSTEM, validated.
 * The commands that run over several take theirs from `datasets.ts`, one at a time.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { parseDatasetList } from "./datasets.ts";
import { UsageError } from "../base/errors.ts";

/** FILESYSTEM, or a one-line error saying how to set it (or that it names several). */
export function requireDataset(config: Config): string {
  const names = parseDatasetList(config.filesystem);
  if (names.length > 1) {
    throw new UsageError(
      `Cannot choose one dataset from FILESYSTEM "${config.filesystem}": it names ` +
        `${names.length}; restore and get take one (--filesystem NAME)`,
    );
  }
  return names[0];
}
