// Writes the `hybrid*` vectors of the cctv-age package (C2SP CCTV age test
// suite) into OUTDIR, one file per vector named as in CCTV's testdata: a
// header of `key: value` lines, an empty line, then the age file.
//
// A vector marked `compressed: zlib` is written decompressed and without
// that line, so the reader needs no zlib of its own; nothing else changes.
//
//   node tests/pq/cctv_vectors.mjs OUTDIR
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { inflateSync } from "node:zlib"
import { load } from "./npm.mjs"

const outDir = process.argv[2]
if (!outDir) throw new Error("usage: cctv_vectors.mjs OUTDIR")
const vectors = await load("cctv-age")
mkdirSync(outDir, { recursive: true })
let count = 0
for (const [name, bytes] of Object.entries(vectors)) {
    if (!name.startsWith("hybrid")) continue
    let file = Buffer.from(bytes)
    const end = file.indexOf("\n\n")
    const header = file.subarray(0, end).toString("utf8").split("\n")
    if (header.includes("compressed: zlib")) {
        const body = inflateSync(file.subarray(end + 2))
        const kept = header.filter((line) => line !== "compressed: zlib").join("\n")
        file = Buffer.concat([Buffer.from(kept + "\n\n"), body])
    }
    writeFileSync(join(outDir, name), file)
    count++
}
console.log(count)
