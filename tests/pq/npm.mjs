// Loads a package installed by .ci/run with
//   npm install --no-save --prefix tests/pq cctv-age@0.2.0 age-encryption@0.3.1
// from tests/pq/node_modules, or from ENVCLOAK_NPM_DIR/node_modules when set.
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = process.env.ENVCLOAK_NPM_DIR || dirname(fileURLToPath(import.meta.url))

export async function load(name) {
    const require = createRequire(join(root, "package.json"))
    return import(pathToFileURL(require.resolve(name)).href)
}
