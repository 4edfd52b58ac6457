import assert from "node:assert/strict";
import { resolveConfig } from "../../../lib/config/config.ts";
import { SETTINGS } from "../../../lib/config/settings.ts";
import { UsageError } from "../../../lib/base/errors.ts";
import { parseIni } from "../../../lib/config/ini.ts";

const ini = (text: string) => ({ path: "/etc/z3.conf", ini: parseIni(text, "/etc/z3.conf") });

Deno.test("resolveConfig() takes flag over env over [fs:] over [main] over default", () => {
  const file = ini(
    "[main]\nCONCURRENCY=3\nCHUNK_SIZE=16M\nS3_PREFIX=a/\nFILESYSTEM=tank/x\n[fs:tank/x]\nS3_PREFIX=b/\n",
  );
  const cases: [Record<string, string>, Record<string, string>, string, number, string][] = [
    [{}, {}, "b/", 3, "/etc/z3.conf:7"],
    [{}, { CONCURRENCY: "5", S3_PREFIX: "e/" }, "e/", 5, "$S3_PREFIX"],
    [
      { concurrency: "7", "s3-prefix": "f/" },
      { CONCURRENCY: "5", S3_PREFIX: "e/" },
      "f/",
      7,
      "--s3-prefix",
    ],
  ];
  for (const [flags, env, prefix, conc, source] of cases) {
    const c = resolveConfig({ flags, env, file });
    assert.equal(c.s3Prefix, prefix);
    assert.equal(c.concurrency, conc);
    assert.equal(c.sources.S3_PREFIX, source);
    assert.equal(c.chunkSize, 16 * 1024 * 1024);
  }
  assert.equal(resolveConfig({}).concurrency, 4, "default");
});

Deno.test("resolveConfig() errors name the key, value and file line", () => {
  const file = ini("[main]\n\nCONCURRENCY=abc\n");
  assert.throws(() => resolveConfig({ file }), (e: Error) => {
    assert.ok(e instanceof UsageError);
    assert.equal(
      e.message,
      'Cannot parse CONCURRENCY "abc" from /etc/z3.conf:3: expected a whole number',
    );
    return true;
  });
  assert.throws(
    () => resolveConfig({ file: ini("[main]\nBOGUS=1\n") }),
    /unknown key BOGUS in \/etc\/z3.conf:2/,
  );
  assert.throws(() => resolveConfig({ file: ini("[other]\nBUCKET=x\n") }), /section \[other\]/);
  assert.throws(() => parseIni("[main]\njunk line\n", "f.conf"), /f.conf:2: expected KEY=value/);
  assert.throws(
    () => resolveConfig({ env: { CHUNK_SIZE: "ten" } }),
    /CHUNK_SIZE "ten" from \$CHUNK_SIZE/,
  );
  assert.throws(
    () => resolveConfig({ flags: { compressor: "rar" } }),
    /COMPRESSOR "rar" from --compressor: expected one of/,
  );
});

Deno.test("resolveConfig() never prints a secret in an error and accepts HOST forms", () => {
  assert.throws(
    () => resolveConfig({ env: { HOST: "http://user:hunter22@h" } }),
    (e: Error) => !e.message.includes("hunter22") || assert.fail(e.message),
  );
  assert.equal(
    resolveConfig({ env: { HOST: "s3.example.com" } }).endpoint,
    "https://s3.example.com",
  );
  assert.equal(
    resolveConfig({ env: { HOST: "http://127.0.0.1:7480/" } }).endpoint,
    "http://127.0.0.1:7480",
  );
  const c = resolveConfig({ env: { S3_SECRET: "sekrit-value", S3_KEY_ID: "AKIDVALUE" } });
  assert.deepEqual(c.secrets.sort(), ["AKIDVALUE", "sekrit-value"]);
});

Deno.test("settings table gives BUCKET and the credentials no flag", () => {
  for (const key of ["BUCKET", "S3_KEY_ID", "S3_SECRET"]) {
    const setting = SETTINGS.find((s) => s.key === key);
    assert.ok(setting, `${key} is in the settings table`);
    assert.equal(setting.flag, undefined, key);
  }
});

Deno.test("sample.conf parses to the defaults and names every key", async () => {
  const path = new URL("../../../sample.conf", import.meta.url).pathname;
  const text = await Deno.readTextFile(path);
  const fromSample = resolveConfig({ file: { path, ini: parseIni(text, path) } });
  const defaults = resolveConfig({});
  const { sources: _a, ...a } = fromSample;
  const { sources: _b, ...b } = defaults;
  assert.deepEqual(a, b);
  for (const s of SETTINGS) {
    assert.match(text, new RegExp(`^#?${s.key}=`, "m"), `sample.conf names ${s.key}`);
  }
});

Deno.test("resolveConfig() lets an empty environment value override the file", () => {
  const file = ini("[main]\nSNAPSHOT_PREFIX=auto-\nCONCURRENCY=3\nHOST=s3.example.com\n");
  const c = resolveConfig({ env: { SNAPSHOT_PREFIX: "", CONCURRENCY: "", HOST: "" }, file });
  assert.equal(c.snapshotPrefix, "", "empty is SNAPSHOT_PREFIX's value: every snapshot");
  assert.equal(c.sources.SNAPSHOT_PREFIX, "$SNAPSHOT_PREFIX");
  assert.equal(c.concurrency, 4, "a count cannot be empty: the default");
  assert.equal(c.endpoint, undefined, "HOST cannot be empty: unset");
  assert.equal(resolveConfig({ file }).snapshotPrefix, "auto-", "unset: the file's");
  const region = ini("[main]\nS3_REGION=eu-west-1\n");
  assert.equal(resolveConfig({ env: { AWS_REGION: "" }, file: region }).region, "eu-west-1");
});
