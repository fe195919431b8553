// Instances of the dflockd component from gen/ (jco transpile --instantiation async, see
// transpile.mjs): one set of files, instantiated with whichever WASI imports the caller
// brings. The core modules are compiled once per thread and shared by its instances.
import { readFile } from 'node:fs/promises';
import { instantiate as instantiateGen } from './gen/dflockd.js';

const compiled = new Map(); // file name -> Promise<WebAssembly.Module>

function coreModule(name) {
  let module = compiled.get(name);
  if (!module) {
    module = readFile(new URL(`./gen/${name}`, import.meta.url)).then((bytes) => WebAssembly.compile(bytes));
    compiled.set(name, module);
  }
  return module;
}

/**
 * A new instance: its exports (`locks`, `driver`, `connection`, `fencing`, `sharding`,
 * `types`), with `imports` keyed by WIT interface name (`wasi:io/poll`, ...).
 */
export function instantiate(imports) {
  return instantiateGen(coreModule, imports);
}

/**
 * The preview2-shim's WASI, whose sockets block the calling thread (each call a round trip
 * to the shim's I/O thread): for an instance whose blocking exports are called, as in the
 * raw benchmark.
 */
export async function shimImports() {
  const [cli, clocks, io, random, sockets] = await Promise.all([
    import('@bytecodealliance/preview2-shim/cli'),
    import('@bytecodealliance/preview2-shim/clocks'),
    import('@bytecodealliance/preview2-shim/io'),
    import('@bytecodealliance/preview2-shim/random'),
    import('@bytecodealliance/preview2-shim/sockets'),
  ]);
  return {
    'wasi:cli/environment': cli.environment,
    'wasi:cli/exit': cli.exit,
    'wasi:cli/stdin': cli.stdin,
    'wasi:cli/stdout': cli.stdout,
    'wasi:cli/stderr': cli.stderr,
    'wasi:cli/terminal-input': cli.terminalInput,
    'wasi:cli/terminal-output': cli.terminalOutput,
    'wasi:cli/terminal-stdin': cli.terminalStdin,
    'wasi:cli/terminal-stdout': cli.terminalStdout,
    'wasi:cli/terminal-stderr': cli.terminalStderr,
    'wasi:clocks/monotonic-clock': clocks.monotonicClock,
    // Not the shim's own object: its `now` carries a core-level binding (which the hybrid
    // bindings would call, transpile.mjs) that writes the datetime at the wrong offsets
    // (0.26.1), and rustls then finds every certificate expired.
    'wasi:clocks/wall-clock': { now: () => clocks.wallClock.now() },
    'wasi:io/error': io.error,
    'wasi:io/poll': io.poll,
    'wasi:io/streams': io.streams,
    'wasi:random/random': random.random,
    'wasi:random/insecure': random.insecure,
    'wasi:random/insecure-seed': random.insecureSeed,
    'wasi:sockets/network': sockets.network,
    'wasi:sockets/instance-network': sockets.instanceNetwork,
    'wasi:sockets/tcp': sockets.tcp,
    'wasi:sockets/tcp-create-socket': sockets.tcpCreateSocket,
    'wasi:sockets/ip-name-lookup': sockets.ipNameLookup,
  };
}
