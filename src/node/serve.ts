// `clothtag serve-demo`: serves the browser page (dist/web) and, optionally, a checkpoint beside it,
// on the loopback interface only. The page does all the work in the browser.
import { existsSync } from 'node:fs';
import { readRegularFile } from '../data/files.js';
import { type Server, createServer } from 'node:http';
import { basename, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url)); // dist/web when built

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.safetensors': 'application/octet-stream' };

export interface DemoServer {
  url: string;
  close(): Promise<void>;
}

export async function serveDemo(o: { checkpoint?: string; port?: number; webDir?: string }): Promise<DemoServer> {
  const dir = o.webDir ?? WEB_DIR;
  if (!existsSync(join(dir, 'index.html')) || !existsSync(join(dir, 'clothtag.js'))) throw new Error(`${dir} has no built page: run npm run build (make build)`);
  // Filled in once listening: the Host names a browser may use for this server (DNS rebinding
  // makes a hostile page's own host name point at 127.0.0.1; its requests then carry that name).
  let hosts = new Set<string>();
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: string | Uint8Array, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'x-content-type-options': 'nosniff', 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n', { allow: 'GET, HEAD' });
      if (!hosts.has((req.headers.host ?? '').toLowerCase())) return send(403, 'unexpected Host header: open the address clothtag printed\n');
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
      } catch {
        return send(400, 'malformed request target\n');
      }
      if (path === '/checkpoint.safetensors') {
        if (!o.checkpoint) return send(404, 'no checkpoint is served: pick one in the page\n');
        let bytes: Uint8Array;
        try {
          bytes = readRegularFile(o.checkpoint, basename(o.checkpoint));
        } catch (e) {
          return send(404, `${(e as Error).message}\n`);
        }
        return send(200, bytes, { 'content-type': TYPES['.safetensors']!, 'x-checkpoint-name': basename(o.checkpoint) });
      }
      const file = normalize(join(dir, path === '/' ? 'index.html' : path));
      if (!file.startsWith(normalize(dir)) || !existsSync(file)) return send(404, 'not found\n');
      let bytes: Uint8Array;
      try {
        bytes = readRegularFile(file, path);
      } catch {
        return send(404, 'not found\n');
      }
      return send(200, bytes, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    } catch (e) {
      // Whatever else goes wrong answers this request only; the server keeps serving.
      if (!res.headersSent) send(500, `internal error: ${(e as Error).message}\n`);
      else res.destroy();
    }
  });
  // A client that sends garbage below HTTP (a bad request line) gets a 400 from Node; never a crash.
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(() => r())) };
}
