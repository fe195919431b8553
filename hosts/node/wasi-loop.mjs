// Every WASI import of the component, for an instance on the application's own thread:
// the ones that wait (wasi:io, the monotonic clock, wasi:sockets, the std streams) on
// Node's event loop (wasi-io.mjs, wasi-sockets.mjs), and the rest as plain functions.
//
// Randomness is the preview2-shim's (node:crypto). The others are a line each here rather
// than the shim's: its cli and clocks modules start the shim's I/O worker thread as soon
// as they are imported, and this instance must not need one.
import { insecure, insecureSeed, random } from '@bytecodealliance/preview2-shim/random';
import { ioImports } from './wasi-io.mjs';
import { socketImports } from './wasi-sockets.mjs';

// The component has no terminal: `get-terminal-*` say so (none).
class TerminalInput {}
class TerminalOutput {}

/**
 * A fresh set of imports for one instance, and `closeAll()`, which closes every socket it
 * opened (for an instance that trapped: its connections must not outlive it).
 */
export function loopImports() {
  const connections = new Set();
  const imports = {
    ...ioImports(),
    ...socketImports(connections),
    'wasi:random/random': random,
    'wasi:random/insecure': insecure,
    'wasi:random/insecure-seed': insecureSeed,
    'wasi:clocks/wall-clock': {
      now() {
        const ms = Date.now(); // rustls checks certificates' validity against it
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1e6 }),
    },
    'wasi:cli/environment': {
      getEnvironment: () => Object.entries(process.env),
      getArguments: () => [],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status) => process.exit(status.tag === 'err' ? 1 : 0),
    },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
  };
  const closeAll = () => {
    for (const connection of connections) connection.destroy();
    connections.clear();
  };
  return { imports, closeAll };
}
