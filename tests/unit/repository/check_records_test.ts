import assert from "node:assert/strict";
import { type CheckRecord, recordDisagreement } from "../../../lib/repository/check_records.ts";

const INCREMENTAL = { etag: "abc-2", size: 100, metadata: {} as Record<string, string> };
const meta = {
  parent: "pool/fs@a",
  "z3-guid": "22",
  "z3-parent-guid": "11",
  "z3-version": "1",
};
const record: CheckRecord = {
  etag: "abc-2",
  size: 100,
  guid: "22",
  full: false,
  parent: "pool/fs@a",
  parentGuid: "11",
};

const cases: {
  name: string;
  metadata: Record<string, string>;
  record: CheckRecord;
  want: RegExp | undefined;
}[] = [
  { name: "accepts an object that matches its record", metadata: meta, record, want: undefined },
  {
    name: "catches isfull=true set on an incremental",
    metadata: { ...meta, isfull: "true" },
    record,
    want: /now full, recorded incremental/,
  },
  {
    name: "catches the legacy is_full set on an incremental",
    metadata: { ...meta, is_full: "True" },
    record,
    want: /now full, recorded incremental/,
  },
  {
    name: "catches a parent pointed at the grandparent (parent GUID kept)",
    metadata: { ...meta, parent: "pool/fs@grand" },
    record,
    want: /parent now pool\/fs@grand, recorded pool\/fs@a/,
  },
  {
    name: "catches a changed z3-guid",
    metadata: { ...meta, "z3-guid": "99" },
    record,
    want: /GUID now 99, recorded 22/,
  },
  {
    name: "catches a removed z3-guid",
    metadata: { parent: "pool/fs@a", "z3-parent-guid": "11" },
    record,
    want: /GUID now none, recorded 22/,
  },
  {
    name: "catches a changed parent GUID",
    metadata: { ...meta, "z3-parent-guid": "12" },
    record,
    want: /parent GUID now 12, recorded 11/,
  },
  {
    name: "catches an incremental made of a full",
    metadata: { "z3-guid": "22", parent: "pool/fs@a" },
    record: { etag: "abc-2", size: 100, guid: "22", full: true },
    want: /now incremental, recorded full/,
  },
  {
    name: "reads an older z3's record (etag, size, guid) and compares its GUID",
    metadata: { ...meta, isfull: "true" },
    record: { etag: "abc-2", size: 100, guid: "22" },
    want: undefined,
  },
  {
    name: "an older z3's record still catches another GUID",
    metadata: { ...meta, "z3-guid": "23" },
    record: { etag: "abc-2", size: 100, guid: "22" },
    want: /GUID now 23, recorded 22/,
  },
  {
    name: "catches another ETag first",
    metadata: meta,
    record: { ...record, etag: "def-2" },
    want: /changed in the bucket after the backup/,
  },
  {
    name: "escapes control characters in what it quotes",
    metadata: { ...meta, parent: "pool/fs@a\nfake line" },
    record,
    want: /parent now pool\/fs@a\\nfake line, recorded/,
  },
];

for (const c of cases) {
  Deno.test(`recordDisagreement() ${c.name}`, () => {
    const why = recordDisagreement({ ...INCREMENTAL, metadata: c.metadata }, c.record);
    if (c.want === undefined) assert.equal(why, undefined);
    else {
      assert.ok(why !== undefined);
      assert.match(why, c.want);
      assert.ok(!why.includes("\n"), "one line");
    }
  });
}
