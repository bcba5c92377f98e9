// `clothtag serve-demo`: serves the browser page (dist/web) and, optionally, a checkpoint beside it,
// on the loopback interface only. The page does all the work in the browser.
import { existsSync, readFileSync } from 'node:fs';
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
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/checkpoint.safetensors') {
      if (!o.checkpoint) {
        res.writeHead(404).end('no checkpoint is served: pick one in the page');
        return;
      }
      res.writeHead(200, { 'content-type': TYPES['.safetensors']!, 'x-checkpoint-name': basename(o.checkpoint) }).end(readFileSync(o.checkpoint));
      return;
    }
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(normalize(dir)) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(() => r())) };
}
