// `npm pack` / `npm publish` runs this: the package ships the transpiled component, which
// needs the Rust build, so it is checked here rather than made (no cargo in npm scripts).
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
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
// component.mjs instantiates gen/ itself: bindings from before transpile.mjs asked for
// `--instantiation async` export the instance instead, and would fail at the first import.
if (!readFileSync(here('./gen/dflockd.js'), 'utf8').includes('export function instantiate(')) {
  console.error('dflockd-component: gen/ is from an older transpile.mjs. Transpile the component again:\n' +
    '  node transpile.mjs <path/to/dflockd_component.wasm>');
  process.exit(1);
}
// The MIT notice must travel with the code; the repository keeps one copy, at its root.
const license = here('../../LICENSE');
if (existsSync(license)) copyFileSync(license, here('./LICENSE'));
