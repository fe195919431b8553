// Transpiles the dflockd component into gen/ with jco: `node transpile.mjs [component.wasm]`.
// Default component: $DFLOCKD_COMPONENT, else the guest build of this repository.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
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
// `--instantiation async`: gen/dflockd.js exports `instantiate(getCoreModule, imports)`
// rather than one instance wired to the preview2-shim, so that component.mjs can make an
// instance with the event-loop imports on the application's thread and another with the
// shim's for the raw benchmark, from the same files.
// `--import-bindings hybrid`: an import function that carries a core-level binding
// (`fn[Symbol.for('cabiLower')]`) is called by the core module directly, past jco's
// per-call bookkeeping (a few µs a call); the others go through jco's bindings as usual.
// Only the monotonic clock's `now` has one (wasi-io.mjs): a third of a lock round trip's
// host calls.
const args = ['transpile', component, '-o', gen, '--name', 'dflockd'];
args.push('--instantiation', 'async', '--import-bindings', 'hybrid', '--quiet');
const run = spawnSync(process.execPath, [jco, ...args], { stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);

// jco 1.35's bindings call `_debugLog(...)` several times per host call, and each call
// reads process.env.JCO_DEBUG, a getenv(3) through V8's interceptor: a fifth of the
// CPU of a lock round trip (node --cpu-prof). It is read once per instance instead;
// JCO_DEBUG still works (set before the instance is made).
const bindings = `${gen}dflockd.js`;
const debugLog = `  const _debugLog = (...args) => {
    if (!globalThis?.process?.env?.JCO_DEBUG) { return; }
    console.debug(...args);
  };`;
const source = readFileSync(bindings, 'utf8');
if (source.split(debugLog).length !== 2) {
  console.error(`transpile.mjs: jco's _debugLog is not the one expected in ${bindings}; check the patch for this jco version`);
  process.exit(1);
}
const once = '  const _debugLog = globalThis?.process?.env?.JCO_DEBUG ? (...args) => console.debug(...args) : () => {};';
writeFileSync(bindings, source.replace(debugLog, once));
// The bindings are ES modules; without this, a CommonJS package above could claim them.
writeFileSync(`${gen}package.json`, '{ "type": "module" }\n');
