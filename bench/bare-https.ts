/**
 * The ceiling the token benchmark is read against: a bare Node.js HTTPS server with
 * keep-alive, the same certificate and as many worker processes as the token server,
 * answering every request with the same bytes as a real token response. Whatever the
 * token server does on top (Basic parsing, the login cache, policy, signing, logging)
 * can only lower the rate below this one.
 *
 *   node bench/bare-https.ts   (started by bench/token.ts)
 * Env: BARE_PORT, BARE_CERT, BARE_KEY, BARE_BODY (a file), BARE_WORKERS.
 */
import cluster from 'node:cluster';
import fs from 'node:fs';
import https from 'node:https';

const workers = Number(process.env.BARE_WORKERS ?? 1);
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) process.send?.('ready');
  });
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  });
} else {
  const body = fs.readFileSync(process.env.BARE_BODY!);
  https
    .createServer({ cert: fs.readFileSync(process.env.BARE_CERT!), key: fs.readFileSync(process.env.BARE_KEY!) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    })
    .listen(Number(process.env.BARE_PORT), '127.0.0.1', () => {
      if (cluster.isPrimary) process.send?.('ready');
    });
}
