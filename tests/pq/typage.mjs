// typage (npm age-encryption) from the command line, for interoperability
// tests; binary age files on stdin and stdout.
//
//   node tests/pq/typage.mjs keygen-pq            identity and recipient, one per line
//   node tests/pq/typage.mjs to-recipient IDFILE  the recipient of an identity file
//   node tests/pq/typage.mjs encrypt RECIPIENT…   stdin to stdout
//   node tests/pq/typage.mjs decrypt IDFILE       stdin to stdout
import { readFileSync } from "node:fs"
import { load } from "./npm.mjs"

const age = await load("age-encryption")
const [command, ...args] = process.argv.slice(2)

// The key lines of an identity file (comments and blank lines skipped).
function keys(path) {
    return readFileSync(path, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
}

function stdin() {
    return new Uint8Array(readFileSync(0))
}

switch (command) {
    case "keygen-pq": {
        const identity = await age.generateHybridIdentity()
        process.stdout.write(identity + "\n" + (await age.identityToRecipient(identity)) + "\n")
        break
    }
    case "to-recipient":
        process.stdout.write((await age.identityToRecipient(keys(args[0])[0])) + "\n")
        break
    case "encrypt": {
        const e = new age.Encrypter()
        for (const r of args) e.addRecipient(r)
        process.stdout.write(await e.encrypt(stdin()))
        break
    }
    case "decrypt": {
        const d = new age.Decrypter()
        for (const k of keys(args[0])) d.addIdentity(k)
        process.stdout.write(await d.decrypt(stdin()))
        break
    }
    default:
        throw new Error(`unknown command ${command}`)
}
