// sse_client.mjs holds headcount's event stream with a third-party
// EventSource implementation, the npm "eventsource" package, the way a
// Node program would: the bearer token goes in an Authorization header
// through the package's custom fetch option.
//
//   HEADCOUNT_TOKEN=<token> node sse_client.mjs http://localhost:8080/events
//
// It prints every "user count", "people count" and "user" event on a line
// of its own, as "<event>: <data>", and
// reports the connection's ups and downs on stderr. It leaves, closing the
// stream, when its standard input ends; e2e/clients_test.go drives it.
import { EventSource } from 'eventsource';

const url = process.argv[2];
const token = process.env.HEADCOUNT_TOKEN;
if (!url || !token) {
  console.error('usage: HEADCOUNT_TOKEN=<token> node sse_client.mjs <events URL>');
  process.exit(2);
}

const es = new EventSource(url, {
  fetch: (input, init) =>
    fetch(input, {
      ...init,
      headers: { ...init.headers, Authorization: `Bearer ${token}` },
    }),
});

es.addEventListener('open', () => console.error('open'));
for (const name of ['user count', 'people count', 'user']) {
  es.addEventListener(name, (event) => {
    process.stdout.write(`${name}: ${event.data}\n`);
  });
}
es.addEventListener('error', (event) => {
  const status = event.code === undefined ? '' : ` (HTTP ${event.code})`;
  console.error(`error: ${event.message ?? 'the stream failed'}${status}`);
  if (es.readyState === EventSource.CLOSED) {
    // The package gives up (a 401, a wrong content type): so do we.
    process.exit(1);
  }
});

process.stdin.on('end', () => {
  es.close();
  process.exit(0);
});
process.stdin.resume();
