import assert from "node:assert/strict";
import { loadConfig } from "../../../lib/config/load.ts";

// The X25519 example of the age spec (c2sp.org/age).
const IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";

/** The warnings loadConfig() gives for a config dir and secret files all at `mode`. */
async function warningsAtMode(mode: number): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "z3-secret-modes-" });
  try {
    await Deno.writeTextFile(`${dir}/secret`, "s3-secret-value\n");
    await Deno.writeTextFile(`${dir}/key.txt`, `${IDENTITY}\n`);
    await Deno.writeTextFile(
      `${dir}/z3.conf`,
      `[main]\nS3_SECRET_FILE=${dir}/secret\nAGE_IDENTITY_FILE=${dir}/key.txt\n`,
    );
    for (const name of ["secret", "key.txt"]) await Deno.chmod(`${dir}/${name}`, mode);
    await Deno.chmod(dir, mode | ((mode & 0o444) >> 2)); // 0644 → 0755, 0640 → 0750, 0600 → 0700
    const warnings: string[] = [];
    await loadConfig({
      configPath: `${dir}/z3.conf`,
      configDir: dir,
      warn: (line) => warnings.push(line.replaceAll(dir, "DIR")),
    });
    return warnings;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadConfig() warns once for each secret file and the config dir others can open", async () => {
  assert.deepEqual(await warningsAtMode(0o644), [
    "warning: DIR has mode 0755: other users can read or write it; run chmod 700 DIR",
    "warning: S3_SECRET_FILE DIR/secret has mode 0644: other users can read or write it; " +
    "run chmod 600 DIR/secret",
    "warning: AGE_IDENTITY_FILE DIR/key.txt has mode 0644: other users can read or write it; " +
    "run chmod 600 DIR/key.txt",
  ]);
  assert.deepEqual((await warningsAtMode(0o640)).map((w) => w.split(" has mode ")[1]), [
    "0750: other users can read or write it; run chmod 700 DIR",
    "0640: other users can read or write it; run chmod 600 DIR/secret",
    "0640: other users can read or write it; run chmod 600 DIR/key.txt",
  ]);
  assert.deepEqual(await warningsAtMode(0o600), []);
});
