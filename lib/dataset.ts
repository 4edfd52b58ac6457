/**
 * The dataset a command works on, from FILESYSTEM, validated.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { UsageError } from "./errors.ts";
import { validateDataset } from "./names.ts";

/** FILESYSTEM, or a one-line error saying how to set it. */
export function requireDataset(config: Config): string {
  if (!config.filesystem) {
    throw new UsageError(
      "Cannot choose a dataset: FILESYSTEM is not set (--filesystem, $FILESYSTEM or the config file)",
    );
  }
  return validateDataset(config.filesystem);
}
