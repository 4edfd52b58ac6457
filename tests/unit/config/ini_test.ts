import assert from "node:assert/strict";
import { parseIni } from "../../../lib/config/ini.ts";

const value = (text: string, key = "S3_PREFIX") =>
  parseIni(`[main]\n${text}\n`, "z3.conf").get("main")?.get(key)?.value;

Deno.test("parseIni() ends a value at its first ';' after whitespace, as ConfigParser did", () => {
  // Python 2.7 Lib/ConfigParser.py, RawConfigParser._read: `pos = optval.find(';')` and
  // `if pos != -1 and optval[pos-1].isspace(): optval = optval[:pos]`, then strip().
  assert.equal(value("S3_PREFIX=z3-backup/   ; the prefix"), "z3-backup/");
  assert.equal(value("S3_PREFIX=z3-backup/\t; tab before"), "z3-backup/");
  assert.equal(value("S3_PREFIX=a;b"), "a;b", "no whitespace before ';': part of the value");
  assert.equal(value("S3_PREFIX=a;b ; c"), "a;b ; c", "only the first ';' is looked at");
  assert.equal(value("S3_PREFIX=z3-backup/  # not a comment"), "z3-backup/  # not a comment");
  assert.equal(value('S3_PREFIX=""'), "");
  assert.equal(value("; S3_PREFIX=x"), undefined, "a whole-line ';' comment");
  assert.equal(value("# S3_PREFIX=x"), undefined, "a whole-line '#' comment");
});

Deno.test("parseIni() warns about a key given twice in one section, naming both lines", () => {
  const warnings: string[] = [];
  const ini = parseIni("[main]\nBUCKET=a\nHOST=h\nbucket=b\n[fs:p/d]\nBUCKET=c\n", "/etc/z3.conf", {
    warn: (m) => warnings.push(m),
  });
  assert.deepEqual(ini.get("main")?.get("BUCKET"), { value: "b", line: 4 }, "the later line wins");
  assert.deepEqual(warnings, [
    "warning: BUCKET is set twice in [main] of /etc/z3.conf, on lines 2 and 4: line 4 is used",
  ]);
});
