/**
 * The Deno permission flags README.md documents for z3 and pput, held once: the CLI tests run
 * with exactly these (tests/integration/permissions_test.ts), and tests/unit/permission_flags_test.ts
 * holds README.md and the `compile` task to them, so the three cannot drift apart.
 *
 * @module
 */

/** The S3 host in the README's command lines; the tests put the bed's `host:port` there. */
export const README_S3_HOST = "s3.example.com";
/** The config directory in the README's command lines; the tests use a temporary one. */
export const README_CONFIG_DIR = "/etc/z3_backup";
/** Where the backup lock lives (lib/zfs/host_lock.ts's default). */
export const LOCK_DIR = "/run/z3";

/** pput's permission flags, exactly as README.md documents them. */
export const PPUT_PERMISSIONS: readonly string[] = [
  "--no-prompt",
  `--allow-net=${README_S3_HOST}`,
  `--allow-read=${README_CONFIG_DIR}`,
  "--allow-env",
  "--allow-sys=osRelease",
];

/** z3's permission flags, exactly as README.md documents them: pput's plus the commands. */
export const Z3_PERMISSIONS: readonly string[] = [
  "--no-prompt",
  `--allow-net=${README_S3_HOST}`,
  `--allow-read=${README_CONFIG_DIR},${LOCK_DIR}`,
  `--allow-write=${LOCK_DIR}`,
  "--allow-env",
  "--allow-sys=osRelease",
  "--allow-run=zfs,zstd",
];

/** `flags` with the README's S3 host replaced by `net` and its config dir by `configDir`. */
export function localize(flags: readonly string[], net: string, configDir: string): string[] {
  return flags.map((f) =>
    f === `--allow-net=${README_S3_HOST}`
      ? `--allow-net=${net}`
      : f.startsWith(`--allow-read=${README_CONFIG_DIR}`)
      ? f.replace(README_CONFIG_DIR, configDir)
      : f
  );
}
