// Transpiles the dflockd component into gen/ with jco: `node transpile.mjs [component.wasm]`.
// Default component: $DFLOCKD_COMPONENT, else the guest build of this repository.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const component =
  process.argv[2] ??
  process.env.DFLOCKD_COMPONENT ??
  here('../../target/wasm32-wasip2/guest/dflockd_component.wasm');
const gen = here('./gen/');
// jco's CLI (beside its API entry, dist/api.js) run by this very node: no shell, no PATH, no .bin shim.
const jco = fileURLToPath(new URL('jco.js', import.meta.resolve('@bytecodealliance/jco')));

rmSync(gen, { recursive: true, force: true }); // no stale bindings from an older component
const run = spawnSync(process.execPath, [jco, 'transpile', component, '-o', gen, '--name', 'dflockd', '--quiet'], {
  stdio: 'inherit',
});
if (run.status !== 0) process.exit(run.status ?? 1);
// The bindings are ES modules; without this, a CommonJS package above could claim them.
writeFileSync(`${gen}package.json`, '{ "type": "module" }\n');
