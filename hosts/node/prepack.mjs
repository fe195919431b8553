// `npm pack` / `npm publish` runs this: the package ships the transpiled component, which
// needs the Rust build, so it is checked here rather than made (no cargo in npm scripts).
import { copyFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
if (!existsSync(here('./gen/dflockd.js')) || !existsSync(here('./gen/dflockd.core.wasm'))) {
  console.error(
    'dflockd-component: gen/ is missing. Transpile the component first:\n' +
      '  node transpile.mjs <path/to/dflockd_component.wasm>\n' +
      '(the component comes from `cargo xtask build` in the repository, or a release).',
  );
  process.exit(1);
}
// The MIT notice must travel with the code; the repository keeps one copy, at its root.
const license = here('../../LICENSE');
if (existsSync(license)) copyFileSync(license, here('./LICENSE'));
