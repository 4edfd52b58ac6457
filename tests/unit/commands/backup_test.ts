import assert from "node:assert/strict";
import {
  backupLine,
  backupParseableLine,
  type BackupRecord,
} from "../../../lib/commands/backup.ts";

const incremental: BackupRecord = {
  snapshot: "pool/a@z3-2",
  parent: "pool/a@z3-1",
  type: "incremental",
  key: "z3-backup/pool/a@z3-2",
  bytes: 10_485_760,
  parts: 2,
  resumedParts: 1,
  etag: '"abc-2"',
  seconds: 2,
};

Deno.test("backupLine() names the parent, parts resumed, time and rate; a full has neither parent nor resumed", () => {
  assert.equal(
    backupLine(incremental),
    "pool/a@z3-2: incremental from pool/a@z3-1, 10485760 bytes in 2 part(s) (1 resumed) in 2.0 s, 5.0 MiB/s",
  );
  const full = { ...incremental, type: "full" as const, parent: undefined, resumedParts: 0 };
  assert.equal(
    backupLine({ ...full, bytes: 0, seconds: 0 }),
    "pool/a@z3-2: full, 0 bytes in 2 part(s) in 0.0 s, 0 B/s",
  );
});

Deno.test("backupParseableLine() gives snapshot, type, parent (empty for a full), bytes and key, tab-separated", () => {
  assert.equal(
    backupParseableLine(incremental),
    "pool/a@z3-2\tincremental\tpool/a@z3-1\t10485760\tz3-backup/pool/a@z3-2",
  );
  assert.equal(
    backupParseableLine({ ...incremental, type: "full", parent: undefined }),
    "pool/a@z3-2\tfull\t\t10485760\tz3-backup/pool/a@z3-2",
  );
});
