// The baseline's network leg: `move-relay.ts recv PORT` copies one TCP connection to stdout;
// `move-relay.ts send HOST PORT` copies stdin to one. Plain TCP, one connection, no framing.
import { connect, createServer } from 'node:net';

const [mode, a, b] = process.argv.slice(2);
if (mode === 'recv') {
  const server = createServer((socket) => {
    socket.pipe(process.stdout);
    socket.on('end', () => server.close());
  });
  server.listen(Number(a), () => process.stderr.write('listening\n'));
} else {
  const socket = connect(Number(b), a!, () => process.stdin.pipe(socket));
}
